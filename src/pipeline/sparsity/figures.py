"""The per-layer sparsity plot: share of filters removed, from the first layer to the last."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.figures import save_figure


def layer_plot(profile: pd.DataFrame, table: pd.DataFrame, out: str | Path) -> None:
    """Left: the optimiser study (one line per setting); right: BodyNet's trained networks
    (one line per stage and subnetwork). x: the layer's place in the network, 0 first, 1 last."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = profile["key"].str.startswith("study/")
    panels = [("optimiser study", profile[study]), ("BodyNet's networks", profile[~study])]
    panels = [(title, part) for title, part in panels if not part.empty]
    fig, axes = plt.subplots(1, len(panels), figsize=(9.5 * len(panels), 4.8), squeeze=False)
    for ax, (title, part) in zip(axes[0], panels):
        for (key, network), lines in part.groupby(["key", "network"], sort=False):
            row = table[(table["key"] == key) & (table["network"] == network)].iloc[0]
            label = key.removeprefix("study/") if key.startswith("study/") else f"{key}: {network}"
            ax.plot(
                lines["position"],
                lines["removed_percent"],
                marker=".",
                linewidth=1,
                label=f"{label} ({row['pruned_percent']:.0f} %)",
            )
        ax.set_title(title)
        ax.set_xlabel("layer (0: first, 1: last)")
        ax.set_ylabel("filters removed (%)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    save_figure(fig, out)
