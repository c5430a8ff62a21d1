"""The flow-quality figure (each flow method's action accuracy against its end-point error) and
the view study's representations in two dimensions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.figures import save_figure  # noqa: E402


def flow_quality_figure(quality: pd.DataFrame, out: Path) -> None:
    """Clip and video accuracy (%, 95 % intervals) against the end-point error on the body."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, column in zip(axes, ("clip_accuracy", "video_accuracy")):
        below = quality[column] - quality[f"{column}_low"]
        above = quality[f"{column}_high"] - quality[column]
        ax.errorbar(quality["epe_body"], quality[column], yerr=[below, above], fmt="o", capsize=3)
        for row in quality.itertuples():
            ax.annotate(
                row.method, (row.epe_body, getattr(row, column)), fontsize=7, xytext=(4, 2), textcoords="offset points"
            )
        ax.set_xlabel("end-point error on the body (pixels)")
        ax.set_title(column.replace("_", " "), fontsize=9)
    axes[0].set_ylabel("accuracy (%)")
    fig.suptitle("LTC on each flow: flow quality against action accuracy", fontsize=9)
    save_figure(fig, out)


def view_embedding_figure(panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], actions: list[str], out: Path):
    """Per network (row), its test videos' representations in two dimensions (t-SNE), coloured
    by view and by action, as the thesis's Figure 6-1: a view-invariant representation mixes
    the views and groups the actions. `panels`: {row: (points (N, 2), views (N,), labels (N,))}."""
    fig, axes = plt.subplots(len(panels), 2, figsize=(7, 3.2 * len(panels)), squeeze=False)
    views_cmap, actions_cmap = plt.get_cmap("viridis"), plt.get_cmap("tab10")
    for (row, (points, views, labels)), (by_view, by_action) in zip(panels.items(), axes):
        for k, view in enumerate(sorted(set(views))):
            mask = views == view
            colour = views_cmap(k / max(len(set(views)) - 1, 1))
            by_view.scatter(*points[mask].T, s=12, color=colour, label=f"v{view}")
        for label in sorted(set(labels)):
            mask = labels == label
            by_action.scatter(*points[mask].T, s=12, color=actions_cmap(label % 10), label=actions[label])
        by_view.set_title(f"{row}: coloured by view", fontsize=9)
        by_action.set_title(f"{row}: coloured by action", fontsize=9)
        for ax in (by_view, by_action):
            ax.set_xticks([])
            ax.set_yticks([])
        by_view.legend(fontsize=7, loc="best")
        by_action.legend(fontsize=6, loc="best", ncol=2)
    fig.suptitle("test videos' representations (t-SNE)", fontsize=9)
    save_figure(fig, out)
