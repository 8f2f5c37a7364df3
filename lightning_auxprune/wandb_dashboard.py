"""A W&B workspace for pruning runs, built with ``wandb-workspaces``; and the same sections for TensorBoard.

Sections: pruning progress (sparsity, compression on a log axis, kept FLOPs, lambda and the
target), density by layer (one chart, one line per layer), prune/recovery events, accuracy vs
compression across the project's runs, and the masks (images of h(M), histograms of M).

Build it without a server (the object can be inspected and tested), save it when online::

    python -m lightning_auxprune.wandb_dashboard --entity my-team --project my-project
    python -m lightning_auxprune.wandb_dashboard --entity my-team --project my-project --dry-run

:data:`TENSORBOARD_LAYOUT` is the same layout as TensorBoard custom scalars; the callback writes
it to every ``TensorBoardLogger`` at the start of ``fit``.

Examples:
    >>> workspace = build_workspace("team", "pruning", layers=["net.fc1"])
    >>> [s.name for s in workspace.sections]
    ['Pruning progress', 'Density by layer', 'Prune and recovery events', 'Accuracy vs compression', 'Masks']

"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

TENSORBOARD_LAYOUT: dict[str, dict[str, list[Any]]] = {
    "auxprune": {
        "pruning progress": ["Multiline", [r"auxprune/sparsity", r"auxprune/target", r"auxprune/flops_ratio"]],
        "compression": ["Multiline", [r"auxprune/compression"]],
        "lambda": ["Multiline", [r"auxprune/lambda"]],
        "density by layer": ["Multiline", [r"auxprune/density/.*"]],
        "prune and recovery events": ["Multiline", [r"auxprune/pruned$", r"auxprune/recovered$"]],
    }
}
"""TensorBoard custom-scalars layout (``SummaryWriter.add_custom_scalars``) with the workspace's charts."""


def build_workspace(
    entity: str,
    project: str,
    accuracy_key: str = "val/acc",
    name: str = "AuxMaskPruning",
    layers: list[str] | None = None,
) -> Any:
    """The workspace as a ``wandb_workspaces.workspaces.Workspace`` (not saved).

    Args:
        entity: W&B entity (user or team).
        project: W&B project.
        accuracy_key: The accuracy your LightningModule logs (for accuracy vs compression).
        name: The workspace's name.
        layers: Masked layer names, for one image panel each (the images are logged per layer,
            ``auxprune/masks/<layer>``); ``None``: no image panels.

    Raises:
        ImportError: Without the ``wandb-workspaces`` package (``pip install lightning-auxprune[wandb]``).

    """
    try:
        wr: Any = importlib.import_module("wandb_workspaces.reports.v2")
        ws: Any = importlib.import_module("wandb_workspaces.workspaces")
    except ImportError as err:
        raise ImportError("The W&B workspace needs wandb-workspaces: pip install 'lightning-auxprune[wandb]'.") from err
    progress = [
        wr.LinePlot(title="Sparsity and target", y=["auxprune/sparsity", "auxprune/target"]),
        wr.LinePlot(title="Compression", y=["auxprune/compression"], log_y=True),
        wr.LinePlot(title="FLOPs kept", y=["auxprune/flops_ratio"]),
        wr.LinePlot(title="Lambda", y=["auxprune/lambda"], log_y=True),
    ]
    density = [wr.LinePlot(title="Density by layer", metric_regex="auxprune/density/.*")]
    events = [
        wr.LinePlot(title="Events since the last log", y=["auxprune/pruned", "auxprune/recovered"]),
        wr.LinePlot(title="Events in all", y=["auxprune/pruned_total", "auxprune/recovered_total"]),
    ]
    across = [
        wr.ScatterPlot(
            title=f"{accuracy_key} vs compression",
            x=wr.SummaryMetric("auxprune/compression"),
            y=wr.SummaryMetric(accuracy_key),
            log_x=True,
        )
    ]
    masks: list[Any] = [
        wr.MediaBrowser(title=f"{layer}: h(M), white = open", media_keys=[f"auxprune/masks/{layer}"])
        for layer in layers or []
    ]
    masks += [
        wr.LinePlot(title="Layers closed or non-finite", y=["auxprune/closed_layers", "auxprune/nonfinite_layers"])
    ]
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[
            ws.Section(name="Pruning progress", panels=progress, is_open=True),
            ws.Section(name="Density by layer", panels=density, is_open=True),
            ws.Section(name="Prune and recovery events", panels=events),
            ws.Section(name="Accuracy vs compression", panels=across, is_open=True),
            ws.Section(name="Masks", panels=masks),
        ],
    )


def main(argv: list[str] | None = None) -> Any:
    """Build the workspace and save it to W&B (``--dry-run``: print it only)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entity", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--accuracy-key", default="val/acc")
    parser.add_argument("--name", default="AuxMaskPruning")
    parser.add_argument("--layers", nargs="*", default=None, help="masked layer names, for the mask image panels")
    parser.add_argument("--dry-run", action="store_true", help="build and print, do not save (no server needed)")
    args = parser.parse_args(argv)
    workspace = build_workspace(args.entity, args.project, args.accuracy_key, args.name, args.layers)
    if args.dry_run:
        for section in workspace.sections:
            print(f"{section.name}: {', '.join(str(getattr(p, 'title', type(p).__name__)) for p in section.panels)}")
        return workspace
    workspace.save()
    print(f"saved: {workspace.url}")
    return workspace


if __name__ == "__main__":
    main()
