"""Figures of a training stage: loss and validation curves, and a few predictions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pipeline.figures import labels_to_rgb, save_figure  # noqa: E402
from pipeline.models.bodynet import DEPTH_CLASSES, VOXEL_PART_CLASSES  # noqa: E402
from pipeline.training.loop import TRAINING_PREFIX  # noqa: E402
from pipeline.training.samples import SampleSet, inputs, make_batch  # noqa: E402
from pipeline.training.schedule import CURVE_PANELS

MEASURES = {
    "pckh": "PCKh@0.5",
    "part_iou": "part IoU",
    "joint_error_mm": "3D joint error (mm)",
    "aligned_error_mm": "3D joint error, aligned (PA, mm)",
    "voxel_iou": "voxel IoU",
    "beta_error": "shape error (‖Δβ‖)",
    "depth_rmse_mm": "depth RMSE (mm)",
    "part_voxel_iou": "part voxel IoU",
}


def front_labels(labels: np.ndarray) -> np.ndarray:
    """(D, D, D) voxel labels (z towards the camera, y, x) → (D, D) the label seen from the
    camera at each pixel: the nearest non-zero one, 0 where the ray meets none."""
    occupied = labels[::-1] > 0  # nearest first
    first = occupied.argmax(axis=0)
    seen = np.take_along_axis(labels[::-1], first[None], axis=0)[0]
    return np.where(occupied.any(axis=0), seen, 0)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over the last `window` values (fewer at the start)."""
    total = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (total[1:] - total[np.arange(1, len(values) + 1) - counts]) / counts


def curves(history: list[dict], steps: list[dict], title: str, out: Path) -> None:
    """Every iteration's losses (running mean) and the validation measures."""
    measures = [m for m in MEASURES if m in history[-1]]
    fig, axes = plt.subplots(1, 1 + len(measures), figsize=(4.2 * (1 + len(measures)), 3.2), squeeze=False)
    axes = axes[0]
    window = max(len(steps) // 50, 1)
    iterations = [row["iteration"] for row in steps]
    for name in sorted({k for row in steps for k in row if k.startswith("loss")}):
        values = np.array([row[name] for row in steps])
        axes[0].plot(iterations, _smooth(values, window), label=name.replace("loss_", ""), linewidth=1)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("iteration")
    axes[0].set_title(f"training loss (running mean of {window})")
    axes[0].legend(fontsize=7)
    for ax, measure in zip(axes[1:], measures):
        ax.plot([r["iteration"] for r in history], [r[measure] for r in history], marker="o", label="validation")
        seen = [r for r in history if TRAINING_PREFIX + measure in r]
        if seen:
            values = [r[TRAINING_PREFIX + measure] for r in seen]
            ax.plot([r["iteration"] for r in seen], values, marker="o", linestyle="--", label="training crops")
            ax.legend(fontsize=7)
        ax.set_xlabel("iteration")
        ax.set_title(MEASURES[measure])
    fig.suptitle(title)
    save_figure(fig, out)


def learning_curves(
    histories: dict[str, list[dict]], batch_size: int, out: Path, references: dict[str, dict[str, float]] | None = None
) -> None:
    """The validation measure of each stage against the training crops it has seen, one
    panel per measure (`CURVE_PANELS`), the same measure on training crops dashed in the
    stage's colour, with the references' figures (e.g. {"constant": {measure: value}}) as
    horizontal lines: how far each stage got, whether it was still climbing, and whether it
    fits its own training crops better than the test's."""
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 3.4))
    for ax, (measure, stages) in zip(axes, CURVE_PANELS.items()):
        for name in stages:
            rows = [row for row in histories.get(name, []) if measure in row]
            if rows:
                crops = [row["iteration"] * batch_size / 1000 for row in rows]
                (line,) = ax.plot(crops, [row[measure] for row in rows], marker="o", markersize=3, label=name)
                seen = [row for row in rows if TRAINING_PREFIX + measure in row]
                if seen:
                    crops = [row["iteration"] * batch_size / 1000 for row in seen]
                    values = [row[TRAINING_PREFIX + measure] for row in seen]
                    ax.plot(crops, values, linestyle="--", linewidth=1, color=line.get_color())
        # dotted and dash-dotted: dashes are the training crops' curves
        for (reference, figures), style in zip((references or {}).items(), (":", "-.")):
            if measure in figures:
                ax.axhline(figures[measure], color="grey", linestyle=style, linewidth=1, label=reference)
        ax.set_xlabel("training crops seen (thousands)")
        ax.set_title(f"{MEASURES[measure]} (dashed: on training crops)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("BodyNet's stages: test and training crops as training goes on")
    save_figure(fig, out)


@torch.no_grad()
def predictions(model, samples: SampleSet, wanted: tuple[str, ...], out: Path, count: int = 4) -> None:
    """Input, 2D pose, segmentation, depth, voxels (front and side views) and part voxels
    (seen from the camera) next to the truth."""
    model.eval()
    indices = np.linspace(0, len(samples) - 1, count).astype(int)
    batch = make_batch(samples, indices)
    device = next(model.parameters()).device
    outputs = {k: [o.float().cpu() for o in v] for k, v in model(**inputs(batch, device), wanted=wanted).items()}
    panels = [("input", lambda i: batch["rgb"][i].permute(1, 2, 0).numpy())]
    if "pose2d" in outputs:
        panels += [
            ("2D pose", lambda i: outputs["pose2d"][-1][i].amax(0).clamp(0, 1).numpy()),
            ("2D pose truth", lambda i: batch["heatmaps"][i].amax(0).numpy()),
        ]
    if "segm" in outputs:
        panels += [
            ("segmentation", lambda i: labels_to_rgb(outputs["segm"][-1][i].argmax(0).numpy(), 14)),
            ("truth", lambda i: labels_to_rgb(batch["parts"][i].numpy(), 14)),
        ]
    if "depth" in outputs:
        bins = DEPTH_CLASSES - 1  # shown nearer = brighter, background black
        panels += [
            ("depth", lambda i: outputs["depth"][-1][i].argmax(0).numpy() / bins),
            ("depth truth", lambda i: batch["depth_classes"][i].numpy() / bins),
        ]
    if "pose3d" in outputs:
        panels += [("3D pose (max over depth)", lambda i: outputs["pose3d"][-1][i].amax((0, 1)).clamp(0, 1).numpy())]
    if "voxels" in outputs:
        probability = lambda i: torch.sigmoid(outputs["voxels"][-1][i])  # noqa: E731
        panels += [
            ("voxels front", lambda i: probability(i).amax(0).numpy()),
            ("voxels side", lambda i: probability(i).amax(2).T.numpy()),
            (
                "voxel truth front | side",
                lambda i: np.concatenate([batch["voxels"][i].amax(0).numpy(), batch["voxels"][i].amax(2).T.numpy()], 1),
            ),
        ]
    if "part_voxels" in outputs:
        parts = VOXEL_PART_CLASSES - 1
        panels += [
            (
                "part voxels front",
                lambda i: labels_to_rgb(front_labels(outputs["part_voxels"][-1][i].argmax(0).numpy()), parts),
            ),
            ("part voxel truth front", lambda i: labels_to_rgb(front_labels(batch["part_voxels"][i].numpy()), parts)),
        ]
    fig, axes = plt.subplots(count, len(panels), figsize=(2.2 * len(panels), 2.2 * count), squeeze=False)
    for row, index in enumerate(range(count)):
        for col, (title, draw) in enumerate(panels):
            axes[row, col].imshow(draw(index), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(title, fontsize=8)
    save_figure(fig, out)
