"""How should the 3D joints be read out of the joint volumes? Each joint at its volume's peak
(BodyNet's), or the mean of the training poses nearest to those peaks (evaluation.pose3d_readout:
exemplars), for a trained 3D-pose network and for the two references: the training set's
constant and the truth (the readout's own floor). Per readout: MPJPE and PA-MPJPE (mm) on the
test split, and the network's paired difference to the constant with its 95 % bootstrap
interval over test images. The readout's settings are chosen on the test split here; how much
that choice flatters it is measured by choosing them anew for each test clip on the other
clips alone (leave one clip out) and scoring that choice on the clip left out.

    python benchmarks/pose3d_readout.py --model results/bodynet/pose3d/model.pt \\
        --train results/bodynet/samples/train --val results/bodynet/samples/test \\
        [--neighbours 1 5 20 50] [--truncations 1.5 2 3 1e9] [--threads 2] \\
        [--out benchmarks/results/pose3d_readout_cpu.json]

The constant is the mean of config.yaml's `evaluation.reference_train_images` training
targets, drawn with its seed, as the evaluation's constant row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from pipeline.datasets.surreal import DEPTH_BINS
from pipeline.evaluation.exemplars import ExemplarSettings, PoseExemplars
from pipeline.evaluation.measures import joint_measures
from pipeline.evaluation.network import predict
from pipeline.evaluation.references import ReferencePredictor, training_means
from pipeline.evaluation.statistics import Figure, evaluate, interval, resample_counts
from pipeline.models.bodynet import BodyNetConfig
from pipeline.models.checkpoint import build_model, load_checkpoint
from pipeline.training import metrics
from pipeline.training.samples import SampleSet, make_batch

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def peaks_and_batches(predictor, samples: SampleSet, batch_size: int = 16) -> tuple[list, list]:
    """Each batch's volume peaks (b, J, 3) and the batch itself."""
    peaks, batches = [], []
    for start in range(0, len(samples), batch_size):
        batch = make_batch(samples, np.arange(start, min(start + batch_size, len(samples))), targets=("volumes",))
        peaks.append(metrics.volume_peaks(predict(predictor, batch, ("pose3d",))["pose3d"].float()))
        batches.append(batch)
    return peaks, batches


def errors(points: list, batches: list, samples: SampleSet) -> pd.DataFrame:
    """Per test image: MPJPE and PA-MPJPE (mm) of the volume points read as joints, measured
    as the evaluation measures them."""
    focal, principal = float(samples.arrays["focal"]), torch.as_tensor(samples.arrays["principal"])
    measured = [
        joint_measures(
            metrics.volume_to_camera(p.float(), b, samples.sizes.heatmap, DEPTH_BINS, focal, principal),
            b["joints_camera"],
        )
        for p, b in zip(points, batches)
    ]
    return pd.DataFrame(
        {
            "mpjpe": np.concatenate([m["joint_error_mm"] for m in measured]),
            "pa_mpjpe": np.concatenate([m["pa_joint_error_mm"] for m in measured]),
        }
    )


def left_one_clip_out(per_image: dict[str, pd.DataFrame], test: SampleSet) -> dict:
    """The network's errors (mm) when each test clip's readout is the exemplar setting with the
    lowest MPJPE on the other clips: the selection's own estimate, free of choosing on the
    images it is scored on; and how often each setting was chosen."""
    clips = np.asarray(test.clips)
    candidates = [label for label in per_image if label != "peak"]
    chosen, scored = {}, []
    for clip in np.unique(clips):
        others = clips != clip
        best = min(candidates, key=lambda label: per_image[label]["mpjpe"][others].mean())
        chosen[best] = chosen.get(best, 0) + 1
        scored.append(per_image[best][~others])
    scored = pd.concat(scored)
    return {"mpjpe": float(scored["mpjpe"].mean()), "pa_mpjpe": float(scored["pa_mpjpe"].mean()), "chosen": chosen}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a checkpoint holding a trained 3D-pose network")
    parser.add_argument("--train", required=True, type=Path, help="prepared training samples (the exemplars)")
    parser.add_argument("--val", required=True, type=Path, help="prepared test samples")
    parser.add_argument("--neighbours", type=int, nargs="+", default=[1, 5, 20, 50])
    parser.add_argument("--truncations", type=float, nargs="+", default=[1.5, 2.0, 3.0, 1e9])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pose3d_readout_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    train, test = SampleSet.load(args.train), SampleSet.load(args.val)
    checkpoint = load_checkpoint(args.model)
    network = build_model(BodyNetConfig.from_dict(checkpoint["config"]), [args.model]).eval()
    means = training_means(train, config["evaluation"]["reference_train_images"], config["seed"], progress=False)
    predictors = {
        "network": network,
        "constant": ReferencePredictor("constant", means),
        "oracle": ReferencePredictor("oracle"),
    }
    found = {name: peaks_and_batches(predictor, test) for name, predictor in predictors.items()}
    counts = resample_counts(len(test))
    rows, per_image = [], {}
    readouts = [("peak", None)] + [
        (f"exemplars k={k} τ={t:g}", ExemplarSettings(k, t)) for k in args.neighbours for t in args.truncations
    ]
    for label, settings in readouts:
        read = (lambda p: p) if settings is None else PoseExemplars.from_samples(train, settings)
        frames = {name: errors([read(p) for p in peaks], batches, test) for name, (peaks, batches) in found.items()}
        per_image[label] = frames["network"]
        row = {"readout": label}
        for name, frame in frames.items():
            row |= {f"{name}_{m}": float(frame[m].mean()) for m in ("mpjpe", "pa_mpjpe")}
        for m in ("mpjpe", "pa_mpjpe"):
            paired = pd.DataFrame({"d": frames["network"][m] - frames["constant"][m]})
            row[f"network_minus_constant_{m}"] = list(interval(evaluate(Figure("mean", ("d",)), paired, counts)))
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "left_one_clip_out": left_one_clip_out(per_image, test),
        "model": str(args.model),
        "train_samples": len(train),
        "test_samples": len(test),
        "threads": args.threads,
        "readouts": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
