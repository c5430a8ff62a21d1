"""XNect's Stage II at this scale: a fully connected network that lifts one person's Stage I
read-out to their whole 3D pose (Mehta et al., "XNect: Real-time Multi-Person 3D Motion Capture
with a Single RGB Camera", 2020, §6).

Stage I here is the location-map network (`pipeline.models.vnect`): per joint, its heatmap's
peak (x, y, in [-1, 1] over the crop), the peak's value (how sure it is) and the location maps'
pelvis-relative (X, Y, Z) read there. Stage II reads those 6·J numbers and answers the J joints,
pelvis-relative: five fully connected layers, as XNect's, each hidden one followed by
BatchNorm and ReLU. It answers a correction to the read-out's own joints rather than the joints
from nothing (a choice of ours, XNect's answers the pose: at this data's size the read-out is the
better start). Trained with the mean joint error (metres) on the training crops' Stage I
read-outs, the Stage I network frozen.

Shapes: B people, J = 16 joints, s×s maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.models.vnect import PELVIS, read_out

FEATURES_PER_JOINT = 6  # x, y, confidence, X, Y, Z


@dataclass(frozen=True)
class LiftingSettings:
    width: int  # hidden units of each of the four hidden layers
    iterations: int
    batch_size: int
    learning_rate: float
    seed: int


def stage_one_features(heatmaps: torch.Tensor, locations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, J, s, s) heatmaps and (B, J, 3, s, s) location maps (metres) → Stage II's input
    (B, J·6): per joint the peak (x, y) in [-1, 1], its value and the pelvis-relative (X, Y, Z)
    there; and those read-out joints (B, J, 3), pelvis-relative."""
    size = heatmaps.shape[-1]
    points, joints = read_out(heatmaps, locations)
    joints = joints - joints[:, PELVIS : PELVIS + 1]
    where = points.float() / (size - 1) * 2 - 1
    confidence = heatmaps.flatten(2).amax(-1, keepdim=True)
    return torch.cat([where, confidence, joints], dim=-1).flatten(1), joints


class Lifting(nn.Module):
    """Stage I's features (B, J·6) and read-out joints (B, J, 3) → the joints (B, J, 3), metres."""

    def __init__(self, joints: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [joints * FEATURES_PER_JOINT] + [width] * 4
        for inner, outer in zip(sizes, sizes[1:]):
            layers += [nn.Linear(inner, outer), nn.BatchNorm1d(outer), nn.ReLU(inplace=True)]
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, joints * 3)
        nn.init.zeros_(self.out.weight)  # the read-out itself to begin with
        nn.init.zeros_(self.out.bias)

    def forward(self, features: torch.Tensor, readout: torch.Tensor) -> torch.Tensor:
        joints = readout + self.out(self.hidden(features)).view_as(readout)
        return joints - joints[:, PELVIS : PELVIS + 1]


def mean_joint_error(joints: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The mean over people and joints of the distance (metres) between (B, J, 3) joints."""
    return (joints - truth).norm(dim=-1).mean()


def fit_lifting(
    features: torch.Tensor, readout: torch.Tensor, truth: torch.Tensor, settings: LiftingSettings
) -> Lifting:
    """Stage II trained on the training people's Stage I features (N, J·6), read-outs and true
    pelvis-relative joints (N, J, 3), Adam with the rate dropped tenfold at three quarters."""
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    model = Lifting(readout.shape[1], settings.width)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    drop = torch.optim.lr_scheduler.MultiStepLR(optimiser, [int(0.75 * settings.iterations)], 0.1)
    model.train()
    for _ in range(settings.iterations):
        rows = torch.randint(len(features), (settings.batch_size,), generator=generator)
        loss = mean_joint_error(model(features[rows], readout[rows]), truth[rows])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        drop.step()
    return model.eval()
