"""BodyNet checkpoints: written by training, read by training, evaluation and sparsity.

A checkpoint is a dict: `config` (`BodyNetConfig.as_dict()`), `state` ({subnetwork: state
dict}), `stage`, `iteration`, and whatever a writer adds (`pruned` marks one whose filters
were removed: its layers are narrower than its config says).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from pipeline.atomic import atomic_output
from pipeline.errors import InputError
from pipeline.models.bodynet import BodyNet, BodyNetConfig
from pipeline.seeding import torch_seed


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise InputError(f"{path}: not a readable checkpoint ({error})") from error
    if not isinstance(checkpoint, dict) or "config" not in checkpoint or "state" not in checkpoint:
        raise InputError(f"{path}: not a BodyNet checkpoint (no config/state)")
    return checkpoint


@torch.no_grad()
def fit_to_state(network: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Narrow `network`'s convolutions and BatchNorms to the shapes of a pruned `state`."""
    for name, module in network.named_modules():
        weight = state.get(f"{name}.weight")
        if weight is None or tuple(weight.shape) == tuple(getattr(module, "weight", torch.empty(0)).shape):
            continue
        if isinstance(module, nn.Conv2d):
            module.weight = nn.Parameter(torch.empty_like(weight))
            module.out_channels, module.in_channels = weight.shape[0], weight.shape[1] * module.groups
            if module.bias is not None:
                module.bias = nn.Parameter(torch.empty(weight.shape[0]))
        elif isinstance(module, nn.BatchNorm2d):
            size = weight.shape[0]
            module.weight, module.bias = nn.Parameter(torch.empty(size)), nn.Parameter(torch.empty(size))
            module.running_mean, module.running_var = torch.zeros(size), torch.ones(size)
            module.num_features = size


def build_model(config: BodyNetConfig, inits: list[Path], seed: int = 0) -> BodyNet:
    """A BodyNet whose subnetworks come from the checkpoints of earlier stages (a later file
    overrides an earlier one for the subnetworks it holds). `model.trained` names the
    subnetworks so taken; the others start from a seeded random initialisation."""
    torch.manual_seed(torch_seed(seed, "init"))
    model = BodyNet(config)
    model.trained = set()
    for path in inits:
        checkpoint = load_checkpoint(path)
        for name, state in checkpoint["state"].items():
            if checkpoint.get("pruned"):  # filters removed: narrow the layers to the state's
                fit_to_state(getattr(model, name), state)
            try:
                getattr(model, name).load_state_dict(state)
            except RuntimeError as error:
                raise InputError(f"{path}: subnetwork {name!r} does not fit this configuration ({error})") from error
            model.trained.add(name)
    return model


def save_model(
    path: Path, model: BodyNet, stage: str, subnetworks: Iterable[str], iteration: int, extra: dict | None = None
) -> None:
    """Write `subnetworks` of `model`, trained by `stage` up to `iteration`, atomically."""
    state = {name: getattr(model, name).state_dict() for name in subnetworks}
    payload = {"config": model.config.as_dict(), "state": state, "stage": stage, "iteration": iteration}
    with atomic_output(path) as tmp:
        torch.save(payload | (extra or {}), tmp)
