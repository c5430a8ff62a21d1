"""The flow-quality figure: each flow method's action accuracy against its end-point error."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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
