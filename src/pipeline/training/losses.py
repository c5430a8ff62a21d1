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
    """BodyNet's: MSE between the predicted and the Gaussian target volumes (B, J, Z, s, s)."""
    return sum(F.mse_loss(p.float(), volumes) for p in predictions)


def _visible(volumes: torch.Tensor) -> torch.Tensor:
    """(B, J) 1 where a joint's target volume holds its Gaussian (the joint lies on the map)."""
    return (volumes.flatten(2).sum(-1) > 0).float()


def pose3d_softmax(logits: list[torch.Tensor], volumes: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between each joint's softmax over its whole volume (Z·s·s cells) and its
    Gaussian target normalised to sum to one, averaged over the joints on the map: every cell
    competes for the joint's mass, so the network cannot settle on the all-zero volume an MSE
    on sparse targets rewards."""
    visible = _visible(volumes)
    target = volumes.flatten(2) / volumes.flatten(2).sum(-1, keepdim=True).clamp_min(EPSILON)
    total = 0.0
    for p in logits:
        cross_entropy = -(target * F.log_softmax(p.float().flatten(2), dim=-1)).sum(-1)
        total = total + (cross_entropy * visible).sum() / visible.sum().clamp_min(1)
    return total


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """(B, J, Z, s, s) logits → (B, J, 3) the expected (x, y, z) cell under each joint's softmax
    over its volume (Sun et al., "Integral Human Pose Regression", 2018)."""
    bins, size = logits.shape[2], logits.shape[-1]
    probability = F.softmax(logits.float().flatten(2), dim=-1).unflatten(2, (bins, size, size))
    cells = [torch.arange(n, dtype=probability.dtype, device=probability.device) for n in (size, size, bins)]
    x = (probability.sum((2, 3)) * cells[0]).sum(-1)
    y = (probability.sum((2, 4)) * cells[1]).sum(-1)
    z = (probability.sum((3, 4)) * cells[2]).sum(-1)
    return torch.stack([x, y, z], dim=-1)


def pose3d_integral(logits: list[torch.Tensor], cells: torch.Tensor, volumes: torch.Tensor) -> torch.Tensor:
    """L1 distance, in volume cells, between the soft-argmax of each joint's volume and its true
    position `cells` (B, J, 3: x, y on the heatmap, z the continuous depth bin), averaged over
    the joints on the map."""
    visible = _visible(volumes)
    total = 0.0
    for p in logits:
        distance = (soft_argmax(p) - cells).abs().sum(-1)
        total = total + (distance * visible).sum() / visible.sum().clamp_min(1)
    return total


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


def pose3d_term(outputs: dict[str, list[torch.Tensor]], batch: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """The 3D-pose loss of `kind` (pipeline.models.bodynet.POSE3D_LOSSES): MSE on the volumes, the others on the logits
    the network gives beside them (`pose3d_logits`)."""
    if kind == "mse":
        return pose3d(outputs["pose3d"], batch["volumes"])
    parts = kind.split("+")
    total = 0.0
    if "softmax" in parts:
        total = total + pose3d_softmax(outputs["pose3d_logits"], batch["volumes"])
    if "integral" in parts:
        total = total + pose3d_integral(outputs["pose3d_logits"], batch["joint_cells"], batch["volumes"])
    return total


def terms(
    outputs: dict[str, list[torch.Tensor]], batch: dict[str, torch.Tensor], names: list[str], pose3d_loss: str = "mse"
) -> dict[str, torch.Tensor]:
    """The named loss terms of a batch; `pose3d_loss` is the 3D-pose network's (its config's)."""
    compute = {
        "pose2d": lambda: pose2d(outputs["pose2d"], batch["heatmaps"]),
        "segm": lambda: segm(outputs["segm"], batch["parts"]),
        "depth": lambda: depth(outputs["depth"], batch["depth_classes"]),
        "pose3d": lambda: pose3d_term(outputs, batch, pose3d_loss),
        "voxels": lambda: voxels(outputs["voxels"], batch["voxels"]),
        "fv": lambda: fv(outputs["voxels"], batch["silhouette_front"]),
        "sv": lambda: sv(outputs["voxels"], batch["silhouette_side"]),
        "shape": lambda: shape(outputs["shape"], batch["betas"]),
        "part_voxels": lambda: part_voxels(outputs["part_voxels"], batch["part_voxels"]),
        "part_fv": lambda: part_fv(outputs["part_voxels"], batch["part_voxels"]),
        "part_sv": lambda: part_sv(outputs["part_voxels"], batch["part_voxels"]),
    }
    return {name: compute[name]() for name in names}
