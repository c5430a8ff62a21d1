"""BodyNet's evaluation measures beyond those watched in training (see
`pipeline.training.metrics` for PCKh, part IoU, 3D joint error and voxel IoU).

- Surface error: the mean distance (mm) between corresponding vertices of two meshes of
  the same topology (a fitted body and the true one).
- s20 / s10: the 20 % / 10 % of test images whose true shape lies farthest from the mean
  shape, measured as the surface error between the true mesh and the mean-shape (β = 0)
  mesh in the same true pose.
- Silhouette IoU, F1 and pixel accuracy of a predicted foreground against the truth.

Shapes: B images, V vertices, H×W silhouettes.
"""

from __future__ import annotations

import numpy as np
import torch


def surface_error_mm(vertices: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B, V, 3), (B, V, 3) in metres → (B,) mean vertex distance in mm."""
    if vertices.shape != truth.shape:
        raise ValueError(f"meshes of different shapes: {tuple(vertices.shape)} and {tuple(truth.shape)}")
    return 1000 * (vertices.double() - truth.double()).norm(dim=-1).mean(dim=-1)


def extreme_shapes(shape_deviation_mm: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the `fraction` of images with the largest deviation from the mean
    shape (at least one image; ties broken by order)."""
    deviation = np.asarray(shape_deviation_mm, dtype=np.float64)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    count = max(1, int(round(fraction * len(deviation))))
    chosen = np.argsort(-deviation, kind="stable")[:count]
    mask = np.zeros(len(deviation), dtype=bool)
    mask[chosen] = True
    return mask


def shape_deviation_mm(model, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """(B,) surface error between each true body and the mean shape in the same pose."""
    with torch.no_grad():
        true = model(betas, pose).vertices
        mean = model(torch.zeros_like(betas), pose).vertices
    return surface_error_mm(mean, true)


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(B, ...) booleans (silhouettes, voxels) → per image IoU (1 where both are empty)."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"masks of different shapes: {predicted.shape} and {truth.shape}")
    axes = tuple(range(1, predicted.ndim))
    both, either = (predicted & truth).sum(axes).astype(np.float64), (predicted | truth).sum(axes)
    return np.where(either > 0, both / np.maximum(either, 1), 1.0)


def silhouette_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """(B, H, W) booleans → per image IoU, F1 and pixel accuracy."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"silhouettes of different shapes: {predicted.shape} and {truth.shape}")
    axes = tuple(range(1, predicted.ndim))
    both = (predicted & truth).sum(axes).astype(np.float64)
    total = predicted.sum(axes) + truth.sum(axes)
    return {
        "iou": mask_iou(predicted, truth),
        "f1": np.where(total > 0, 2 * both / np.maximum(total, 1), 1.0),
        "accuracy": (predicted == truth).mean(axes),
    }


SUBSETS = {"s20": 0.2, "s10": 0.1}
PER_SUBSET = ("surface_error_mm", "voxel_iou")  # measured on s20/s10 as well


def summarise(images, part_intersection: np.ndarray | None = None, part_union: np.ndarray | None = None) -> dict[str, float]:
    """The test set's figures from per-image measures (a DataFrame as
    `pipeline.evaluation.network` writes it): means, PCKh over all joints, part IoU over
    all pixels (the mean over the 14 parts present), and surface error and voxel IoU on
    s20/s10 too."""
    summary: dict[str, float] = {"images": float(len(images))}
    for name in ("voxel_iou", "surface_error_mm", "joint_error_mm", "silhouette_iou", "silhouette_f1",
                 "silhouette_accuracy"):  # fmt: skip
        if name in images:
            summary[name] = float(images[name].mean())
    if "pckh_correct" in images:
        summary["pckh"] = float(images["pckh_correct"].sum() / max(images["pckh_visible"].sum(), 1))
    if part_intersection is not None:
        union = np.asarray(part_union[1:], np.float64)
        summary["part_iou"] = float((np.asarray(part_intersection[1:]) / np.maximum(union, 1))[union > 0].mean())
    if "shape_deviation_mm" in images and images["shape_deviation_mm"].notna().all():
        for subset, fraction in SUBSETS.items():
            mask = extreme_shapes(images["shape_deviation_mm"].to_numpy(), fraction)
            for name in PER_SUBSET:
                if name in images:
                    summary[f"{name}_{subset}"] = float(images[name][mask].mean())
    return summary
