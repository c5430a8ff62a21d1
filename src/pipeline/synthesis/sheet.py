"""A contact sheet of generated clips (every ground-truth pass of a few frames), and the same
clips in motion: an animated PNG, which a browser and the workflow's report play as they show
any picture."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.atomic import atomic_output  # noqa: E402
from pipeline.clips import Clip, ClipError  # noqa: E402
from pipeline.figures import depth_to_rgb, flow_to_rgb, labels_to_rgb, normals_to_rgb  # noqa: E402

FPS = 30  # SURREAL's clips'
COLUMNS = ("RGB + 2D joints", "segmentation (24 parts)", "depth", "forward flow", "normals", "voxels (front | side)")


def _voxel_views(voxels: np.ndarray) -> np.ndarray:
    """Front (max over z) and side (max over x) views of voxels (Z, Y, X), side by side."""
    front = voxels.max(axis=0)
    side = voxels.max(axis=2).T  # (Y, Z)
    height = max(front.shape[0], side.shape[0])
    pad = lambda a: np.pad(a, ((0, height - a.shape[0]), (0, 1)))  # noqa: E731
    return np.concatenate([pad(front), pad(side)], axis=1)


def contact_sheet(clips: list[Clip], out: str | Path) -> None:
    """One row per clip (its middle frame), one column per pass."""
    fig, axes = plt.subplots(len(clips), len(COLUMNS), figsize=(2.6 * len(COLUMNS), 2.1 * len(clips)), squeeze=False)
    for row, clip in zip(axes, clips):
        t = (clip.info.frames - 1) // 2
        joints = clip.info.joints2d[t]
        panels = [
            clip.rgb(t),
            labels_to_rgb(clip.segm(t).astype(int), 24),
            depth_to_rgb(clip.depth(t)),
            flow_to_rgb(clip.forward_flow(t)),
            normals_to_rgb(clip.normal(t)),
        ]
        for ax, image in zip(row, panels):
            ax.imshow(image)
        row[0].scatter(joints[:, 0], joints[:, 1], s=4, c="red")
        row[0].set_ylabel(f"{clip.stem}\nframe {t + 1}", fontsize=7)
        if clip.file("_voxels.mat").exists():
            try:
                row[5].imshow(_voxel_views(clip.voxels(t)), cmap="gray")
            except ClipError:  # voxels only for some frames
                pass
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], COLUMNS):
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _depth_frames(clip: Clip, background: float = 1e3) -> list[np.ndarray]:
    """A clip's depth as RGB frames on one scale for the whole clip (a scale per frame would
    flicker)."""
    depths = [clip.depth(t) for t in range(clip.info.frames)]
    body = np.concatenate([d[d < background] for d in depths])
    limits = (body.min(), body.max()) if body.size else None
    return [depth_to_rgb(depth, background, limits) for depth in depths]


def clip_animation(clips: list[Clip], out: str | Path, scale: float = 0.5) -> int:
    """An animated PNG of the clips playing together at SURREAL's 30 fps, a row per clip:
    RGB, the 24-part segmentation and depth. Clips of different lengths loop on the longest.
    Returns the number of frames."""
    import cv2
    from PIL import Image

    rows = []
    for clip in clips:
        segm = [labels_to_rgb(clip.segm(t).astype(int), 24) for t in range(clip.info.frames)]
        rgb = [clip.rgb(t) for t in range(clip.info.frames)]
        rows.append([np.concatenate(panels, axis=1) for panels in zip(rgb, segm, _depth_frames(clip))])
        clip.forget()
    length = max(len(row) for row in rows)
    images = []
    for t in range(length):
        grid = np.concatenate([row[t % len(row)] for row in rows], axis=0)
        size = (round(grid.shape[1] * scale), round(grid.shape[0] * scale))
        images.append(Image.fromarray(cv2.resize(grid, size, interpolation=cv2.INTER_AREA)))
    with atomic_output(out) as tmp:
        images[0].save(tmp, format="PNG", save_all=True, append_images=images[1:], duration=1000 / FPS, loop=0)
    return length
