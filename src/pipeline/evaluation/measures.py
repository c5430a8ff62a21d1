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


def silhouette_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """(B, H, W) booleans → per image IoU, F1 and pixel accuracy."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"silhouettes of different shapes: {predicted.shape} and {truth.shape}")
    axes = tuple(range(1, predicted.ndim))
    both = (predicted & truth).sum(axes).astype(np.float64)
    either = (predicted | truth).sum(axes)
    total = predicted.sum(axes) + truth.sum(axes)
    return {
        "iou": np.where(either > 0, both / np.maximum(either, 1), 1.0),
        "f1": np.where(total > 0, 2 * both / np.maximum(total, 1), 1.0),
        "accuracy": (predicted == truth).mean(axes),
    }
