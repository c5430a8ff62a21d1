"""Stacked hourglass networks (Newell et al. 2016), as BodyNet builds its subnetworks.

Shapes: B batch, C channels, H×W the input, h×w = H/4×W/4 the heatmaps.
"""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1×1, BN-ReLU-3×3, BN-ReLU-1×1, plus a skip."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        middle = max(out_channels // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, middle, 1),
            nn.BatchNorm2d(middle),
            nn.ReLU(inplace=True),
            nn.Conv2d(middle, middle, 3, padding=1),
            nn.BatchNorm2d(middle),
            nn.ReLU(inplace=True),
            nn.Conv2d(middle, out_channels, 1),
        )
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def residuals(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*[Residual(channels, channels) for _ in range(count)])


class Hourglass(nn.Module):
    """One hourglass: `depth` halvings and doublings with skip branches at every scale."""

    def __init__(self, depth: int, channels: int, modules: int) -> None:
        super().__init__()
        self.skip = residuals(channels, modules)
        self.down = nn.Sequential(nn.MaxPool2d(2), residuals(channels, modules))
        self.inner = Hourglass(depth - 1, channels, modules) if depth > 1 else residuals(channels, modules)
        self.up = residuals(channels, modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(x)))
        return self.skip(x) + nn.functional.interpolate(low, size=x.shape[-2:], mode="nearest")


class StackedHourglass(nn.Module):
    """A stem to 1/4 resolution, then `stacks` hourglasses, each predicting `out_channels`
    maps (B, out, h, w). With intermediate supervision every stack's prediction is returned
    (and fed back into the next stack); without, only the last one.

    `stem_stride` 4 takes a full-resolution input (BodyNet's RGB-based networks); 1 takes an
    input already at heatmap resolution (its voxel network's). `heatmaps` starts the
    predictions near zero (for regressing heatmaps; logits keep the default start).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stacks: int = 2,
        features: int = 256,
        modules: int = 1,
        depth: int = 4,
        stem_stride: int = 4,
        heatmaps: bool = False,
    ) -> None:
        super().__init__()
        if stem_stride == 4:
            half = max(features // 2, 1)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, max(features // 4, 1), 7, stride=2, padding=3),
                nn.BatchNorm2d(max(features // 4, 1)),
                nn.ReLU(inplace=True),
                Residual(max(features // 4, 1), half),
                nn.MaxPool2d(2),
                Residual(half, half),
                Residual(half, features),
            )
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, features, 3, padding=1), Residual(features, features))
        self.hourglasses = nn.ModuleList(Hourglass(depth, features, modules) for _ in range(stacks))
        self.features = nn.ModuleList(
            nn.Sequential(
                residuals(features, modules),
                nn.Conv2d(features, features, 1),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=True),
            )
            for _ in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(features, out_channels, 1) for _ in range(stacks))
        if heatmaps:
            for head in self.heads:
                # Predictions start near zero, where almost all of a heatmap's target is: the
                # network need not first unlearn a random offset before it can place peaks.
                nn.init.normal_(head.weight, std=1e-3)
                nn.init.zeros_(head.bias)
        self.feed_features = nn.ModuleList(nn.Conv2d(features, features, 1) for _ in range(stacks - 1))
        self.feed_predictions = nn.ModuleList(nn.Conv2d(out_channels, features, 1) for _ in range(stacks - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outputs = []
        for stack, hourglass in enumerate(self.hourglasses):
            features = self.features[stack](hourglass(x))
            prediction = self.heads[stack](features)
            outputs.append(prediction)
            if stack < len(self.hourglasses) - 1:
                x = x + self.feed_features[stack](features) + self.feed_predictions[stack](prediction)
        return outputs
