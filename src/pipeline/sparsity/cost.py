"""What running a network costs: parameters, multiply-accumulates and latency."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


@torch.no_grad()
def multiply_accumulates(network: nn.Module, args: tuple) -> int:
    """Multiply-accumulates of the convolutions and linear layers for one input (the
    batch's count divided by its size) when `network(*args)` runs."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * kernel
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        network.eval()
        network(*args)
    finally:
        for handle in handles:
            handle.remove()
    return total // batch_size(args)


def batch_size(args) -> int:
    """The batch dimension of the first tensor found in `args` (tensors, lists, dicts)."""
    stack = list(args)
    while stack:
        item = stack.pop(0)
        if isinstance(item, torch.Tensor):
            return item.shape[0]
        if isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, (list, tuple)):
            stack += list(item)
    raise ValueError("no tensor among the arguments")


@torch.no_grad()
def latencies_ms(networks: list[nn.Module], args: tuple, repeats: int = 20, warmup: int = 3) -> list[float]:
    """Median wall time of each `network(*args)` in milliseconds (eval mode, no gradients),
    the networks timed in turn within each repeat so that they share the machine's state."""
    for network in networks:
        network.eval()
        for _ in range(warmup):
            network(*args)
    times = [[] for _ in networks]
    for _ in range(repeats):
        for network, own in zip(networks, times):
            start = time.perf_counter()
            network(*args)
            own.append(time.perf_counter() - start)
    return [float(np.median(own) * 1e3) for own in times]
