"""Colour-wheel pictures of the true and the estimated flow of a few frames."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.clips import Clip  # noqa: E402
from pipeline.figures import flow_to_rgb, save_figure  # noqa: E402
from pipeline.flow.extract import RENDERED  # noqa: E402
from pipeline.flow.storage import read_flow  # noqa: E402


def flow_colours(root: Path, split: str, stem: str, folders: dict[str, Path], out: Path, frames: int = 3) -> None:
    """One row per frame of clip `stem`: the frame, then each method's flow (the folders of
    lossless flows, by method), all on the true flow's colour scale."""
    paths = list(Path(root).glob(f"cmu/{split}/run*/*/{stem}_info.mat"))
    clip = Clip(paths[0])
    flows = {method: read_flow(folder, stem) for method, folder in folders.items()}
    pairs = len(next(iter(flows.values())))
    chosen = np.linspace(0, pairs - 1, frames + 2).round().astype(int)[1:-1]
    reference = flows.get(RENDERED, next(iter(flows.values())))
    fig, axes = plt.subplots(
        len(chosen), len(flows) + 1, figsize=(2.4 * (len(flows) + 1), 1.9 * len(chosen)), squeeze=False
    )
    for row, t in zip(axes, chosen):
        row[0].imshow(clip.rgb(int(t)))
        scale = max(float(np.linalg.norm(reference[t], axis=-1).max()), 1e-3)
        for ax, (method, flow) in zip(row[1:], flows.items()):
            ax.imshow(flow_to_rgb(flow[t], scale))
        row[0].set_ylabel(f"frame {t + 1}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], ["frame", *flows]):
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{stem}: flow to the next frame (hue: direction, saturation: length, same scale per row)", fontsize=9)
    save_figure(fig, out)
