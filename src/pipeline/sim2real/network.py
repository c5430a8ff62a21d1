"""The temporal 3D-pose model (Doersch & Zisserman, 2019, Fig. 3), small at the default scale.

Shapes: B clips of T frames, read as T − 1 steps (`inputs`: frame t and its flow to t + 1), C
input channels (`inputs.channel_count`), S × S crops, J joints.

A per-frame encoder (the paper's ResNet-50; here `depth` stride-2 convolution blocks, each
doubling its channels from `width`, then the mean over the image: the paper's average pooling),
a bidirectional LSTM over the steps (1024 units in the paper), and two heads, each one hidden
layer: the pelvis-relative 3D joints of the step's frame and of the next. All 2(T − 1)
predictions are trained; at test a clip's T frames are the current head's T − 1 and the last
step's next (`clip_joints`), as the paper keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.models.blocks import block


@dataclass(frozen=True)
class TemporalConfig:
    """The model's sizes (the config's `sim2real.network`, and the inputs it reads)."""

    channels: int
    width: int  # the encoder's first block's channels
    depth: int  # stride-2 blocks: an S-pixel crop ends at S / 2**depth
    features: int  # the frame's feature
    lstm: int  # hidden units, each direction
    joints: int = 24


def head(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs))


class TemporalPoseNet(nn.Module):
    def __init__(self, config: TemporalConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.channels] + [config.width * 2**level for level in range(config.depth)]
        self.encoder = nn.Sequential(*(block(a, b) for a, b in zip(widths[:-1], widths[1:])))
        self.feature = nn.Linear(widths[-1], config.features)
        self.lstm = nn.LSTM(config.features, config.lstm, batch_first=True, bidirectional=True)
        self.current = head(2 * config.lstm, config.lstm, 3 * config.joints)
        self.next = head(2 * config.lstm, config.lstm, 3 * config.joints)

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T − 1, C, S, S) -> (B, T − 1, features)."""
        b, t = clips.shape[:2]
        maps = self.encoder(clips.flatten(0, 1))
        return torch.relu(self.feature(maps.mean(dim=(2, 3)))).unflatten(0, (b, t))

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T − 1, C, S, S) -> 'current' and 'next', each (B, T − 1, J, 3) metres: step t's
        frame's joints and the next frame's, pelvis-relative."""
        states, _ = self.lstm(self.frame_features(clips))
        joints = self.config.joints
        return {
            "current": self.current(states).unflatten(-1, (joints, 3)),
            "next": self.next(states).unflatten(-1, (joints, 3)),
        }


def clip_joints(predicted: dict[str, torch.Tensor]) -> torch.Tensor:
    """The T frames' joints (B, T, J, 3) a clip's predictions give at test: each step's current
    frame, then the last step's next frame."""
    return torch.cat([predicted["current"], predicted["next"][:, -1:]], dim=1)
