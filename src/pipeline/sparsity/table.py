"""The sparsity table, in the shape of Mehta et al.'s Table D.1: per analysed network, the share
of filters removed layer by layer (in the order the layers run) and in all, the share of
parameters and multiply-accumulates removed, its measure before → after, and the CPU
speed-up: of pruning with BatchNorm folded over the original, and of pruning alone (both
folded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError, read_json_record


def read_analysis(path: str | Path) -> dict:
    return read_json_record(path, "sparsity analysis", ("trains", "train", "networks", "layers"))


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else float("nan")


def build(analyses: dict[str, dict]) -> pd.DataFrame:
    """One row per (analysis, subnetwork its stage trained)."""
    records = []
    for key, analysis in analyses.items():
        layers = pd.DataFrame(analysis["layers"])
        train = analysis["train"]
        for network in analysis["networks"]:
            if network["network"] not in analysis["trains"]:
                continue  # inherited unchanged: analysed with the stage that trained it
            own = layers[layers["network"] == network["network"]].sort_values("order")
            per_layer = (100.0 * own["removed"] / own["filters"]).round().astype(int)
            records.append(
                {
                    "key": key,
                    "network": network["network"],
                    "optimiser": train.get("optimiser", "rmsprop"),
                    "decay": train.get("decay", "l2") if train.get("weight_decay") else "none",
                    "weight_decay": train.get("weight_decay", 0.0),
                    "layers_pruned_percent": " ".join(str(v) for v in per_layer),
                    "pruned_percent": _percent(network["removed"], network["filters"]),
                    "inactive_gamma_percent": _percent(network["inactive_gamma"], network["filters"]),
                    "inactive_activation_percent": _percent(network["inactive_activation"], network["filters"]),
                    "parameters_removed_percent": _percent(
                        network["parameters_before"] - network["parameters_after"], network["parameters_before"]
                    ),
                    "macs_removed_percent": _percent(
                        network["macs_before"] - network["macs_after"], network["macs_before"]
                    ),
                    "measure": network["measure"],
                    "before": network["before"],
                    "after": network["after"],
                    "speedup": network["latency_ms_before"] / network["latency_ms_after"],
                    "speedup_of_pruning": network["latency_ms_folded"] / network["latency_ms_after"],
                    "output_change": network["output_change"],
                }
            )
    if not records:
        raise InputError("no analysed network to tabulate")
    return pd.DataFrame(records)


def layer_profile(analyses: dict[str, dict]) -> pd.DataFrame:
    """Long form for the per-layer plot: key, network, position (0 first layer … 1 last), % removed."""
    rows = []
    for key, analysis in analyses.items():
        layers = pd.DataFrame(analysis["layers"])
        for network in analysis["trains"]:
            own = layers[layers["network"] == network].sort_values("order")
            if own.empty:
                continue
            position = np.linspace(0.0, 1.0, len(own)) if len(own) > 1 else np.zeros(1)
            for where, (_, layer) in zip(position, own.iterrows()):
                rows.append(
                    {
                        "key": key,
                        "network": network,
                        "position": where,
                        "layer": layer["layer"],
                        "removed_percent": 100.0 * layer["removed"] / layer["filters"],
                    }
                )
    return pd.DataFrame(rows)
