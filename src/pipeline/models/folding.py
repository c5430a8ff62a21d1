"""Batch normalisation folded into the convolution before it, for inference.

At inference a BatchNorm2d is an affine map per channel, y = γ (x − μ) / √(σ² + ε) + β, and the
convolution before it is linear, so the two are one convolution with scaled weights and a
bias: the same outputs (to float rounding) from one pass over the activations instead of two.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

FOLDABLE = (nn.Conv2d, nn.ConvTranspose2d)


def fold_batchnorm(network: nn.Module) -> nn.Module:
    """A copy of `network` in eval mode in which every BatchNorm2d that directly follows a
    convolution in an nn.Sequential is folded into it (and replaced by an identity); the
    network itself is left as it was."""
    folded = copy.deepcopy(network).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, FOLDABLE) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
                module._modules[first] = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, nn.ConvTranspose2d))
                module._modules[second] = nn.Identity()
    return folded
