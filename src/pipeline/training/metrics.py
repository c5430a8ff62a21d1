"""BodyNet's evaluation measures, as the paper defines them.

- PCKh@0.5: as BodyNet's code measures it, a limb joint is right when its heatmap's peak lies
  within half a tenth of the heatmap's side of the truth; `pckh_head` is the stricter MPII
  normalisation, within half the head's size (the distance between head and neck joints).
- Part IoU: intersection over union of each of the 14 parts over the whole set, averaged.
- 3D joint error: mean distance (mm) over the 16 joints, both poses centred on the pelvis;
  the volume's peak gives image position and depth bin, turned into metres with the known
  focal length and root depth.
- Voxel IoU: intersection over union of the voxels above 0.5 with the truth.
- Part voxel IoU (the paper's Table 4.5): each voxel's likeliest class against the truth,
  intersection over union of each of the six parts over the whole set, averaged; the
  foreground's, any part against the body.
- Depth RMSE (SURREAL's, Varol et al. 2017, §3.5.1): on the pixels that are a person in
  the truth, the root-mean-square difference between the predicted depth bin (the likeliest
  of the 19, background aside) and the true one, times the bin's 45 mm; st-RMSE the same
  after the scale and shift of the predicted bins that fit the truth best (least squares).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from pipeline.datasets.surreal import DEPTH_BIN_SIZE

PELVIS = 6  # MPII slot


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """(B, J, h, w) → (B, J, 2) coordinates (x, y) of each map's maximum, refined to a
    fraction of a pixel by the centroid of the positive values around it (3×3): at small
    heatmaps a whole pixel is a large part of the PCKh threshold."""
    count, joints, height, width = maps.shape
    flat = maps.flatten(2).argmax(dim=2)
    x, y = flat % width, flat // width
    padded = torch.nn.functional.pad(maps.float(), (1, 1, 1, 1))
    offsets = torch.arange(-1, 2)
    rows = (y[..., None] + 1 + offsets).clamp(0, height + 1)  # (B, J, 3)
    cols = (x[..., None] + 1 + offsets).clamp(0, width + 1)
    batch = torch.arange(count)[:, None, None, None]
    joint = torch.arange(joints)[None, :, None, None]
    window = padded[batch, joint, rows[..., :, None], cols[..., None, :]].clamp_min(0)  # (B, J, 3, 3)
    total = window.sum(dim=(-1, -2)).clamp_min(1e-12)
    dx = (window.sum(dim=-2) * offsets).sum(-1) / total
    dy = (window.sum(dim=-1) * offsets).sum(-1) / total
    return torch.stack([x + dx, y + dy], dim=-1).to(torch.float32)


# BodyNet's code scores 2D pose on the limbs (MPII slots: ankles, knees, hips, wrists, elbows)
# within 0.5 × a tenth of the heatmap's side (gulvarol/bodynet, training/util/eval.lua,
# heatmapAccuracy, after Newell et al.'s pose-hg-train): the PCKh@0.5 its tables report.
PCK_LIMBS = (0, 1, 2, 3, 4, 5, 10, 11, 14, 15)
PCK_REFERENCES = ("bodynet", "head")


def pckh_per_image(
    heatmaps: torch.Tensor, batch: dict[str, torch.Tensor], reference: str = "bodynet", threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(correct joints, visible joints) of each image (B,), (B,).

    reference 'bodynet': the limbs, within `threshold` × (heatmap side / 10) pixels, as
    BodyNet's code measures its PCKh@0.5; 'head': all 16 joints within `threshold` × the
    head's size (the head–neck distance), MPII's normalisation (about half as wide here)."""
    truth, size = batch["joints"], heatmaps.shape[-1]
    visible = ((truth >= 0) & (truth <= size - 1)).all(-1)
    distance = (peaks(heatmaps) - truth).norm(dim=-1)
    if reference == "bodynet":
        radius = torch.full_like(distance, threshold * size / 10)
        visible = visible & torch.isin(torch.arange(truth.shape[1]), torch.tensor(PCK_LIMBS))
    elif reference == "head":
        radius = threshold * batch["head_size"][:, None].expand_as(distance)
    else:
        raise ValueError(f"reference must be one of {PCK_REFERENCES}, got {reference!r}")
    correct = (distance <= radius) & visible
    return correct.sum(1).numpy(), visible.sum(1).numpy()


def pckh(heatmaps: torch.Tensor, batch: dict[str, torch.Tensor], reference: str = "bodynet") -> tuple[float, int]:
    """(correct joints, visible joints) of a batch."""
    correct, visible = pckh_per_image(heatmaps, batch, reference)
    return float(correct.sum()), int(visible.sum())


def part_counts(logits: torch.Tensor, parts: torch.Tensor, classes: int = 15) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class (intersection, union) pixel counts of a batch."""
    predicted = logits.argmax(dim=1)
    intersection = torch.stack([((predicted == c) & (parts == c)).sum() for c in range(classes)])
    union = torch.stack([((predicted == c) | (parts == c)).sum() for c in range(classes)])
    return intersection, union


def part_counts_per_image(
    logits: torch.Tensor, parts: torch.Tensor, classes: int = 15
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and class (intersection, union) counts, (B, classes) each, of logits
    (B, classes, ...) against labels (B, ...): pixels, or voxels."""
    predicted = F.one_hot(logits.argmax(dim=1), classes).bool().flatten(1, -2)  # (B, pixels, C)
    truth = F.one_hot(parts.long(), classes).bool().flatten(1, -2)
    return (predicted & truth).sum(1), (predicted | truth).sum(1)


