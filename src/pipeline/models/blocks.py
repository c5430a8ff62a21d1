"""Building blocks the small encoders share (the mesh-video and sim-to-real models)."""

from __future__ import annotations

from torch import nn


def block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3×3 convolutions, the first halving the resolution, each with BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )
