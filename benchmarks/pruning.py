"""Pruned networks: inference latency of each analysed subnetwork before and after, at a
few batch sizes and thread counts, with the ratios to the original measured in the same
run (the original, the original with BatchNorm folded, the pruned network folded, timed in
turn).

    python benchmarks/pruning.py [--analyses results/sparsity/analyses] [--batches 1 8]
        [--threads 1 2] [--repeats 30] [--out benchmarks/results/pruning_cpu.json]

Needs the sparsity analyses (`snakemake --cores 2 results/sparsity_table.csv`). Inputs are
random tensors of the analysed network's input shapes: latency does not depend on values.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
from pathlib import Path

import torch

from pipeline.models.bodynet import DEPTH_BINS, INPUT_CHANNELS, JOINTS, BodyNetConfig
from pipeline.models.checkpoint import build_model, load_checkpoint
from pipeline.sparsity import cost
from pipeline.sparsity.prune import fold_batchnorm

ROOT = Path(__file__).resolve().parents[1]


def random_inputs(config: BodyNetConfig, network: str, batch: int) -> tuple:
    """Arguments for `network` of a BodyNet of `config`, batch first."""
    image = torch.rand(batch, 3, config.input_size, config.input_size)
    if network in ("pose2d", "segm"):
        return (image,)
    s = config.heatmap_size
    features = {
        "rgb": image,
        "flow": torch.randn(batch, 3, config.input_size, config.input_size),
        "pose2d": torch.rand(batch, INPUT_CHANNELS["pose2d"], s, s),
        "segm": torch.rand(batch, INPUT_CHANNELS["segm"], s, s),
        "pose3d": torch.rand(batch, JOINTS, DEPTH_BINS, s, s),
    }
    return (features,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--analyses", type=Path, default=ROOT / "results/sparsity/analyses")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pruning_cpu.json")
    args = parser.parse_args()

    results = []
    for path in sorted(args.analyses.glob("*/*/analysis.json")):
        analysis = json.loads(path.read_text())
        original_checkpoint = load_checkpoint(analysis["model"])
        config = BodyNetConfig(**original_checkpoint["config"])
        original = build_model(config, [analysis["model"]]).eval()
        pruned = build_model(config, [path.parent / "pruned.pt"]).eval()
        for network in analysis["trains"]:
            before, after = getattr(original, network), copy.deepcopy(getattr(pruned, network))
            folded = copy.deepcopy(before)
            fold_batchnorm(folded)
            fold_batchnorm(after)
            for threads in args.threads:
                torch.set_num_threads(threads)
                for batch in args.batches:
                    inputs = random_inputs(config, network, batch)
                    times = cost.latencies_ms([before, folded, after], inputs, args.repeats)
                    row = {
                        "analysis": f"{path.parent.parent.name}/{path.parent.name}",
                        "network": network,
                        "threads": threads,
                        "batch": batch,
                        "original_ms": times[0],
                        "folded_ms": times[1],
                        "pruned_ms": times[2],
                        "speedup": times[0] / times[2],
                        "speedup_of_pruning": times[1] / times[2],
                    }
                    results.append(row)
                    print(
                        f"{row['analysis']:32s} {network:7s} {threads} thr batch {batch:2d}: "
                        f"{times[0]:7.2f} → {times[2]:7.2f} ms ({row['speedup']:.2f}×, pruning alone "
                        f"{row['speedup_of_pruning']:.2f}×)"
                    )
    if not results:
        raise SystemExit(f"{args.analyses}: no analysis.json (run the sparsity analyses first)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, "results": results},
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