def class_pixels(labels: torch.Tensor, classes: int = 15) -> torch.Tensor:
    """(B, s, s) labels → (B, classes) pixels of each class per image."""
    return F.one_hot(labels.long(), classes).sum((1, 2))


def depth_errors_mm(logits: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 20, s, s) depth logits, (B, s, s) true classes (0 background, 1..19 bins) →
    per image (RMSE, st-RMSE) in mm over the truth's person pixels (NaN where there is none)."""
    predicted = logits[:, 1:].argmax(dim=1).double() + 1  # the likeliest bin, background aside
    truth = classes.double()
    person = (classes > 0).double()
    count = person.sum((1, 2))
    empty = count == 0
    count = count.clamp_min(1)

    def centred(values: torch.Tensor) -> torch.Tensor:
        return (values - (values * person).sum((1, 2), keepdim=True) / count[:, None, None]) * person

    rmse = (((predicted - truth) ** 2 * person).sum((1, 2)) / count).sqrt()
    p, t = centred(predicted), centred(truth)
    variance = (p**2).sum((1, 2))
    scale = torch.where(variance > 0, (p * t).sum((1, 2)) / variance.clamp_min(1e-12), torch.zeros_like(variance))
    st_rmse = (((t - scale[:, None, None] * p) ** 2).sum((1, 2)) / count).sqrt()
    bin_mm = 1000 * DEPTH_BIN_SIZE
    nan = torch.full_like(rmse, float("nan"))
    return torch.where(empty, nan, bin_mm * rmse), torch.where(empty, nan, bin_mm * st_rmse)


def volume_peaks(volumes: torch.Tensor) -> torch.Tensor:
    """(B, J, Z, s, s) → (B, J, 3) (x, y, z-bin) of each volume's maximum, each refined by
    the centroid of its neighbours as `peaks` does."""
    count, joints, bins, size, _ = volumes.shape
    flat = volumes.flatten(2).argmax(dim=2)
    z = flat // (size * size)
    x, y = flat % size, (flat % (size * size)) // size
    padded = torch.nn.functional.pad(volumes.float(), (1, 1, 1, 1, 1, 1))
    offsets = torch.arange(-1, 2)
    batch = torch.arange(count)[:, None, None, None, None]
    joint = torch.arange(joints)[None, :, None, None, None]
    zs = (z[..., None] + 1 + offsets)[..., :, None, None]
    ys = (y[..., None] + 1 + offsets)[..., None, :, None]
    xs = (x[..., None] + 1 + offsets)[..., None, None, :]
    window = padded[batch, joint, zs, ys, xs].clamp_min(0)  # (B, J, 3, 3, 3)
    total = window.sum(dim=(-1, -2, -3)).clamp_min(1e-12)
    dz = (window.sum(dim=(-1, -2)) * offsets).sum(-1) / total
    dy = (window.sum(dim=(-1, -3)) * offsets).sum(-1) / total
    dx = (window.sum(dim=(-2, -3)) * offsets).sum(-1) / total
    return torch.stack([x + dx, y + dy, z + dz], dim=-1).to(torch.float32)


def volume_joints_camera(
    volumes: torch.Tensor, batch: dict[str, torch.Tensor], focal: float, principal: torch.Tensor
) -> torch.Tensor:
    """(B, J, Z, s, s) volumes → (B, J, 3) camera-frame joints (metres) from their peaks."""
    return volume_to_camera(volume_peaks(volumes), batch, volumes.shape[-1], volumes.shape[2], focal, principal)


def volume_to_camera(
    points: torch.Tensor, batch: dict[str, torch.Tensor], size: int, bins: int, focal: float, principal: torch.Tensor
) -> torch.Tensor:
    """(B, J, 3) points of the joint volumes (x, y in heatmap pixels of side `size`, z in
    depth bins of `bins`) → (B, J, 3) camera-frame joints (metres): image position through the
    crop, depth from the bin and the known root depth."""
    x, y, z_bin = points.unbind(-1)
    scale = size / batch["crop_side"]
    centre = batch["crop_centre"]
    u = (x - size / 2 + 0.5) / scale[:, None] + centre[:, None, 0] - 0.5
    v = (y - size / 2 + 0.5) / scale[:, None] + centre[:, None, 1] - 0.5
    depth = batch["root_depth"][:, None] - (z_bin - bins // 2) * DEPTH_BIN_SIZE
    return torch.stack([(u - principal[0]) * depth / focal, (v - principal[1]) * depth / focal, depth], dim=-1)


def joint_distances_mm(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B, J) each joint's distance (mm) between pelvis-centred joints (B, J, 3)."""
    predicted = predicted - predicted[:, PELVIS : PELVIS + 1]
    truth = truth - truth[:, PELVIS : PELVIS + 1]
    return 1000 * (predicted - truth).norm(dim=-1)


def joint_error_mm(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-sample mean distance (mm) between pelvis-centred joints (B, J, 3)."""
    return joint_distances_mm(predicted, truth).mean(dim=1)


def voxel_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample IoU of the voxels above 0.5."""
    predicted = torch.sigmoid(logits.float()) > 0.5
    truth = target > 0.5
    intersection = (predicted & truth).flatten(1).sum(1).float()
    union = (predicted | truth).flatten(1).sum(1).float()
    return intersection / union.clamp_min(1)
