"""Filters that can be removed, and which of them a trained network no longer uses.

A *filter group* is a convolution whose output channels are batch-normalised and rectified
before anything else reads them, together with what reads them. In BodyNet's hourglasses
these are the two inner layers of every residual bottleneck (BN-ReLU-1×1, BN-ReLU-3×3), the
1×1 layer after each hourglass (read by the prediction head and the feedback), and the 7×7
stem (read by the first residual's pre-activation and its 1×1 skip). The residual stream
itself is a sum, shared by every block: its channels are not a single filter's.

In SelecSLS (the 2D networks' other backbone) every convolution is followed by its own
BatchNorm and ReLU, so each is a group and each is counted. Their readers are concatenations
(the modules' three 3×3 outputs and the cross-module skip), sums (the decoder's lateral
paths), grouped or transposed convolutions, which removing a filter would have to narrow as
well: those groups are counted and kept (`readers` None). Only the decoder's last 3×3, read
by the 1×1 head alone, is removed.

A filter is inactive (Mehta et al., 2019) when its BatchNorm scale |γ| falls below a threshold
(1e-3: it outputs a constant) or when its rectified output never exceeds a threshold over
the training images (1e-12: it outputs zero).

Shapes: C filters of a group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pipeline.models.hourglass import Residual, StackedHourglass
from pipeline.models.selecsls import SelecSLS, SelecSLSMaps


@dataclass
class Reader:
    """A convolution that reads a group's rectified channels, directly or, with `norm`,
    through its own BatchNorm and ReLU (a pre-activation residual)."""

    conv: nn.Conv2d
    norm: nn.BatchNorm2d | None = None


@dataclass
class FilterGroup:
    name: str  # the producing convolution's module name
    conv: nn.Conv2d
    norm: nn.BatchNorm2d
    readers: list[Reader] | None = field(default_factory=list)  # None: not followed, so never removed

    @property
    def filters(self) -> int:
        return self.conv.out_channels

    def gamma(self) -> np.ndarray:
        """|γ| of the group's BatchNorm (C,)."""
        return self.norm.weight.detach().abs().cpu().numpy()


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _residual_groups(prefix: str, block: Residual) -> list[FilterGroup]:
    body = block.body
    return [
        FilterGroup(_join(prefix, "body.2"), body[2], body[3], [Reader(body[5])]),
        FilterGroup(_join(prefix, "body.5"), body[5], body[6], [Reader(body[8])]),
    ]


def _hourglass_groups(prefix: str, net: StackedHourglass) -> list[FilterGroup]:
    groups = []
    stem = net.stem
    if isinstance(stem[0], nn.Conv2d) and len(stem) > 3 and isinstance(stem[1], nn.BatchNorm2d):
        first = stem[3]
        if isinstance(first, Residual) and isinstance(first.skip, nn.Conv2d):
            readers = [Reader(first.body[2], first.body[0]), Reader(first.skip)]
            groups.append(FilterGroup(_join(prefix, "stem.0"), stem[0], stem[1], readers))
    for stack, block in enumerate(net.features):
        readers = [Reader(net.heads[stack])]
        if stack < len(net.feed_features):
            readers.append(Reader(net.feed_features[stack]))
        groups.append(FilterGroup(_join(prefix, f"features.{stack}.1"), block[1], block[2], readers))
    return groups


def _is_conv_bn_relu(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Sequential)
        and len(module) == 3
        and isinstance(module[0], (nn.Conv2d, nn.ConvTranspose2d))
        and isinstance(module[1], nn.BatchNorm2d)
        and isinstance(module[2], nn.ReLU)
    )


def _selecsls_groups(prefix: str, net: SelecSLS | SelecSLSMaps) -> list[FilterGroup]:
    groups = [
        FilterGroup(_join(name, "0"), module[0], module[1], readers=None)
        for name, module in net.named_modules(prefix=prefix)
        if _is_conv_bn_relu(module)
    ]
    if isinstance(net, SelecSLSMaps):
        last = next(group for group in groups if group.conv is net.mix[-1][0])
        last.readers = [Reader(net.heads[0])]
    return groups


def filter_groups(network: nn.Module, prefix: str = "") -> list[FilterGroup]:
    """Every filter group of `network`, in module order (the forward order is recorded by
    `activation_peaks`)."""
    groups, whole = [], []  # whole: networks whose groups are all found already
    for name, module in network.named_modules(prefix=prefix):
        if any(not folder or name.startswith(f"{folder}.") for folder in whole):
            continue
        if isinstance(module, Residual):
            groups += _residual_groups(name, module)
        elif isinstance(module, StackedHourglass):
            groups += _hourglass_groups(name, module)
        elif isinstance(module, (SelecSLS, SelecSLSMaps)):
            groups += _selecsls_groups(name, module)
            whole.append(name)
    return groups


@torch.no_grad()
def activation_peaks(model: nn.Module, groups: list[FilterGroup], batches) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each group's largest rectified output per filter (C,) over `batches` (an iterable of
    keyword-argument dicts for `model`), and the groups' names in the order they run."""
    peaks: dict[str, torch.Tensor] = {}
    order: list[str] = []

    def hook_for(name):
        def hook(module, args, output):
            peak = output.detach().float().clamp_min(0).amax(dim=(0, 2, 3)).cpu()
            if name not in peaks:
                order.append(name)
                peaks[name] = peak
            else:
                peaks[name] = torch.maximum(peaks[name], peak)

        return hook

    handles = [group.norm.register_forward_hook(hook_for(group.name)) for group in groups]
    model.eval()
    try:
        for kwargs in batches:
            model(**kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return {name: peak.numpy() for name, peak in peaks.items()}, order


def inactive_filters(
    group: FilterGroup, peak: np.ndarray | None, gamma_threshold: float = 1e-3, activation_threshold: float = 1e-12
) -> dict[str, np.ndarray]:
    """Boolean masks (C,): inactive by BatchNorm scale, by activation, and by either."""
    by_gamma = group.gamma() < gamma_threshold
    by_activation = peak < activation_threshold if peak is not None else np.zeros_like(by_gamma)
    return {"gamma": by_gamma, "activation": by_activation, "either": by_gamma | by_activation}
