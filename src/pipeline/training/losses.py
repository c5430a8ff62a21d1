"""BodyNet's losses. Every subnetwork's loss sums over its stacks (intermediate supervision).

Shapes: B batch, J joints, s heatmap size, D voxel size.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

EPSILON = 1e-6

# BodyNet's weights of the end-to-end loss (gulvarol/bodynet, model.lua): chosen so that
# each term's gradients have similar magnitudes, normalised to sum to one.
BODYNET_WEIGHTS = {"segm": 1e7, "pose2d": 1e3, "pose3d": 1e6, "voxels": 10.0, "fv": 1.0, "sv": 1.0}
BODYNET_WEIGHTS |= {"part_voxels": 10.0, "part_fv": 1.0, "part_sv": 1.0}  # the part voxels' as the voxels'


def normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {name: value / total for name, value in weights.items()}


def pose2d(predictions: list[torch.Tensor], heatmaps: torch.Tensor) -> torch.Tensor:
    return sum(F.mse_loss(p.float(), heatmaps) for p in predictions)


def segm(predictions: list[torch.Tensor], parts: torch.Tensor) -> torch.Tensor:
    return sum(F.cross_entropy(p.float(), parts) for p in predictions)


def depth(predictions: list[torch.Tensor], classes: torch.Tensor) -> torch.Tensor:
    """SURREAL's: per-pixel cross-entropy over the 20 depth classes."""
    return sum(F.cross_entropy(p.float(), classes) for p in predictions)


def part_voxels(predictions: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """BodyNet's part voxels: per-voxel cross-entropy over background and the six parts."""
    return sum(F.cross_entropy(p.float(), labels) for p in predictions)


def part_views(probabilities: torch.Tensor, axis: int) -> torch.Tensor:
    """(B, 7, D, D, D) class probabilities or one-hot labels (z, y, x) → (B, 7, D, D) their
    projection along a voxel axis (1: z, the front view; 3: x, the side view): each part's
    maximum, the background's minimum (BodyNet's approximation of an orthographic view)."""
    axis += 1  # after the class axis
    return torch.cat([probabilities[:, :1].amin(dim=axis), probabilities[:, 1:].amax(dim=axis)], dim=1)


def _part_projection(predictions: list[torch.Tensor], labels: torch.Tensor, axis: int) -> torch.Tensor:
    truth = part_views(F.one_hot(labels, predictions[0].shape[1]).movedim(-1, 1).float(), axis)
    return sum(_bce(part_views(torch.softmax(p.float(), dim=1), axis), truth) for p in predictions)


def part_fv(predictions: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """The part voxels' front-view re-projection loss: BCE of each class's view, averaged."""
    return _part_projection(predictions, labels, axis=1)


def part_sv(predictions: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """The part voxels' side-view re-projection loss."""
    return _part_projection(predictions, labels, axis=3)


def pose3d(predictions: list[torch.Tensor], volumes: torch.Tensor) -> torch.Tensor:
    return sum(F.mse_loss(p.float(), volumes) for p in predictions)


def voxels(predictions: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    return sum(F.binary_cross_entropy_with_logits(p.float(), target) for p in predictions)


def front_view(logits: torch.Tensor) -> torch.Tensor:
    """(B, D, D, D) voxel logits (z, y, x) → (B, D, D) silhouette probabilities: max over z."""
    return torch.sigmoid(logits.float()).amax(dim=1)


def side_view(logits: torch.Tensor) -> torch.Tensor:
    """(B, D, D, D) voxel logits (z, y, x) → (B, D, D) (z, y) probabilities: max over x."""
    return torch.sigmoid(logits.float()).amax(dim=3)


def _bce(probability: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(probability.clamp(EPSILON, 1 - EPSILON), target)


def fv(predictions: list[torch.Tensor], silhouette: torch.Tensor) -> torch.Tensor:
    return sum(_bce(front_view(p), silhouette) for p in predictions)


def sv(predictions: list[torch.Tensor], silhouette: torch.Tensor) -> torch.Tensor:
    return sum(_bce(side_view(p), silhouette) for p in predictions)


def shape(predictions: list[torch.Tensor], betas: torch.Tensor) -> torch.Tensor:
    return sum(F.mse_loss(p.float(), betas) for p in predictions)


def terms(
    outputs: dict[str, list[torch.Tensor]], batch: dict[str, torch.Tensor], names: list[str]
) -> dict[str, torch.Tensor]:
    """The named loss terms of a batch."""
    compute = {
        "pose2d": lambda: pose2d(outputs["pose2d"], batch["heatmaps"]),
        "segm": lambda: segm(outputs["segm"], batch["parts"]),
        "depth": lambda: depth(outputs["depth"], batch["depth_classes"]),
        "pose3d": lambda: pose3d(outputs["pose3d"], batch["volumes"]),
        "voxels": lambda: voxels(outputs["voxels"], batch["voxels"]),
        "fv": lambda: fv(outputs["voxels"], batch["silhouette_front"]),
        "sv": lambda: sv(outputs["voxels"], batch["silhouette_side"]),
        "shape": lambda: shape(outputs["shape"], batch["betas"]),
        "part_voxels": lambda: part_voxels(outputs["part_voxels"], batch["part_voxels"]),
        "part_fv": lambda: part_fv(outputs["part_voxels"], batch["part_voxels"]),
        "part_sv": lambda: part_sv(outputs["part_voxels"], batch["part_voxels"]),
    }
    return {name: compute[name]() for name in names}
