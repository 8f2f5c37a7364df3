// Renders the \( \) and \[ \] math that pymdownx.arithmatex leaves in the pages, with the KaTeX
// copy in docs/assets/katex (no CDN: the site works offline). Re-run on mkdocs-material's
// instant navigation.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
  });
});
