"""Does XNect's Stage II lift a trained location-map network's joints? Stage I (the trained
VNect, frozen) reads every training and test crop; Stage II (`pipeline.realtime.lifting`) is
trained on the training crops' read-outs and measured on the test crops against the read-out
alone: MPJPE, PA-MPJPE, 3DPCK@150 mm and its AUC, with the paired difference's 95 % bootstrap
interval over test crops, and the same on a fixed subset of training crops (how much it fits).

    python benchmarks/xnect_lifting.py --model results/realtime/vnect/model.pt \\
        --train results/bodynet/samples/train --val results/bodynet/samples/test \\
        [--width 64] [--iterations 500] [--jitter 0.1] [--passes 3] [--threads 2] \\
        [--out benchmarks/results/xnect_lifting_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.evaluation.measures import joint_measures
from pipeline.evaluation.statistics import Figure, evaluate, interval, resample_counts
from pipeline.realtime.__main__ import load_network
from pipeline.realtime.lifting import LiftingSettings, fit_lifting, stage_one_features
from pipeline.realtime.train import LOCATION_UNIT, batch_arrays, jittered
from pipeline.tracking import git_state
from pipeline.training.samples import SampleSet

ROOT = Path(__file__).resolve().parents[1]
MEASURES = ("joint_error_mm", "pa_joint_error_mm", "pck3d", "auc3d")


@torch.no_grad()
def stage_one(
    model, samples: SampleSet, rows: np.ndarray, jitter: float = 0.0, seed: int = 0, batch_size: int = 64
) -> tuple[torch.Tensor, ...]:
    """Stage I's features (N, J·6), read-out joints (N, J, 3) and the true joints (N, J, 3),
    metres; with `jitter`, each crop's corners moved first by up to that share of its side."""
    rng = np.random.default_rng(seed)
    model.eval()
    features, readouts, truths = [], [], []
    for start in tqdm(range(0, len(rows), batch_size), desc="stage I", unit="batch"):
        batch = batch_arrays(samples, rows[start : start + batch_size])
        if jitter:
            offsets = rng.uniform(-jitter, jitter, size=(len(batch["rgb"]), 4))
            batch = jittered(batch, torch.from_numpy(offsets))
        outputs = model(batch["rgb"])
        found, readout = stage_one_features(outputs["heatmaps"].float(), outputs["locations"].float() * LOCATION_UNIT)
        features.append(found)
        readouts.append(readout)
        truths.append(batch["joints"])
    return torch.cat(features), torch.cat(readouts), torch.cat(truths)


def compare(readout: torch.Tensor, lifted: torch.Tensor, truth: torch.Tensor) -> dict:
    """Per measure: the read-out's, Stage II's and their paired difference's interval."""
    frames = {
        name: pd.DataFrame(joint_measures(joints, truth)) for name, joints in (("readout", readout), ("lifted", lifted))
    }
    counts = resample_counts(len(truth))
    found = {}
    for measure in MEASURES:
        paired = pd.DataFrame({"d": frames["lifted"][measure] - frames["readout"][measure]})
        found[measure] = {
            "readout": round(float(frames["readout"][measure].mean()), 2),
            "lifted": round(float(frames["lifted"][measure].mean()), 2),
            "difference": [round(v, 2) for v in interval(evaluate(Figure("mean", ("d",)), paired, counts))],
        }
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a trained VNect (pipeline.realtime train)")
    parser.add_argument("--train", required=True, type=Path, help="prepared training samples")
    parser.add_argument("--val", required=True, type=Path, help="prepared test samples")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.1,
        help="Stage II's training crops read with their corners moved by up to this share",
    )
    parser.add_argument("--passes", type=int, default=3, help="readings of the training crops, each jittered anew")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/xnect_lifting_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _, _ = load_network(args.model)
    train, test = SampleSet.load(args.train), SampleSet.load(args.val)
    subset = np.random.default_rng(args.seed).choice(len(train), size=min(len(test), len(train)), replace=False)
    every = np.arange(len(train))
    readings = [stage_one(model, train, every, args.jitter, args.seed + k) for k in range(args.passes)]
    features, readout, truth = (torch.cat(parts) for parts in zip(*readings))
    settings = LiftingSettings(args.width, args.iterations, args.batch_size, args.learning_rate, args.seed)
    began = time.perf_counter()
    lifting = fit_lifting(features, readout, truth, settings)
    seconds = time.perf_counter() - began
    test_features, test_readout, test_truth = stage_one(model, test, np.arange(len(test)))
    with torch.no_grad():
        result = {
            "test": compare(test_readout, lifting(test_features, test_readout), test_truth),
            "training_subset": compare(readout[subset], lifting(features[subset], readout[subset]), truth[subset]),
        }
    commit = git_state()[0][:7]
    document = {
        "commit": commit,
        "model": str(args.model),
        "settings": vars(settings) | {"jitter": args.jitter, "passes": args.passes},
        "training_crops": len(train),
        "test_crops": len(test),
        "training_seconds": round(seconds, 1),
        **result,
    }
    print(json.dumps(document, indent=1, ensure_ascii=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
