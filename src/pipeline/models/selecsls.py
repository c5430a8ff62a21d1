"""SelecSLS Net (Mehta et al., "XNect: Real-time Multi-person 3D Motion Capture with a Single
RGB Camera", SIGGRAPH 2020; Mehta's thesis §7.2): a backbone made for speed, whose modules
concatenate their 3×3 convolutions' outputs with a skip from the first module of the level.

Shapes: B batch, C channels, H×W the input; a level of stride s gives H/s×W/s.

A module of width k: 3×3 (k, stride 1 or 2) → 1×1 (k) → 3×3 (k/2) → 1×1 (k) → 3×3 (k/2); the
three 3×3 outputs (2k channels) and the cross-module skip concatenated (the thesis' CS module)
and mixed by a 1×1 to the module's n_o outputs. A level's first module has no skip input and
hands its output on as the skip of the level's other modules ("First" connectivity). Every
convolution is followed by batch normalisation and ReLU. For the pose networks, 3×3
convolutions with more than 96 outputs use groups of 2 and more than 192 groups of 4 (the
1×1 convolutions between them mix the groups); ImageNet models use no groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# (in, skip, k, out, first, stride) of each module after the stem, Table 7.9's "W" outputs
# (the wider n_o at each change of resolution), as the authors' released models build them.
LEVELS: dict[str, tuple[tuple[int, int, int, int, bool, int], ...]] = {
    "42": (
        (32, 0, 64, 64, True, 2),
        (64, 64, 64, 128, False, 1),
        (128, 0, 144, 144, True, 2),
        (144, 144, 144, 288, False, 1),
        (288, 0, 304, 304, True, 2),
        (304, 304, 304, 480, False, 1),
    ),
    "60": (
        (32, 0, 64, 64, True, 2),
        (64, 64, 64, 128, False, 1),
        (128, 0, 128, 128, True, 2),
        (128, 128, 128, 128, False, 1),
        (128, 128, 128, 288, False, 1),
        (288, 0, 288, 288, True, 2),
        (288, 288, 288, 288, False, 1),
        (288, 288, 288, 288, False, 1),
        (288, 288, 288, 416, False, 1),
    ),
    "84": (
        (32, 0, 64, 64, True, 2),
        (64, 64, 64, 144, False, 1),
        (144, 0, 144, 144, True, 2),
        (144, 144, 144, 144, False, 1),
        (144, 144, 144, 144, False, 1),
        (144, 144, 144, 144, False, 1),
        (144, 144, 144, 304, False, 1),
        (304, 0, 304, 304, True, 2),
        (304, 304, 304, 304, False, 1),
        (304, 304, 304, 304, False, 1),
        (304, 304, 304, 304, False, 1),
        (304, 304, 304, 304, False, 1),
        (304, 304, 304, 512, False, 1),
    ),
}
STEM_CHANNELS = 32
# the ImageNet head after the last level: (in, out, kernel, stride) convolutions, then pooling
IMAGENET_HEADS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "42": ((480, 960, 3, 2), (960, 1024, 3, 1), (1024, 1024, 3, 2), (1024, 1280, 1, 1)),
    "60": ((416, 756, 3, 2), (756, 1024, 3, 1), (1024, 1024, 3, 2), (1024, 1280, 1, 1)),
    "84": ((512, 960, 3, 2), (960, 1024, 3, 1), (1024, 1024, 3, 2), (1024, 1280, 3, 1)),
}


def pose_groups(out_channels: int) -> int:
    """The group count of a pose network's 3×3 convolution with `out_channels` outputs."""
    return 4 if out_channels > 192 else 2 if out_channels > 96 else 1


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SelecSLSModule(nn.Module):
    """One concatenation-skip module: (B, in, H, W) and its level's skip (B, skip, H', W')
    -> (B, out, H', W'), H' = H / stride."""

    def __init__(
        self, in_channels: int, skip_channels: int, k: int, out_channels: int, stride: int, grouped: bool
    ) -> None:
        super().__init__()

        def groups(out: int) -> int:
            return pose_groups(out) if grouped else 1

        half = k // 2
        self.conv1 = conv_bn_relu(in_channels, k, 3, stride, groups(k))
        self.mix1 = conv_bn_relu(k, k, 1)
        self.conv2 = conv_bn_relu(k, half, 3, groups=groups(half))
        self.mix2 = conv_bn_relu(half, k, 1)
        self.conv3 = conv_bn_relu(k, half, 3, groups=groups(half))
        self.fuse = conv_bn_relu(2 * k + skip_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        a = self.conv1(x)
        b = self.conv2(self.mix1(a))
        c = self.conv3(self.mix2(b))
        parts = [a, b, c] if skip is None else [a, b, c, skip]
        return self.fuse(torch.cat(parts, dim=1))


@dataclass(frozen=True)
class SelecSLSConfig:
    """Which levels (`depth`: "42", "60", "84"), their widths scaled by `width` (1.0: the
    thesis'), and whether the 3×3 convolutions are grouped as for pose."""

    depth: str
    width: float
    grouped: bool = True

    def modules(self) -> list[tuple[int, int, int, int, bool, int]]:
        """The modules' (in, skip, k, out, first, stride), widths scaled (kept even, ≥ 4)."""

        def scaled(channels: int) -> int:
            return 0 if channels == 0 else max(4, 2 * round(channels * self.width / 2))

        return [
            (scaled(a), scaled(s), scaled(k), scaled(o), first, stride)
            for a, s, k, o, first, stride in LEVELS[self.depth]
        ]

    @property
    def stem_channels(self) -> int:
        return self.modules()[0][0]

    @property
    def out_channels(self) -> int:
        return self.modules()[-1][3]


class SelecSLS(nn.Module):
    """The stem (3×3, stride 2) and the levels: (B, C, H, W) -> (B, out, H/16, W/16)."""

    def __init__(self, in_channels: int, config: SelecSLSConfig) -> None:
        super().__init__()
        self.stem = conv_bn_relu(in_channels, config.stem_channels, 3, 2)
        specs = config.modules()
        self.first = [first for *_, first, _ in specs]
        self.blocks = nn.ModuleList(
            SelecSLSModule(a, s, k, o, stride, config.grouped) for a, s, k, o, _, stride in specs
        )
        self.out_channels = config.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.levels(x)[-1]

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, H, W) -> each level's last output, finest first: strides 4, 8 and 16."""
        x = self.stem(x)
        skip, found = None, []
        for first, block in zip(self.first, self.blocks):
            if first and skip is not None:
                found.append(x)
            x = block(x) if first else block(x, skip)
            if first:
                skip = x
        return found + [x]

    @staticmethod
    def level_channels(config: SelecSLSConfig) -> list[int]:
        """The channels of `levels`' outputs, finest first."""
        specs = config.modules()
        return [out for (*_, out, _, _), nxt in zip(specs, specs[1:]) if nxt[4]] + [specs[-1][3]]


