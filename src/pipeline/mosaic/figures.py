"""The study's sheet: for a few of the real crops, the crop, the same clip rendered again
("surreal"), its mosaic with and without the blend, the index map and the pool crops the mosaic
was cut from, so that the three sources of one pose can be compared by eye (Rogez & Schmid's
Fig. 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.figures import labels_to_rgb, save_figure
from pipeline.mosaic.dataset import own_view_mosaic, resized
from pipeline.mosaic.engine import MosaicSettings, Pool
from pipeline.training.samples import SampleSet

SOURCES_SHOWN = 3  # the pool crops covering most of a mosaic


def study_sheet(
    mosaics: dict[str, np.ndarray],
    unblended: dict[str, np.ndarray],
    real: SampleSet,
    surreal: SampleSet,
    pool: Pool,
    settings: MosaicSettings,
    shown: int,
    out: str | Path,
    own_clips_excluded: bool = True,
) -> None:
    """`shown` poses spread over the mosaic set, a row each; each mosaic is made again from
    `pool` (which must be the one it was cut from) for its index map and sources."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.linspace(0, len(mosaics["rows"]) - 1, shown).round().astype(int)
    headers = ["real crop", "surreal (rendered again)", "mosaic", "without the blend", "index map"]
    headers += [f"pool crop {k + 1}" for k in range(SOURCES_SHOWN)]
    fig, axes = plt.subplots(shown, len(headers), figsize=(1.6 * len(headers), 1.7 * shown), squeeze=False)
    for axes_row, pick in zip(axes, picks):
        row = int(mosaics["rows"][pick])
        made = own_view_mosaic(pool, real, row, settings, own_clips_excluded)[0]
        shares = np.bincount(made.index.ravel(), minlength=len(made.sources))
        used = [made.sources[k] for k in np.argsort(-shares)]
        used = list(dict.fromkeys(used))[:SOURCES_SHOWN]
        panels = [
            resized(real.arrays["rgb"][[row]], pool.size)[0],
            resized(surreal.arrays["rgb"][[row]], pool.size)[0],
            mosaics["images"][pick],
            unblended["images"][pick],
            labels_to_rgb(made.index + 1, len(made.sources)),
            *(pool.images[k] for k in used),
        ]
        for ax, panel in zip(axes_row, panels):
            ax.imshow(panel)
        for ax in axes_row:
            ax.axis("off")
    for ax, header in zip(axes[0], headers):
        ax.set_title(header, fontsize=7)
    save_figure(fig, out)
