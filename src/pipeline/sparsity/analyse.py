"""One trained BodyNet checkpoint: which filters are inactive, and the network without them.

For every subnetwork the checkpoint holds: per filter group, the share of filters inactive
by BatchNorm scale and by activation over training images; then those filters removed (see
`prune`), the subnetwork's own validation measure, parameters, multiply-accumulates and
CPU latency before and after (the original; with BatchNorm folded; pruned and folded, timed
in turn), and how far its outputs moved.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.sparsity import cost
from pipeline.sparsity.filters import activation_peaks, filter_groups, inactive_filters
from pipeline.sparsity.prune import fold_batchnorm, remove_filters
from pipeline.training.loop import evaluate
from pipeline.training.samples import SampleSet, inputs, make_batch

# Each subnetwork's own validation measure.
MEASURES = {
    "pose2d": "pckh",
    "segm": "part_iou",
    "pose3d": "joint_error_mm",
    "voxels": "voxel_iou",
    "shape": "beta_error",
    "depth": "depth_rmse_mm",
}


@dataclass
class SparsitySettings:
    """The analysis of one network; the fields without a default are the config's
    (`sparsity.*`: docs/config.md)."""

    gamma_threshold: float
    activation_threshold: float
    activation_samples: int  # training images the activations are taken over; 0: all
    latency_batch: int
    batch_size: int = 16  # of the activations' pass: memory, not results
    latency_repeats: int = 20


@dataclass
class Analysis:
    layers: pd.DataFrame  # one row per filter group
    networks: pd.DataFrame  # one row per subnetwork


def _batches(samples: SampleSet, count: int, batch_size: int):
    indices = np.arange(len(samples))
    if count and count < len(samples):  # an even spread over the clips, not the first ones
        indices = np.linspace(0, len(samples) - 1, count).round().astype(int)
    for start in range(0, len(indices), batch_size):
        yield make_batch(samples, indices[start : start + batch_size])


def _subnetwork_inputs(model: nn.Module, names: list[str], kwargs: dict) -> dict[str, tuple]:
    """The arguments each named subnetwork is called with when `model(**kwargs)` runs."""
    captured = {}

    def hook_for(name):
        def hook(module, args):
            captured[name] = tuple(dict(a) if isinstance(a, dict) else a for a in args)

        return hook

    handles = [getattr(model, name).register_forward_pre_hook(hook_for(name)) for name in names]
    try:
        with torch.no_grad():
            model.eval()
            model(**kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _last_outputs(model: nn.Module, names: list[str], kwargs: dict) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        model.eval()
        out = model(**kwargs)
    return {name: out[name][-1].float() for name in names}


def analyse(
    model: nn.Module,
    held: list[str],
    train_set: SampleSet,
    val_set: SampleSet,
    settings: SparsitySettings,
    progress: bool = True,
) -> Analysis:
    """Measure, prune (in place) and measure again the subnetworks `held` of a BodyNet."""
    from tqdm import tqdm

    wanted = tuple(held)
    groups = {name: filter_groups(getattr(model, name), prefix=name) for name in held}
    everything = [group for name in held for group in groups[name]]
    count = settings.activation_samples or len(train_set)
    batches = (
        {**inputs(batch), "wanted": wanted}
        for batch in tqdm(
            _batches(train_set, count, settings.batch_size),
            desc="activations",
            total=-(-min(count, len(train_set)) // settings.batch_size),
            disable=not progress,
        )
    )
    peaks, order = activation_peaks(model, everything, batches)
    position = {name: index for index, name in enumerate(order)}

    probe = make_batch(val_set, np.arange(min(settings.latency_batch, len(val_set))))
    probe_kwargs = {**inputs(probe), "wanted": wanted}
    arguments = _subnetwork_inputs(model, list(held), probe_kwargs)
    outputs_before = _last_outputs(model, list(held), probe_kwargs)
    measures_before = evaluate(model, val_set, wanted, torch.device("cpu"))
    original = copy.deepcopy(model)

    layer_rows = []
    for name in held:
        for group in sorted(groups[name], key=lambda g: position.get(g.name, len(position))):
            masks = inactive_filters(
                group, peaks.get(group.name), settings.gamma_threshold, settings.activation_threshold
            )
            filters = group.filters
            removed = remove_filters(group, masks["either"], masks["activation"])
            layer_rows.append(
                {
                    "network": name,
                    "layer": group.name,
                    "order": position.get(group.name, -1),
                    "filters": filters,
                    "inactive_gamma": int(masks["gamma"].sum()),
                    "inactive_activation": int(masks["activation"].sum()),
                    "inactive": int(masks["either"].sum()),
                    "removed": removed,
                }
            )

    measures_after = evaluate(model, val_set, wanted, torch.device("cpu"))
    outputs_after = _last_outputs(model, list(held), probe_kwargs)
    network_rows = []
    for name in held:
        layers = [row for row in layer_rows if row["network"] == name]
        before, after = getattr(original, name), getattr(model, name)
        # timed: the original, the original with BatchNorm folded, the pruned one folded
        folded_before, folded_after = copy.deepcopy(before), copy.deepcopy(after)
        fold_batchnorm(folded_before)
        fold_batchnorm(folded_after)
        latency = cost.latencies_ms([before, folded_before, folded_after], arguments[name], settings.latency_repeats)
        measure = MEASURES[name]
        scale = outputs_before[name].abs().max().clamp_min(1e-12)
        network_rows.append(
            {
                "network": name,
                "filters": sum(row["filters"] for row in layers),
                "inactive_gamma": sum(row["inactive_gamma"] for row in layers),
                "inactive_activation": sum(row["inactive_activation"] for row in layers),
                "removed": sum(row["removed"] for row in layers),
                "parameters_before": cost.parameters(before),
                "parameters_after": cost.parameters(after),
                "macs_before": cost.multiply_accumulates(before, arguments[name]),
                "macs_after": cost.multiply_accumulates(after, arguments[name]),
                "latency_ms_before": latency[0],
                "latency_ms_folded": latency[1],
                "latency_ms_after": latency[2],
                "measure": measure,
                "before": measures_before.get(measure, float("nan")),
                "after": measures_after.get(measure, float("nan")),
                "output_change": float((outputs_after[name] - outputs_before[name]).abs().max() / scale),
            }
        )
    return Analysis(pd.DataFrame(layer_rows), pd.DataFrame(network_rows))
