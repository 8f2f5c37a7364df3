"""The docs site works offline: every script and stylesheet it loads is a file of the repository."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_docs_assets_are_local_files():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assets = [*config.get("extra_javascript", []), *config.get("extra_css", [])]
    assert assets, "math needs KaTeX's script and stylesheet"
    for asset in assets:
        assert "://" not in asset, f"{asset} would be fetched from the network"
        assert (ROOT / "docs" / asset).is_file(), asset
    css = (ROOT / "docs" / "assets" / "katex" / "katex.min.css").read_text()
    assert "fonts/KaTeX_Main-Regular.woff2" in css
    assert (ROOT / "docs" / "assets" / "katex" / "fonts" / "KaTeX_Main-Regular.woff2").is_file()
