"""Does reading each test crop mirrored as well help the trained networks? Each checkpoint is
measured on its intermediate tasks (the evaluation's `tasks` method, with the config's 3D
joint readout) twice: on the crops alone, and with each crop's mirror image read too and the
outputs averaged (evaluation.mirror_test; Newell et al., "Stacked Hourglass Networks for
Human Pose Estimation", 2016, read their test images so). Per measure: both figures, and the
paired difference (mirrored − plain) with its 95 % bootstrap interval over test images.

    python benchmarks/mirror_test.py --model results/bodynet/pose3d/model.pt [more models] \\
        --train results/bodynet/samples/train --val results/bodynet/samples/test \\
        [--threads 2] [--out benchmarks/results/mirror_test_cpu.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch
import yaml

from pipeline.evaluation.exemplars import ExemplarSettings, PoseExemplars
from pipeline.evaluation.measures import figures
from pipeline.evaluation.network import evaluate_network
from pipeline.evaluation.statistics import evaluate, interval, resample_counts
from pipeline.models.bodynet import BodyNetConfig
from pipeline.models.checkpoint import build_model, load_checkpoint
from pipeline.tracking import git_state
from pipeline.training.samples import SampleSet

ROOT = Path(__file__).resolve().parents[1]
MEASURES = ("pckh", "part_iou", "joint_error_mm", "pa_joint_error_mm", "depth_rmse_mm")


def compare(plain: pd.DataFrame, mirrored: pd.DataFrame, counts) -> dict:
    """{measure: plain, mirrored, and the paired difference's interval} for the measures both hold."""
    found = {}
    for name, figure in figures().items():
        if name not in MEASURES or not set(figure.columns) <= set(plain.columns):
            continue
        difference = evaluate(figure, mirrored, counts) - evaluate(figure, plain, counts)
        found[name] = {
            "plain": float(evaluate(figure, plain)),
            "mirrored": float(evaluate(figure, mirrored)),
            "difference": list(interval(difference)),
        }
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, nargs="+", help="checkpoints of trained stages")
    parser.add_argument("--train", required=True, type=Path, help="prepared training samples (the exemplars)")
    parser.add_argument("--val", required=True, type=Path, help="prepared test samples")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mirror_test_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    evaluation = config["evaluation"]
    readout = evaluation["pose3d_readout"]
    exemplars = None
    if readout["method"] == "exemplars":
        settings = ExemplarSettings(readout["neighbours"], readout["truncation"])
        exemplars = PoseExemplars.from_samples(SampleSet.load(args.train), settings)
    test = SampleSet.load(args.val)
    counts = resample_counts(len(test))
    stages = {}
    for path in args.model:
        checkpoint = load_checkpoint(path)
        network = build_model(BodyNetConfig.from_dict(checkpoint["config"]), [path])
        frames = {
            mirrored: evaluate_network(
                network,
                test,
                {},
                "tasks",
                batch_size=evaluation["batch_size"],
                progress=False,
                exemplars=exemplars,
                mirrored=mirrored,
            ).images
            for mirrored in (False, True)
        }
        stages[checkpoint.get("stage", str(path))] = compare(frames[False], frames[True], counts)
        print(json.dumps({str(path): stages[checkpoint.get("stage", str(path))]}), flush=True)
    commit = git_state()[0][:7]
    result = {
        "commit": commit,
        "test_samples": len(test),
        "readout": readout,
        "threads": args.threads,
        "stages": stages,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
