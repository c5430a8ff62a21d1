"""The long-term temporal convolution network (Varol, Laptev & Schmid, "Long-term Temporal
Convolutions for Action Recognition", TPAMI 2018, §3.1).

Five 3×3×3 space-time convolutions of 64, 128, 256, 256 and 256 filters, each padded to keep
its size and followed by a ReLU and a max pooling of stride 2 (2×2 in space only after the
first, 2×2×2 after the others); then two fully connected layers of 2048 with ReLU and
dropout, and the classes. `width` scales every layer's size (the default scale's networks are
an eighth as wide). Poolings round up, so a short extent (8 frames) keeps one frame at the
end where the paper's 16 frames reach exactly one.

Shapes: B clips, C input channels (3 RGB, 2 flow), T frames, H × W pixels.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FILTERS = (64, 128, 256, 256, 256)
HIDDEN = 2048


def scaled(size: int, width: float) -> int:
    return max(1, round(size * width))


def pooled_shape(frames: int, height: int, width: int) -> tuple[int, int, int]:
    """(T, H, W) after the five poolings (ceil mode): the first keeps time, the others halve it."""
    for layer in range(len(FILTERS)):
        frames = frames if layer == 0 else math.ceil(frames / 2)
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    return frames, height, width


class LTC(nn.Module):
    """(B, C, T, H, W) clips → (B, classes) scores; `embed` gives the last hidden layer (B, D),
    the representation the similarity losses compare."""

    def __init__(
        self, channels: int, classes: int, frames: int, size: int, width: float = 1.0, dropout: float = 0.5
    ) -> None:
        super().__init__()
        layers, previous = [], channels
        for index, filters in enumerate(FILTERS):
            filters = scaled(filters, width)
            pool = (1, 2, 2) if index == 0 else (2, 2, 2)
            layers += [
                nn.Conv3d(previous, filters, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool3d(pool, stride=pool, ceil_mode=True),
            ]
            previous = filters
        self.features = nn.Sequential(*layers)
        t, h, w = pooled_shape(frames, size, size)
        hidden = scaled(HIDDEN, width)
        self.fc6 = nn.Linear(previous * t * h * w, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, classes)
        self.input_shape = (channels, frames, size, size)

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, D): fc7's activations, before its dropout."""
        if tuple(clips.shape[1:]) != self.input_shape:
            raise ValueError(f"LTC built for clips {self.input_shape} (C, T, H, W), got {tuple(clips.shape[1:])}")
        x = self.features(clips).flatten(1)
        x = self.dropout(torch.relu(self.fc6(x)))
        return torch.relu(self.fc7(x))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(clips)))
