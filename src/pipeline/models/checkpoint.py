"""BodyNet checkpoints: written by training, read by training, evaluation and sparsity.

A checkpoint is a dict: `config` (`BodyNetConfig.as_dict()`), `state` ({subnetwork: state
dict}), `stage`, `iteration`, and whatever a writer adds (`pruned` marks one whose filters
were removed: its layers are narrower than its config says).

Checkpoints hold tensors and plain values only (dicts, lists, tuples, str, numbers, None), and
are read with `torch.load(weights_only=True)`: a file that refers to anything else (a pickled
function or class) is refused before it can run.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.atomic import atomic_output
from pipeline.errors import InputError
from pipeline.models.bodynet import BodyNet, BodyNetConfig
from pipeline.seeding import torch_seed

_PLAIN = (str, bytes, int, float, bool, type(None), torch.Tensor)
# the global a weights-only load refused, as torch reports it ("... Unsupported global: GLOBAL os.system was ...")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
# what a checkpoint's optional entries must be, where a reader relies on them
_ENTRY_TYPES = {"stage": str, "iteration": int, "pruned": bool, "run_id": str, "pruned_from": str}


def plain(value: object, where: str = "checkpoint") -> object:
    """`value` as a weights-only load reads it back: tensors and plain values kept, numpy
    numbers and arrays and paths turned into plain numbers, tensors and str. A TypeError
    (naming `where`) for anything else: a writer's mistake, caught before a file is written."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()) if value.dtype.kind in "biuf" else plain(value.tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, _PLAIN):
        return value
    for kind in (list, tuple, set):  # their subclasses (a namedtuple, torch.Size) become the plain kind
        if isinstance(value, kind):
            return kind(plain(item, f"{where}[{index}]") for index, item in enumerate(value))
    if isinstance(value, dict):  # a state dict is an OrderedDict whose `_metadata` load_state_dict reads
        kind = OrderedDict if isinstance(value, OrderedDict) else dict
        copy = kind((plain(key, where), plain(item, f"{where}[{key!r}]")) for key, item in value.items())
        if hasattr(value, "_metadata"):
            copy._metadata = plain(value._metadata, f"{where}._metadata")
        return copy
    raise TypeError(f"{where} is a {type(value).__name__}: a checkpoint holds tensors and plain values only")


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write `payload` atomically, as plain values (see `plain`)."""
    payload = plain(payload)
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def _one_line(error: Exception) -> str:
    """An error's message on one line (torch's span several)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def _failure(error: Exception, what: str) -> str:
    """Why torch.load failed, in one line: the global a weights-only load refused, or the
    first line of torch's message (the rest is advice on loading the file unsafely)."""
    refused = _REFUSED_GLOBAL.search(str(error))
    if refused:
        return f"refuses to load '{refused.group(1)}' (not a tensor or plain value)"
    lines = str(error).strip().splitlines()
    return f"not a readable {what} ({lines[0] if lines else type(error).__name__})"


def load_plain(path: str | Path, what: str = "checkpoint") -> object:
    """What a torch file written by `save_checkpoint` holds, loaded without running anything
    from it; an InputError naming the file if it is unreadable or holds more than plain values.
    `what` names the kind of file in the message ("not a readable <what>")."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises a little of everything for a damaged file
        raise InputError(f"{path}: {_failure(error, what)}") from error


def _check_state(state: object, path: Path) -> None:
    """`state` must be {subnetwork: {name: tensor}} with finite floating-point tensors: a NaN
    would otherwise surface much later, as a failed body fit."""
    if not isinstance(state, dict):
        raise InputError(f"{path}: 'state' is a {type(state).__name__}, not a dict of subnetworks")
    for name, tensors in state.items():
        if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
            raise InputError(f"{path}: subnetwork {name!r} is not a dict of tensors")
        for key, tensor in tensors.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise InputError(f"{path}: holds non-finite weights (subnetwork {name}, {key})")


def load_checkpoint(path: str | Path) -> dict:
    """A BodyNet checkpoint, checked: its config is a valid `BodyNetConfig.as_dict()` (so
    `BodyNetConfig(**checkpoint["config"])` holds) and its weights are finite."""
    path = Path(path)
    checkpoint = load_plain(path)
    if not isinstance(checkpoint, dict) or "config" not in checkpoint or "state" not in checkpoint:
        raise InputError(f"{path}: not a BodyNet checkpoint (no config/state)")
    try:
        checkpoint["config"] = BodyNetConfig.from_dict(checkpoint["config"]).as_dict()
    except ValueError as error:
        raise InputError(f"{path}: config: {error}") from error
    for key, kind in _ENTRY_TYPES.items():
        if key in checkpoint and not isinstance(checkpoint[key], kind):
            raise InputError(f"{path}: {key!r} is a {type(checkpoint[key]).__name__}, not a {kind.__name__}")
    _check_state(checkpoint["state"], path)
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
    subnetworks = dict(model.named_children())
    for path in inits:
        checkpoint = load_checkpoint(path)
        trained_loss = checkpoint["config"]["pose3d_loss"]
        if "pose3d" in checkpoint["state"] and trained_loss != config.pose3d_loss:
            raise InputError(
                f"{path}: its 3D-pose network was trained with the {trained_loss!r} loss, not {config.pose3d_loss!r} "
                "(bodynet.pose3d_loss): its outputs mean something else"
            )
        for name, state in checkpoint["state"].items():
            if name not in subnetworks:
                raise InputError(f"{path}: holds an unknown subnetwork {name!r} (BodyNet has {', '.join(subnetworks)})")
            if checkpoint.get("pruned"):  # filters removed: narrow the layers to the state's
                fit_to_state(subnetworks[name], state)
            try:
                subnetworks[name].load_state_dict(state)
            except RuntimeError as error:
                raise InputError(
                    f"{path}: subnetwork {name!r} does not fit this configuration ({_one_line(error)})"
                ) from error
            model.trained.add(name)
    return model


def save_model(
    path: Path, model: BodyNet, stage: str, subnetworks: Iterable[str], iteration: int, extra: dict | None = None
) -> None:
    """Write `subnetworks` of `model`, trained by `stage` up to `iteration`, atomically."""
    state = {name: getattr(model, name).state_dict() for name in subnetworks}
    payload = {"config": model.config.as_dict(), "state": state, "stage": stage, "iteration": iteration}
    save_checkpoint(path, payload | (extra or {}))
