"""BodyNet's evaluation measures beyond those watched in training (see
`pipeline.training.metrics` for PCKh, part IoU, 3D joint error and voxel IoU).

- Surface error: the mean distance (mm) between corresponding vertices of two meshes of
  the same topology (a fitted body and the true one).
- s20 / s10: the 20 % / 10 % of test images whose true shape lies farthest from the mean
  shape, measured as the surface error between the true mesh and the mean-shape (β = 0)
  mesh in the same true pose.
- Silhouette IoU, F1 and pixel accuracy of a predicted foreground against the truth.
- Part pixel accuracy (SURREAL's): per part, its true pixels labelled right, over the set,
  averaged over the 14 parts; with the depth RMSE and st-RMSE of `pipeline.training.metrics`.
- Part voxel IoU (BodyNet's Table 4.5): per class (background, the six parts) and for the
  foreground (any part against the body), intersection over union of the voxels over the set;
  `part_voxel_iou` the mean over the six parts.

Shapes: B images, V vertices, H×W silhouettes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.body_model.skeleton import VOXEL_PARTS
from pipeline.evaluation.statistics import Figure, evaluate

if TYPE_CHECKING:  # torch is imported where it is used: the tables read these measures' names without it
    import torch


def surface_error_mm(vertices: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B, V, 3), (B, V, 3) in metres → (B,) mean vertex distance in mm."""
    if vertices.shape != truth.shape:
        raise ValueError(f"meshes of different shapes: {tuple(vertices.shape)} and {tuple(truth.shape)}")
    return 1000 * (vertices.double() - truth.double()).norm(dim=-1).mean(dim=-1)


# MPI-INF-3DHP's protocol (Mehta et al. 2017), as Mehta's thesis reports VNect: a joint is
# correct within 150 mm; the AUC is the mean of the correct shares at 0, 5, ..., 150 mm
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)


def pck3d(distances_mm: np.ndarray) -> np.ndarray:
    """(B, J) joint distances (mm) -> (B,) each image's share of joints within PCK_THRESHOLD_MM."""
    return (np.asarray(distances_mm) <= PCK_THRESHOLD_MM).mean(axis=-1)


def auc3d(distances_mm: np.ndarray) -> np.ndarray:
    """(B, J) joint distances (mm) -> (B,) the area under each image's PCK curve from 0 to 150 mm
    (the mean of its PCK at AUC_THRESHOLDS_MM)."""
    return (np.asarray(distances_mm)[..., None] <= AUC_THRESHOLDS_MM).mean(axis=(-2, -1))


def joint_measures(joints: torch.Tensor, truth: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image (B,): MPJPE and PA-MPJPE (mm) of joints (B, J, 3) against the truth's, and their
    3DPCK and its AUC (pelvis-centred, as MPJPE)."""
    from pipeline.training.metrics import joint_distances_mm

    distances = joint_distances_mm(joints, truth).numpy()
    return {
        "joint_error_mm": distances.mean(axis=1),
        "pa_joint_error_mm": procrustes_error_mm(joints.numpy(), truth.numpy()),
        "pck3d": pck3d(distances),
        "auc3d": auc3d(distances),
    }


def procrustes_error_mm(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(B, J, 3), (B, J, 3) joints → (B,) PA-MPJPE: the mean joint distance (mm) after the
    similarity (rotation, uniform scale, translation) that best aligns the prediction to the
    truth (Umeyama's solution, reflections excluded)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    p = predicted - predicted.mean(1, keepdims=True)
    t = truth - truth.mean(1, keepdims=True)
    u, singular, vt = np.linalg.svd(np.einsum("bji,bjk->bik", p, t))  # (B, 3, 3)
    sign = np.sign(np.linalg.det(u @ vt))
    correction = np.ones_like(singular)
    correction[:, -1] = sign
    rotation = u @ (correction[:, :, None] * vt)  # p @ rotation ≈ t
    scale = (singular * correction).sum(1) / np.maximum((p**2).sum((1, 2)), 1e-12)
    aligned = scale[:, None, None] * p @ rotation
    return 1000 * np.linalg.norm(aligned - t, axis=-1).mean(1)


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
    import torch

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
MEANS = (
    "voxel_iou",
    "surface_error_mm",
    "joint_error_mm",
    "pa_joint_error_mm",
    "silhouette_iou",
    "silhouette_f1",
    "silhouette_accuracy",
    "depth_rmse_mm",
    "depth_st_rmse_mm",
    "pck3d",
    "auc3d",
    "peak_error_px",
    "joint_error_mm_top5",  # the pose classifier's (pipeline.mosaic): the best of its top five classes
    "joint_error_mm_lower_bound",  # the truth's nearest class
    "class_accuracy",  # its top class is the truth's nearest
)
PARTS = range(1, 15)  # the 14 body parts (0: background)
VOXEL_PART_NAMES = ("background", *VOXEL_PARTS)  # the part voxels' classes, in order


def part_columns(denominator: str = "union") -> tuple[str, ...]:
    """images.csv's per-image part intersections, then unions (or the truth's pixels: the
    pixel accuracy's denominators), parts 1–14."""
    return tuple(f"part_{kind}_{c}" for kind in ("intersection", denominator) for c in PARTS)


def figures() -> dict[str, Figure]:
    """{summary name: how it is computed from images.csv's columns}: means of per-image
    measures; PCKh over all joints of the set; part IoU over all pixels of the set (the
    mean over the parts present); surface error and voxel IoU on s20/s10 too."""
    result = {name: Figure("mean", (name,)) for name in MEANS}
    result |= {f"{name}_{subset}": Figure("mean", (name,), subset) for name in PER_SUBSET for subset in SUBSETS}
    result |= {name: Figure("ratio", (f"{name}_correct", f"{name}_visible")) for name in ("pckh", "pckh_head")}
    result["part_iou"] = Figure("class_ratio", part_columns())
    result["part_accuracy"] = Figure("class_ratio", part_columns("truth"))
    for name in (*VOXEL_PART_NAMES, "foreground"):
        result[f"part_voxel_iou_{name}"] = Figure(
            "ratio", (f"part_voxel_intersection_{name}", f"part_voxel_union_{name}")
        )
    result["part_voxel_iou"] = Figure(
        "class_ratio", tuple(f"part_voxel_{kind}_{name}" for kind in ("intersection", "union") for name in VOXEL_PARTS)
    )
    return result


def add_subsets(images: pd.DataFrame) -> pd.DataFrame:
    """images with boolean columns s20 and s10 (where shape deviations are known)."""
    if "shape_deviation_mm" in images and len(images) and images["shape_deviation_mm"].notna().all():
        for subset, fraction in SUBSETS.items():
            images[subset] = extreme_shapes(images["shape_deviation_mm"].to_numpy(), fraction)
    return images


def summarise(images: pd.DataFrame) -> dict[str, float]:
    """The test set's figures (`figures`) from per-image measures, as
    `pipeline.evaluation.network` writes them."""
    summary: dict[str, float] = {"images": float(len(images))}
    for name, figure in figures().items():
        needed = set(figure.columns) | ({figure.subset} if figure.subset else set())
        if needed <= set(images.columns):
            summary[name] = float(evaluate(figure, images))
    return summary