class SelecSLSMaps(nn.Module):
    """Dense maps at a quarter of the input's resolution from SelecSLS, for BodyNet's 2D
    networks (`bodynet.backbone_2d: selecsls`): the stride-16 level upsampled ×2 by a
    transposed convolution and added to the stride-8 level (through a 1×1), again to the
    stride-4 level, a 3×3 after each, then a 1×1 head. (B, C, H, W) -> [(B, out, H/4, W/4)]:
    one prediction in a list, as a one-stack hourglass gives it (`heads` as its).

    `heatmaps` starts the predictions near zero, as the hourglass' does."""

    def __init__(
        self, in_channels: int, out_channels: int, config: SelecSLSConfig, features: int, heatmaps: bool = False
    ) -> None:
        super().__init__()
        self.backbone = SelecSLS(in_channels, config)
        fine, middle, coarse = SelecSLS.level_channels(config)
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(channels, features, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=True),
            )
            for channels in (coarse, features)
        )
        self.lateral = nn.ModuleList(conv_bn_relu(channels, features, 1) for channels in (middle, fine))
        self.mix = nn.ModuleList(conv_bn_relu(features, features, 3) for _ in range(2))
        self.heads = nn.ModuleList([nn.Conv2d(features, out_channels, 1)])
        if heatmaps:
            nn.init.normal_(self.heads[0].weight, std=1e-3)
            nn.init.zeros_(self.heads[0].bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        fine, middle, x = self.backbone.levels(x)
        for up, lateral, mix, level in zip(self.up, self.lateral, self.mix, (middle, fine)):
            x = mix(up(x) + lateral(level))
        return [self.heads[0](x)]


class SelecSLSClassifier(nn.Module):
    """SelecSLS with the ImageNet head (the thesis' Fig. 7.6, right; Table 7.15's sizes):
    (B, 3, H, W) -> (B, classes) logits."""

    def __init__(self, depth: str = "60", classes: int = 1000) -> None:
        super().__init__()
        self.backbone = SelecSLS(3, SelecSLSConfig(depth=depth, width=1.0, grouped=False))
        self.head = nn.Sequential(*[conv_bn_relu(a, o, k, s) for a, o, k, s in IMAGENET_HEADS[depth]])
        self.fc = nn.Linear(IMAGENET_HEADS[depth][-1][1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(self.backbone(x))
        return self.fc(features.mean(dim=(2, 3)))
