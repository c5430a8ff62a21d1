"""How far would more training take the default networks? The 2D-pose and 3D-pose stages
trained at 1×, 2×, 4× (and 8×) the config's iterations, everything else the config's: the test
measure at the end of each schedule against the crops seen and the FLOPs spent, a power law
fitted through them, and where it would reach the paper's figures (BodyNet's PCKh 0.83 on
SURREAL's test set, 3D joints 46 mm), in crops, FLOPs and hours on this machine.

    python benchmarks/compute_curve.py --train results/bodynet/samples/train --val results/bodynet/samples/test \\
        --init results/bodynet/pose2d/model.pt --init results/bodynet/segm/model.pt \\
        [--stages pose2d pose3d] [--multiples 1 2 4 8] [--threads 2] \\
        [--out benchmarks/results/compute_curve_cpu.json] [--figure benchmarks/results/compute_curve_cpu.png]

Each schedule is a run of its own, not a point on a longer one: the learning rate drops at
`lr_drop` of each schedule's length, as the main job's does. The 3D-pose stage reads the given
2D networks (the main job's, trained at 1×), so its curve is the 3D network's own compute.

What the fit says and does not: the error term (1 − PCKh, or the 3D error in mm) is fitted as
a·C^(−b) in the crops seen C, by least squares on the logarithms. A power law that keeps
falling is the optimistic reading: the default networks are 1/4 of the paper's width at half
its input size, and a network's capacity ends the curve somewhere this fit cannot see. The
extrapolation says how far off the paper's figures the default schedule is in compute, not
that the default network would reach them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from pipeline.figures import save_figure  # noqa: E402
from pipeline.models.checkpoint import build_model  # noqa: E402
from pipeline.training import loop, losses  # noqa: E402
from pipeline.training.samples import SampleSet, inputs, make_batch  # noqa: E402
from pipeline.training.stages import stage as make_stage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Each stage's test measure, which way is better, the error term the power law is fitted to,
# and the paper's figure for it (Varol et al., "BodyNet: Volumetric Inference of 3D Human Body
# Shapes", 2018: SURREAL's test set).
MEASURES = {
    "pose2d": {"measure": "pckh", "error": lambda value: 1.0 - value, "back": lambda error: 1.0 - error, "paper": 0.83},
    "pose3d": {"measure": "joint_error_mm", "error": lambda value: value, "back": lambda error: error, "paper": 46.0},
}


def network(stage: str, inits: list[Path], sizes, config: dict, seed: int):
    model_config = loop.network_config(config, sizes)
    return build_model(model_config, inits if stage != "pose2d" else [], seed)


def step_gflop(stage: str, inits: list[Path], train: SampleSet, config: dict) -> float:
    """GFLOP of one float32 training step of `stage` (forward and backward, as torch's FLOP
    counter sees them: convolutions and matrix products)."""
    model = network(stage, inits, train.sizes, config, 0)
    plan = make_stage(stage)
    loop.set_trainable(model, plan)
    batch = make_batch(train, np.arange(config["batch_size"]), targets=plan.targets)
    with FlopCounterMode(display=False) as counter:
        outputs = model(**inputs(batch, "cpu"), wanted=plan.wanted)
        terms = losses.terms(outputs, batch, list(plan.weights), model.config.pose3d_loss)
        sum(plan.weights[name] * value for name, value in terms.items()).backward()
    return counter.get_total_flops() / 1e9


def train_stage(
    stage: str, inits: list[Path], train: SampleSet, val: SampleSet, fit: SampleSet, iterations: int, config: dict
) -> dict:
    """One schedule of `stage`: its history (ten evaluations) and seconds."""
    seed = config["seed"]
    model = network(stage, inits, train.sizes, config["bodynet"], seed)
    bodynet = config["bodynet"]
    settings = loop.stage_settings(
        bodynet,
        stage,
        seed,
        iterations=iterations,
        eval_every=max(iterations // 10, 1),
        eval_samples=len(val),
        checkpoint_every=iterations,
        device="cpu",
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        history, _ = loop.train(
            model, make_stage(stage), train, val, settings, Path(folder) / "checkpoint.pt", fit_set=fit
        )
        seconds = time.perf_counter() - start
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {"iterations": iterations, "history": history, "seconds": seconds, "commit": commit.strip()}


def power_law(crops: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    """(a, b) of error ≈ a·crops^(−b), least squares on the logarithms."""
    slope, intercept = np.polyfit(np.log(crops), np.log(errors), 1)
    return float(np.exp(intercept)), float(-slope)


def extrapolate(runs: list[dict], stage: str, batch_size: int, gflop: float) -> dict:
    """The fitted power law and the crops, PFLOP and hours on this machine (at the runs' own
    speed) at which it reaches the paper's figure."""
    spec = MEASURES[stage]
    crops = np.array([run["iterations"] * batch_size for run in runs], dtype=float)
    errors = np.array([spec["error"](run["history"][-1][spec["measure"]]) for run in runs])
    a, b = power_law(crops, errors)
    target = spec["error"](spec["paper"])
    needed = (a / target) ** (1 / b) if b > 0 else float("inf")
    seconds_per_crop = sum(run["seconds"] for run in runs) / crops.sum()
    reached = bool(np.isfinite(needed))  # a curve that does not fall never reaches it: null below
    return {
        "a": a,
        "b": b,
        "paper": spec["paper"],
        "crops_needed": float(needed) if reached else None,
        "times_default": float(needed / crops[0]) if reached else None,
        "pflop_needed": float(needed / batch_size * gflop / 1e6) if reached else None,
        "hours_here": float(needed * seconds_per_crop / 3600) if reached else None,
    }


