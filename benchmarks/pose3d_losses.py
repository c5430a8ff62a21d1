"""Which loss lets the 3D-pose network learn? Each of its losses (bodynet.pose3d_loss) trained on
the same crops, from the same start, with the same batches:

- memorisation: a few fixed training crops, measured on themselves: a formulation that cannot
  fit them cannot learn;
- the full training split, measured on the test split's crops and on training crops: how far it
  gets at the default schedule, and whether it under- or over-fits;
- with `--oracle`, the same fed the true 2D heatmaps in place of the 2D-pose network's: what
  the 2D localisation costs the 3D joints.

    python benchmarks/pose3d_losses.py --train results/bodynet/samples/train --val results/bodynet/samples/test \\
        --init results/bodynet/pose2d/model.pt --init results/bodynet/segm/model.pt \\
        [--losses mse softmax integral softmax+integral] [--memorise 64 --memorise-iterations 800] \\
        [--iterations 1200] [--oracle softmax] [--threads 2] \\
        [--out benchmarks/results/pose3d_losses_cpu.json] [--figure benchmarks/results/pose3d_losses_cpu.png]

The samples and the 2D networks are a run's own; the sizes, batch, learning rate and its drop
come from the samples and config.yaml. Also reported: the error of the volumes' own
representation (the true joints written into the target volume and read back: its floor), and
after each full run the test and training crops' errors whole (MPJPE), aligned (PA-MPJPE), in
the image plane alone and in depth alone.
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

from pipeline.evaluation.measures import procrustes_error_mm  # noqa: E402
from pipeline.figures import save_figure  # noqa: E402
from pipeline.models.bodynet import POSE3D_LOSSES  # noqa: E402
from pipeline.models.checkpoint import build_model  # noqa: E402
from pipeline.training import loop, metrics  # noqa: E402
from pipeline.training.metrics import PELVIS  # noqa: E402
from pipeline.training.samples import SampleSet, inputs, make_batch  # noqa: E402
from pipeline.training.stages import stage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def representation_floor(samples: SampleSet) -> float:
    """Mean 3D joint error (mm) of the target volumes themselves, read as a prediction."""
    batch = make_batch(samples, np.arange(len(samples)), targets=("volumes",))
    focal, principal = float(samples.arrays["focal"]), torch.as_tensor(samples.arrays["principal"])
    joints = metrics.volume_joints_camera(batch["volumes"], batch, focal, principal)
    return float(metrics.joint_error_mm(joints, batch["joints_camera"]).mean())


@torch.no_grad()
def breakdown(model, samples: SampleSet, oracle: tuple[str, ...]) -> dict[str, float]:
    """The 3D joints' errors (mm, pelvis-centred, mean over joints and crops): whole (MPJPE),
    after the best similarity (PA-MPJPE), in the image plane alone (x, y) and in depth alone."""
    model.eval()
    focal, principal = float(samples.arrays["focal"]), torch.as_tensor(samples.arrays["principal"])
    predicted, truth = [], []
    for start in range(0, len(samples), 16):
        batch = make_batch(samples, np.arange(start, min(start + 16, len(samples))), targets=("heatmaps",))
        outputs = model(**inputs(batch, "cpu", oracle=oracle), wanted=("pose3d",))
        predicted.append(metrics.volume_joints_camera(outputs["pose3d"][-1].float(), batch, focal, principal))
        truth.append(batch["joints_camera"])
    predicted, truth = (torch.cat(joints).double() for joints in (predicted, truth))
    centred = [joints - joints[:, PELVIS : PELVIS + 1] for joints in (predicted, truth)]
    difference = 1000 * (centred[0] - centred[1])
    return {
        "mpjpe_mm": float(difference.norm(dim=-1).mean()),
        "pa_mpjpe_mm": float(procrustes_error_mm(predicted.numpy(), truth.numpy()).mean()),
        "image_plane_mm": float(difference[..., :2].norm(dim=-1).mean()),
        "depth_mm": float(difference[..., 2].abs().mean()),
    }


def train_pose3d(
    loss: str,
    inits: list[Path],
    train: SampleSet,
    val: SampleSet,
    fit: SampleSet | None,
    iterations: int,
    eval_every: int,
    settings: dict,
    oracle: tuple[str, ...] = (),
) -> dict:
    """One 3D-pose stage: its history and seconds."""
    sizes = train.sizes
    config = loop.network_config(settings, sizes, pose3d_loss=loss)
    model = build_model(config, inits)
    train_settings = loop.stage_settings(
        settings,
        "pose3d",
        0,
        iterations=iterations,
        eval_every=eval_every,
        eval_samples=len(val),
        checkpoint_every=iterations,
        device="cpu",
        oracle=oracle,
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        history, _ = loop.train(
            model, stage("pose3d"), train, val, train_settings, Path(folder) / "checkpoint.pt", fit_set=fit
        )
    seconds = time.perf_counter() - start
    measured = {"test": breakdown(model, val, oracle)} | ({"train": breakdown(model, fit, oracle)} if fit else {})
    return {"history": history, "seconds": seconds, "breakdown": measured}


def figure(results: dict, out: Path) -> None:
    panels = [("memorise", "crops it trained on"), ("full", "test crops (dashed: training crops)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (kind, title) in zip(axes, panels):
        for name, runs in results["runs"].items():
            if kind not in runs:
                continue
            history = runs[kind]["history"]
            x = [row["iteration"] for row in history]
            (line,) = ax.plot(x, [row["joint_error_mm"] for row in history], marker="o", markersize=3, label=name)
            if kind == "full" and "train_joint_error_mm" in history[-1]:
                seen = [row["train_joint_error_mm"] for row in history]
                ax.plot(x, seen, linestyle="--", color=line.get_color(), linewidth=1)
        ax.axhline(results["floor_mm"], color="grey", linestyle=":", label="the volumes' own floor")
        ax.set_xlabel("iteration")
        ax.set_ylabel("3D joint error (mm)")
        ax.set_title(f"{kind}: {title}")
        ax.legend(fontsize=7)
    fig.suptitle("The 3D-pose network's losses")
    save_figure(fig, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--init", type=Path, action="append", required=True, help="the 2D networks' checkpoints")
    parser.add_argument("--losses", nargs="+", default=list(POSE3D_LOSSES), choices=POSE3D_LOSSES)
    parser.add_argument("--memorise", type=int, default=64, help="training crops to memorise (0: skip)")
    parser.add_argument("--memorise-iterations", type=int, default=800)
    parser.add_argument("--iterations", type=int, help="on the full split (default: config's; 0: skip)")
    parser.add_argument("--oracle", nargs="*", default=[], choices=POSE3D_LOSSES, help="losses also trained on true 2D")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pose3d_losses_cpu.json")
    parser.add_argument("--figure", type=Path, default=ROOT / "benchmarks/results/pose3d_losses_cpu.png")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())["bodynet"]
    iterations = config["iterations"]["pose3d"] if args.iterations is None else args.iterations
    train, test = SampleSet.load(args.train), SampleSet.load(args.val)
    val, fit = test.subset(config["eval_samples"], 0), train.subset(config["eval_samples"], 0)
    results = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    results |= {"floor_mm": representation_floor(val), "iterations": iterations, "threads": args.threads}
    results |= {"train_samples": len(train), "memorised_crops": args.memorise}
    for name in args.losses + [f"{loss} + true 2D" for loss in args.oracle]:
        loss, oracle = name.removesuffix(" + true 2D"), ("pose2d",) if name.endswith("true 2D") else ()
        runs = results["runs"].setdefault(name, {})
        if args.memorise and not oracle:
            crops = train.subset(args.memorise, 1)
            runs["memorise"] = train_pose3d(
                loss, args.init, crops, crops, None, args.memorise_iterations, 100, config, oracle
            )
            print(name, "memorised:", runs["memorise"]["history"][-1]["joint_error_mm"], "mm", flush=True)
        if iterations:
            runs["full"] = train_pose3d(loss, args.init, train, val, fit, iterations, 200, config, oracle)
            last = runs["full"]["history"][-1]
            print(name, "test:", last["joint_error_mm"], "train:", last["train_joint_error_mm"], flush=True)
        args.out.write_text(json.dumps(results, indent=1))  # each run kept as it ends
    figure(results, args.figure)


if __name__ == "__main__":
    main()
