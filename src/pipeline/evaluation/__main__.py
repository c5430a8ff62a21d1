"""Evaluation stage: a trained BodyNet measured image by image on prepared test samples.

    python -m pipeline.evaluation network --model results/bodynet/voxels_fvsv/model.pt \\
        --samples results/bodynet/samples/test --body-model female=F.pkl --body-model male=M.pkl \\
        --out results/evaluation/voxels_fvsv.csv
"""

from __future__ import annotations

import argparse
import copy
import logging
from dataclasses import asdict
from pathlib import Path

from pipeline.cli import add_device_arguments, run_command
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.evaluation")


def network(args: argparse.Namespace) -> None:
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.body_model.model import BodyModel
    from pipeline.evaluation.network import evaluate_network
    from pipeline.fitting.voxel_fit import FitSettings
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.training.loop import build_model, load_checkpoint, pick_device
    from pipeline.training.samples import SampleSet

    models = {}
    for item in args.body_model:
        gender, sep, path = item.partition("=")
        if not sep or gender not in ("female", "male"):
            raise InputError(f"--body-model expects female=PATH or male=PATH, got {item!r}")
        models[gender] = copy.deepcopy(BodyModel.from_file(path)).float()
    samples = SampleSet.load(args.samples)
    checkpoint = load_checkpoint(args.model)
    config = BodyNetConfig(**checkpoint["config"])
    missing = {"pose2d", "pose3d", "voxels"} - set(checkpoint["state"])
    if missing:
        raise InputError(f"{args.model}: holds no trained {', '.join(sorted(missing))}")
    sizes = (samples.sizes.input, samples.sizes.heatmap, samples.sizes.voxels)
    if sizes != (config.input_size, config.heatmap_size, config.voxel_size):
        raise InputError(f"{args.samples}: samples of sizes {sizes} do not fit {args.model}")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = FitSettings(joint_steps=args.joint_steps, steps=args.fit_steps, max_vertices=args.max_vertices)
    params = {"model": str(args.model), "samples": str(args.samples), "images": len(samples), "fit": asdict(settings)}
    with stage_run("evaluation", params, args.rule, parse_wildcards(args.wildcard)) as run:
        net = build_model(config, [args.model]).to(pick_device(args.device))
        table = evaluate_network(net, samples, models, settings, batch_size=args.batch_size)
        with atomic_output(args.out) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        means = table.drop(columns=["image", "clip", "frame", "gender"]).mean()
        run.log_metrics({name: float(value) for name, value in means.items()})
        run.log_artifact(args.out)
        log.info("%d images: %s", len(table), ", ".join(f"{k}={v:.4g}" for k, v in means.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("network", help="per-image measures of a trained BodyNet, with the fitted body model")
    p.add_argument("--model", required=True, type=Path, help="checkpoint of a voxel stage (model.pt)")
    p.add_argument("--samples", required=True, type=Path, help="prepared test samples")
    p.add_argument("--body-model", action="append", default=[], metavar="GENDER=PATH", required=True,
                   help="the SMPL-format model of each gender the samples hold")
    p.add_argument("--out", required=True, type=Path, help="CSV, one row per image")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--joint-steps", type=int, default=40, help="fit iterations on the joints alone")
    p.add_argument("--fit-steps", type=int, default=60, help="fit iterations on the whole objective")
    p.add_argument("--max-vertices", type=int, default=800, help="vertices used for correspondences")
    add_device_arguments(p)
    add_tracking_arguments(p)
    p.set_defaults(func=network)
    run_command(parser, argv)


if __name__ == "__main__":
    main()
