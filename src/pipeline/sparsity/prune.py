"""Removing filters for real, and folding BatchNorm into the convolution before it.

Removing filter k of a group drops output channel k of its convolution and BatchNorm and
input channel k of every reader. What the reader saw of it is a constant: zero for a filter
whose rectified output is always zero, ReLU(β_k) for one whose scale γ_k vanished. That
constant — passed through the reader's own BatchNorm and ReLU where it has one — moves
into the reader's bias: exactly for 1×1 readers; a 3×3 reader's zero padding would see the
constant at the border, so a filter read by one goes only when its constant is zero.

Pruned modules are narrowed in place, so a pruned network is still the same classes;
`pipeline.models.checkpoint.fit_to_state` narrows a freshly built network to a pruned
state dict before loading it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.sparsity.filters import FilterGroup


def _narrow_conv(conv: nn.Conv2d, keep_out: torch.Tensor | None = None, keep_in: torch.Tensor | None = None) -> None:
    weight = conv.weight.detach()
    if keep_out is not None:
        weight = weight[keep_out]
        if conv.bias is not None:
            conv.bias = nn.Parameter(conv.bias.detach()[keep_out].clone())
        conv.out_channels = len(keep_out)
    if keep_in is not None:
        weight = weight[:, keep_in]
        conv.in_channels = len(keep_in)
    conv.weight = nn.Parameter(weight.clone())


def _narrow_norm(norm: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    norm.weight = nn.Parameter(norm.weight.detach()[keep].clone())
    norm.bias = nn.Parameter(norm.bias.detach()[keep].clone())
    norm.running_mean = norm.running_mean[keep].clone()
    norm.running_var = norm.running_var[keep].clone()
    norm.num_features = len(keep)


def _normalise(norm: nn.BatchNorm2d, values: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """What `norm` (eval mode) makes of constant inputs `values` on `channels`."""
    scale = norm.weight[channels] / torch.sqrt(norm.running_var[channels] + norm.eps)
    return (values - norm.running_mean[channels]) * scale + norm.bias[channels]


@torch.no_grad()
def remove_filters(group: FilterGroup, remove: np.ndarray, silent: np.ndarray) -> int:
    """Remove the filters `remove` (C,) bool of `group`, at least one filter staying; `silent`
    (C,) marks those whose rectified output is zero on every image (the others output the
    constant ReLU(β)). Returns how many filters went: none where the group's readers are not
    followed."""
    if group.readers is None:
        return 0
    remove = torch.as_tensor(np.asarray(remove, dtype=bool)).clone()
    silent = torch.as_tensor(np.asarray(silent, dtype=bool))
    constant = torch.where(silent, 0.0, torch.relu(group.norm.bias.detach()))
    if any(reader.conv.kernel_size != (1, 1) for reader in group.readers):
        remove &= constant == 0  # a constant would move a padded border: keep the filter
    if remove.all():
        remove[int(group.gamma().argmax())] = False
    gone = torch.nonzero(remove).flatten()
    keep = torch.nonzero(~remove).flatten()
    if not len(gone):
        return 0
    constant = constant[gone]
    for reader in group.readers:
        seen = constant
        if reader.norm is not None:
            seen = torch.relu(_normalise(reader.norm, seen, gone))
        weight = reader.conv.weight.detach()[:, gone].sum(dim=(2, 3))  # (out, gone)
        if reader.conv.bias is None:
            reader.conv.bias = nn.Parameter(torch.zeros(reader.conv.out_channels, dtype=weight.dtype))
        reader.conv.bias += weight @ seen
        _narrow_conv(reader.conv, keep_in=keep)
        if reader.norm is not None:
            _narrow_norm(reader.norm, keep)
    _narrow_conv(group.conv, keep_out=keep)
    _narrow_norm(group.norm, keep)
    return len(gone)


@torch.no_grad()
def fold_batchnorm(network: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a convolution in a Sequential into it
    (eval mode: the running statistics); returns how many were folded."""
    folded = 0
    for sequential in [m for m in network.modules() if isinstance(m, nn.Sequential)]:
        keys = list(sequential._modules)
        for first, second in zip(keys, keys[1:]):
            conv, norm = sequential._modules[first], sequential._modules[second]
            if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)):
                continue
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
            conv.weight = nn.Parameter(conv.weight * scale[:, None, None, None])
            conv.bias = nn.Parameter((bias - norm.running_mean) * scale + norm.bias)
            sequential._modules[second] = nn.Identity()
            folded += 1
    return folded
