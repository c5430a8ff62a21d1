"""Reading 3D joints out of the joint volumes through the training set's own poses.

BodyNet reads each joint at its volume's peak, each joint alone: one peak on the wrong limb or
at the wrong depth makes a skeleton that no body has, and at the default scale the peaks'
skeletons are further from the truth once aligned (PA-MPJPE) than the training set's constant
pose. The `exemplars` readout matches the peaks against the training split's poses and reads
the mean of the nearest ones, as Chen & Ramanan, "3D Human Pose Estimation = 2D Pose
Estimation + Matching" (CVPR 2017) match 2D poses against a library of 3D ones; here the
match is in the volumes' own units (heatmap pixels and depth bins), root-relative, each
joint's distance truncated so that one wrong peak cannot outvote the others.

The library holds every training pose and its mirror image (the networks train on mirrored
crops too). Shapes: N library poses, B images, J = 16 joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.training.metrics import PELVIS
from pipeline.training.samples import FLIP_JOINTS, SampleSet


@dataclass(frozen=True)
class ExemplarSettings:
    """The readout's two choices (evaluation.pose3d_readout)."""

    neighbours: int  # library poses averaged
    truncation: float  # a joint's distance counts at most this much (heatmap pixels / depth bins)

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
        if not self.truncation > 0:
            raise ValueError(f"truncation must be positive, got {self.truncation}")


def mirrored(poses: torch.Tensor, size: int) -> torch.Tensor:
    """(N, J, 3) volume points → the same poses seen in a mirror: x reflected about the
    heatmap's middle, left and right joints exchanged."""
    flipped = poses[:, FLIP_JOINTS].clone()
    flipped[..., 0] = size - 1 - flipped[..., 0]
    return flipped


def root_relative(points: torch.Tensor) -> torch.Tensor:
    """(..., J, 3) → the same less their pelvis."""
    return points - points[..., PELVIS : PELVIS + 1, :]


class PoseExemplars:
    """A library of root-relative poses in volume units, read against predicted peaks."""

    def __init__(self, poses: torch.Tensor, settings: ExemplarSettings) -> None:
        if poses.ndim != 3 or poses.shape[-1] != 3 or len(poses) == 0:
            raise ValueError(f"a pose library is (N, J, 3) with N ≥ 1, got {tuple(poses.shape)}")
        if settings.neighbours > len(poses):
            raise ValueError(f"{settings.neighbours} neighbours asked of a library of {len(poses)} poses")
        self.poses = root_relative(poses.double())  # (N, J, 3)
        self.settings = settings

    @classmethod
    def from_samples(cls, samples: SampleSet, settings: ExemplarSettings) -> PoseExemplars:
        """The library of a split's prepared samples: each sample's joints (heatmap pixels)
        and depth bins, and their mirror images."""
        a = samples.arrays
        rows = samples.positions
        if len(rows) == 0:
            raise InputError("the exemplar readout's training samples are empty")
        points = np.concatenate([a["joints"][rows], a["bins"][rows][..., None]], axis=-1)
        poses = torch.as_tensor(points, dtype=torch.float64)
        try:
            return cls(torch.cat([poses, mirrored(poses, samples.sizes.heatmap)]), settings)
        except ValueError as error:
            raise InputError(f"the exemplar readout's training samples: {error}") from error

    def __call__(self, peaks: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) peaks (x, y, depth bin) → (B, J, 3): the mean of the library poses
        nearest to them (the sum over joints of each joint's distance, truncated), placed
        at the peaks' pelvis."""
        relative = root_relative(peaks.double())
        chosen = []
        for pose in relative:  # one image at a time: (N, J) distances stay small
            distance = (self.poses - pose).norm(dim=-1).clamp(max=self.settings.truncation).sum(-1)
            nearest = distance.topk(self.settings.neighbours, largest=False).indices
            chosen.append(self.poses[nearest].mean(0))
        return (peaks.double()[:, PELVIS : PELVIS + 1] + torch.stack(chosen)).to(peaks.dtype)