def figure(results: dict, out: Path) -> None:
    stages = list(results["stages"])
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 3.8), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        spec, entry = MEASURES[stage], results["stages"][stage]
        batch = results["batch_size"]
        for kind, style in (("", "o-"), ("train_", "s--")):
            crops = [run["iterations"] * batch for run in entry["runs"]]
            values = [run["history"][-1][kind + spec["measure"]] for run in entry["runs"]]
            ax.plot(crops, values, style, label="training crops" if kind else "test crops")
        fit = entry.get("fit")
        if fit:  # drawn on to the paper's figure where the fit reaches it, else past the runs
            end = crops[-1] * 4 if fit["crops_needed"] is None else min(fit["crops_needed"], crops[-1] * 1e4)
            span = np.geomspace(crops[0], max(crops[-1], end), 50)
            ax.plot(
                span,
                [spec["back"](fit["a"] * c ** (-fit["b"])) for c in span],
                ":",
                color="grey",
                label=f"fit: error ∝ crops^−{fit['b']:.2f}",
            )
        ax.axhline(spec["paper"], color="black", linewidth=0.8, linestyle="-.", label="the paper's figure")
        ax.set_xscale("log")
        if stage == "pose3d":
            ax.set_yscale("log")
        ax.set_xlabel(f"crops seen (×{entry['gflop_per_step'] / batch:.2f} GFLOP each)")
        ax.set_ylabel({"pckh": "PCKh@0.5", "joint_error_mm": "3D joint error (mm)"}[spec["measure"]])
        ax.set_title(f"{stage}, at the end of each schedule", fontsize=10)
        ax.legend(fontsize=7)
    save_figure(fig, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--init", type=Path, action="append", default=[], help="the 2D networks, for pose3d")
    parser.add_argument("--stages", nargs="+", default=list(MEASURES), choices=list(MEASURES))
    parser.add_argument("--multiples", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/compute_curve_cpu.json")
    parser.add_argument("--figure", type=Path, default=ROOT / "benchmarks/results/compute_curve_cpu.png")
    parser.add_argument("--figure-only", action="store_true", help="redraw the figure from --out")
    args = parser.parse_args()

    if args.figure_only:
        figure(json.loads(args.out.read_text()), args.figure)
        return
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    bodynet = config["bodynet"]
    train, test = SampleSet.load(args.train), SampleSet.load(args.val)
    val = test.subset(bodynet["eval_samples"], config["seed"])
    fit = train.subset(bodynet["eval_samples"], config["seed"])
    results = json.loads(args.out.read_text()) if args.out.exists() else {"stages": {}}
    results |= {"threads": args.threads, "batch_size": bodynet["batch_size"], "train_samples": len(train)}
    results |= {"machine": {"torch": torch.__version__, "precision": bodynet["precision"]}}
    for stage in args.stages:
        entry = results["stages"].setdefault(stage, {"runs": []})
        entry["gflop_per_step"] = step_gflop(stage, args.init, train, bodynet)
        done = {run["iterations"] for run in entry["runs"]}
        for multiple in args.multiples:
            iterations = multiple * bodynet["iterations"][stage]
            if iterations in done:
                continue
            entry["runs"].append(train_stage(stage, args.init, train, val, fit, iterations, config))
            entry["runs"].sort(key=lambda run: run["iterations"])
            measure = MEASURES[stage]["measure"]
            print(
                stage,
                f"{multiple}×:",
                {k: v for k, v in entry["runs"][-1]["history"][-1].items() if measure in k},
                flush=True,
            )
            if len(entry["runs"]) >= 2:
                entry["fit"] = extrapolate(entry["runs"], stage, bodynet["batch_size"], entry["gflop_per_step"])
            args.out.write_text(json.dumps(results, indent=1))  # each run kept as it ends
    figure(results, args.figure)


if __name__ == "__main__":
    main()
