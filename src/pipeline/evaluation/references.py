"""Reference predictors: the floor and the ceiling every learned row of a table sits between.

    constant  one output for every image: the constant that minimises each training loss on
              the training set (the mean heatmaps, the mean joint volumes, the logits of the
              parts' and depth classes' frequencies at each pixel, of the voxels' mean
              occupancy and of the part voxels' classes' frequencies). A network
              that ignores its input can reach it; a row that does not beat it learnt nothing.
    oracle    the truth itself, in the networks' output representation (heatmaps, parts, depth
              classes, joint volumes, voxels, part voxels): what a perfect network gives, after the representation's own
              quantisation (heatmap pixels, 45 mm depth bins, voxels) and the body fit.

Both answer as a trained BodyNet does (`predict(batch, wanted)`, the last stack's outputs),
so that the evaluation measures and fits them exactly as it does the networks.

Shapes: B images, J = 16 joints, Z = 19 depth bins, s heatmap size, D voxel size.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from pipeline.evaluation.tables import REFERENCES
from pipeline.models.bodynet import DEPTH_CLASSES, PART_CLASSES, VOXEL_PART_CLASSES
from pipeline.training.samples import SampleSet, make_batch

VOXEL_LOGIT = 20.0  # |logit| of a certain voxel: sigmoid(±20) is 0 or 1 to float precision
TARGET_OF = {
    "pose2d": "heatmaps",
    "segm": "parts",
    "pose3d": "volumes",
    "voxels": "voxels",
    "depth": "depth_classes",
    "part_voxels": "part_voxels",
}
SUBNETWORKS = tuple(TARGET_OF)  # those a reference answers for
CLASSES = {"parts": PART_CLASSES, "depth_classes": DEPTH_CLASSES, "part_voxels": VOXEL_PART_CLASSES}  # as labels


def _one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """(B, ...) labels → (B, classes, ...)."""
    return torch.nn.functional.one_hot(labels.long(), classes).movedim(-1, 1)


def _logit(probability: torch.Tensor) -> torch.Tensor:
    p = probability.clamp(1e-6, 1 - 1e-6)
    return torch.log(p) - torch.log1p(-p)


def training_means(
    samples: SampleSet, count: int, seed: int, batch_size: int = 64, progress: bool = True
) -> dict[str, torch.Tensor]:
    """The training targets' means over `count` training images drawn without replacement
    (all when there are fewer): heatmaps (J, s, s), part frequencies (15, s, s), depth
    classes' frequencies (20, s, s), volumes (J, Z, s, s), voxel occupancy (D, D, D), part
    voxel classes' frequencies (7, D, D, D)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(samples), min(count, len(samples)), replace=False))
    sums: dict[str, torch.Tensor] = {}
    targets = tuple(TARGET_OF.values())
    for start in tqdm(range(0, len(chosen), batch_size), desc="training means", unit="batch", disable=not progress):
        batch = make_batch(samples, chosen[start : start + batch_size], targets=targets)
        for name in targets:
            if name in CLASSES:  # each class's count, without the one-hot batch (large for voxels)
                total = torch.stack([(batch[name] == c).sum(0) for c in range(CLASSES[name])]).double()
            else:
                total = batch[name].double().sum(0)
            sums[name] = total if name not in sums else sums[name] + total
    return {name: (total / len(chosen)).float() for name, total in sums.items()}


class ReferencePredictor:
    """A constant or oracle predictor with the evaluation's interface of a network."""

    trained = frozenset(SUBNETWORKS)

    def __init__(self, kind: str, means: dict[str, torch.Tensor] | None = None) -> None:
        if kind not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {kind!r}")
        if kind == "constant" and means is None:
            raise ValueError("the constant reference needs the training means")
        self.kind = kind
        if means is not None:
            self.constant = {
                "pose2d": means["heatmaps"],
                "segm": torch.log(means["parts"].clamp_min(1e-6)),
                "depth": torch.log(means["depth_classes"].clamp_min(1e-6)),
                "pose3d": means["volumes"],
                "voxels": _logit(means["voxels"]),
                "part_voxels": torch.log(means["part_voxels"].clamp_min(1e-6)),
            }

    def predict(self, batch: dict[str, torch.Tensor], wanted: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """{subnetwork: (B, ...) output} for the batch's images."""
        count = len(batch["rgb"])
        if self.kind == "constant":
            return {name: self.constant[name].expand(count, *self.constant[name].shape) for name in wanted}
        truth = {
            "pose2d": lambda: batch["heatmaps"],
            "segm": lambda: _one_hot(batch["parts"], PART_CLASSES).float(),
            "depth": lambda: _one_hot(batch["depth_classes"], DEPTH_CLASSES).float(),
            "pose3d": lambda: batch["volumes"],
            "voxels": lambda: (2 * batch["voxels"] - 1) * VOXEL_LOGIT,
            "part_voxels": lambda: _one_hot(batch["part_voxels"], VOXEL_PART_CLASSES).float(),
        }
        return {name: truth[name]() for name in wanted}
