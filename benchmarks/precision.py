"""Does bfloat16 learn as well per iteration as float32? One stage trained twice on the same
prepared samples, with the same seed and batches, in fp32 and in the mode the default config
chooses (bf16 autocast, channels last), and their loss and validation curves drawn together.

    python benchmarks/precision.py --train results/bodynet/samples/train \\
        --val results/bodynet/samples/test [--stage pose2d] [--iterations 1000] [--threads 1]
        [--out benchmarks/results/precision_cpu.json] [--figure benchmarks/results/precision_cpu.png]

The samples are a run's own (`results/bodynet/samples/<split>`); the networks' sizes are read
from them and from config.yaml's hourglass, batch size and learning rate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from pipeline.figures import save_figure  # noqa: E402
from pipeline.models.checkpoint import build_model  # noqa: E402
from pipeline.training import loop  # noqa: E402
from pipeline.training.samples import SampleSet  # noqa: E402
from pipeline.training.stages import stage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEASURE = {"pose2d": "pckh", "segm": "part_iou", "pose3d": "joint_error_mm", "voxels": "voxel_iou"}


def train_once(
    precision: str, channels_last: bool, args: argparse.Namespace, settings: dict, train: SampleSet, val: SampleSet
) -> dict:
    sizes = train.sizes
    config = loop.network_config(settings, sizes)
    model = build_model(config, [])
    train_settings = loop.stage_settings(
        settings,
        args.stage,
        0,
        iterations=args.iterations,
        eval_every=args.eval_every,
        eval_samples=len(val),
        checkpoint_every=args.iterations,
        device="cpu",
        precision=precision,
        channels_last=channels_last,
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        history, steps = loop.train(
            model, stage(args.stage), train, val, train_settings, Path(folder) / "c.pt", progress=True
        )
        seconds = time.perf_counter() - start
    return {
        "precision": precision,
        "channels_last": channels_last,
        "seconds": seconds,
        "samples_per_second": args.iterations * settings["batch_size"] / seconds,
        "history": history,
        "losses": [row["loss"] for row in steps],
    }


def smooth(values: list[float], window: int = 50) -> np.ndarray:
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True, help="prepared training samples")
    parser.add_argument("--val", type=Path, required=True, help="prepared validation samples")
    parser.add_argument("--stage", default="pose2d", choices=list(MEASURE))
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--val-images", type=int, default=96, help="validation images (the first)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/precision_cpu.json")
    parser.add_argument("--figure", type=Path, default=ROOT / "benchmarks/results/precision_cpu.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = yaml.safe_load((ROOT / "config.yaml").read_text())["bodynet"]
    train, val = SampleSet.load(args.train), SampleSet.load(args.val)
    val = val.subset(min(args.val_images, len(val)), 0)
    chosen = loop.autocast_dtype(torch.device("cpu"), settings["precision"])
    runs = [train_once("fp32", False, args, settings, train, val)]
    runs.append(
        train_once("bf16" if chosen is not None else "fp32", settings["channels_last"], args, settings, train, val)
    )
    measure = MEASURE[args.stage]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for run in runs:
        layout = " + channels last" if run["channels_last"] else ""
        label = f"{run['precision']}{layout} ({run['samples_per_second']:.0f} crops/s)"
        left.plot(np.arange(len(smooth(run["losses"]))) + 50, smooth(run["losses"]), label=label)
        right.plot(
            [row["iteration"] for row in run["history"]], [row[measure] for row in run["history"]], "o-", label=label
        )
    left.set(xlabel="iteration", ylabel="training loss (mean of 50)", yscale="log", title=f"{args.stage}: loss")
    right.set(xlabel="iteration", ylabel=measure, title=f"{args.stage}: validation ({len(val)} test images)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, args.figure)
    result = {
        "stage": args.stage,
        "iterations": args.iterations,
        "threads": args.threads,
        "runs": [
            {k: v for k, v in run.items() if k != "losses"}
            | {"final_loss_mean_100": float(np.mean(run["losses"][-100:]))}
            for run in runs
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for run in result["runs"]:
        print(
            run["precision"],
            f"{run['samples_per_second']:.1f} crops/s, final loss {run['final_loss_mean_100']:.4g},",
            f"{measure} {run['history'][-1][measure]:.4g}",
        )


if __name__ == "__main__":
    main()
