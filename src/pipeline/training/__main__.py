"""Training stage: prepare BodyNet samples from clips, train one stage of the schedule.

    python -m pipeline.training prepare --root results/surreal --split train --out samples/train
    python -m pipeline.training train --stage pose3d --train samples/train --val samples/test \\
        --init pose2d/model.pt --init segm/model.pt --out pose3d/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from pipeline.cli import add_device_arguments, command_parser, parse_pair, run_command, settings_from
from pipeline.datasets.surreal import FRAME_CHOICES
from pipeline.errors import InputError
from pipeline.models.choices import BACKBONES_2D, BODYNET_INPUTS, POSE3D_LOSSES, SELECSLS_DEPTHS
from pipeline.tracking import add_tracking_arguments, experiment_name, parse_wildcards, stage_run, system_metrics
from pipeline.training.schedule import STAGES

log = logging.getLogger("pipeline.training")


def prepare(args: argparse.Namespace) -> None:
    from pipeline.body_model.model import BodyModel
    from pipeline.datasets.surreal import SampleSizes, VoxelSource
    from pipeline.flow.storage import FlowSource
    from pipeline.training.samples import prepare as prepare_samples

    models = {}
    for item in args.model:
        gender, path = parse_pair(item, "--model", keys=("female", "male"))
        models[gender] = BodyModel.from_file(path)
    sizes = SampleSizes(args.input_size, args.heatmap_size, args.voxel_size)
    params = {
        "root": str(args.root),
        "split": args.split,
        "frames": args.frames,
        "flow": args.flow,
        "flow_subtract_mean": args.flow_subtract_mean,
        **asdict(sizes),
    }
    with stage_run("training_samples", params, args.rule, parse_wildcards(args.wildcard)) as run:
        count = prepare_samples(
            args.root,
            args.split,
            sizes,
            args.frames,
            VoxelSource(models, args.voxel_size),
            args.out,
            flow=FlowSource(args.flow, args.flow_subtract_mean) if args.flow else None,
        )
        run.log_metrics({"samples": count})
        log.info("%d samples of %s", count, args.split)


def _signature(args: argparse.Namespace) -> str:
    """What a checkpoint must share with this run to be resumed: the settings (all but the
    length and the thread count) and the very input files (size and modification time)."""
    settings = {
        k: str(v)
        for k, v in sorted(vars(args).items())
        if k not in ("iterations", "threads", "func", "rule", "wildcard")
    }
    for path in [args.train, args.val, *args.init]:
        if not Path(path).exists():
            raise InputError(f"{path}: no such file")
        stat = Path(path).stat()
        settings[f"file {path}"] = f"{stat.st_size} {stat.st_mtime_ns}"
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]


def train(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.models.checkpoint import build_model, save_model
    from pipeline.training import figures
    from pipeline.training.loop import TrainSettings, check_improved, held_subnetworks
    from pipeline.training.loop import train as run_training
    from pipeline.training.samples import SampleSet
    from pipeline.training.stages import stage as make_stage

    stage = make_stage(args.stage)
    if "pose3d" in stage.trains and args.pose3d_loss is None:
        raise InputError(f"--pose3d-loss: stage {stage.name} trains the 3D-pose network; name its loss")
    train_set, val_set = SampleSet.load(args.train).of_clips(args.clip_share, args.seed), SampleSet.load(args.val)
    for path, samples in ((args.train, train_set), (args.val, val_set)):
        if "part_voxels" in stage.targets and "part_voxels" not in samples.arrays:
            raise InputError(f"{path}: prepared samples lack part voxels (stage {stage.name}); prepare them again")
    sizes = train_set.sizes
    config = BodyNetConfig(
        input_size=sizes.input,
        heatmap_size=sizes.heatmap,
        voxel_size=sizes.voxels,
        hourglass={"stacks": args.stacks, "features": args.features, "modules": args.modules, "depth": args.depth},
        pose3d_inputs=tuple(args.pose3d_inputs),
        voxel_inputs=tuple(args.voxel_inputs),
        pose3d_loss=args.pose3d_loss,
        backbone_2d=args.backbone_2d,
        selecsls={"depth": args.selecsls_depth, "width": args.selecsls_width},
    )
    settings = settings_from(TrainSettings, args, checkpoint_every=args.eval_every)
    torch.set_num_threads(args.threads) if args.threads else None
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    signature = _signature(args)
    params = {
        "stage": asdict(stage) | {"wanted": stage.wanted},
        "model": config.as_dict(),
        "train": asdict(settings),
        "init": [str(p) for p in args.init],
        "train_samples": len(train_set),
        "train_clips": len(set(train_set.clips.tolist())),
        "clip_share": args.clip_share,
        "val_samples": len(val_set),
    }
    with stage_run("training", params, args.rule, parse_wildcards(args.wildcard)) as run, system_metrics(run):
        model = build_model(config, args.init, args.seed)
        untrained = set(model.needed(set(stage.wanted))) - set(stage.trains) - model.trained
        if untrained:
            raise InputError(
                f"stage {stage.name} feeds on {', '.join(sorted(untrained))}, which no --init checkpoint holds"
            )
        validation = val_set.subset(settings.eval_samples, args.seed)
        seen = train_set.subset(settings.eval_samples, args.seed)  # measured as the validation is
        history, steps = run_training(
            model, stage, train_set, validation, settings, checkpoint, run, signature=signature, fit_set=seen
        )
        final = out / "model.pt"
        save_model(
            final,
            model,
            stage.name,
            held_subnetworks(model, stage),
            settings.iterations,
            {"history": history, "run_id": run.run_id, "train": asdict(settings)},
        )
        with atomic_output(out / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")
        figures.curves(history, steps, f"{args.stage} ({', '.join(stage.trains)})", out / "curves.png")
        shown = ("segm", "depth") if stage.name == "depth" else stage.wanted  # SURREAL's Figure 3-4: both networks
        figures.predictions(model, validation, shown, out / "predictions.png")
        improvement = check_improved(history)
        run.log_metrics({f"improvement_{k}": v for k, v in improvement.items()})
        if args.register:  # the network as an MLflow model, not model.pt a second time
            register(run, model, validation, stage, f"{experiment_name()}-{stage.name}")
        for name in ("history.csv", "curves.png", "predictions.png", *([] if args.register else ["model.pt"])):
            run.log_artifact(out / name)
        log.info("validation change from the untrained start: %s", improvement)
    checkpoint.unlink()  # model.pt holds the result; the checkpoint only served to resume


def register(run, model, samples, stage, name: str) -> None:
    """Log the trained network as an MLflow model of one validation crop → the stage's
    first output (its last stack), and register it as a new version of `name`."""
    import copy

    import numpy as np
    import torch

    from pipeline.training.samples import make_batch

    network = copy.deepcopy(model).cpu().eval()
    example = make_batch(samples, np.arange(1))["rgb"]  # (1, 3, S, S), as the network was fed
    with torch.no_grad():
        outputs = network(example, wanted=stage.wanted)
    version = run.log_model(network, example.contiguous().numpy(), outputs[stage.wanted[0]][-1].numpy(), name)
    log.info("registered %s version %s", name, version)


def curves(args: argparse.Namespace) -> None:
    import json

    import pandas as pd

    from pipeline.training.figures import MEASURES, learning_curves

    histories, paths = {}, {}
    for item in args.history:
        stage, path = parse_pair(item, "--history", "STAGE")
        paths[stage] = path
        try:
            histories[stage] = pd.read_csv(path).to_dict("records")
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable training history ({error})") from error
    references = {}
    for item in args.reference:
        name, path = parse_pair(item, "--reference", "NAME")
        try:
            measures = json.loads(Path(path).read_text())["measures"]
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"{path}: not an evaluation summary ({error})") from error
        references[name] = {k: v for k, v in measures.items() if k in MEASURES}
    params = {"histories": paths, "batch_size": args.batch_size}
    with stage_run("learning_curves", params, args.rule, parse_wildcards(args.wildcard)) as run:
        learning_curves(histories, args.batch_size, args.out, references)
        run.log_artifact(args.out)


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.training", __doc__)

    p = commands.add_parser("prepare", help="BodyNet samples of a split's clips, in one file")
    p.add_argument("--root", required=True, type=Path, help="root of the SURREAL layout")
    p.add_argument("--split", required=True)
    p.add_argument(
        "--frames",
        choices=FRAME_CHOICES,
        required=True,
        help="every frame; each clip's middle one; or the middle frame of each sequence's middle clip",
    )
    p.add_argument("--input-size", type=int, required=True)
    p.add_argument("--heatmap-size", type=int, required=True)
    p.add_argument("--voxel-size", type=int, required=True)
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="GENDER=PATH",
        help="body models to voxelise clips that have no voxels (SURREAL's own)",
    )
    p.add_argument(
        "--flow",
        help="add each sample's forward flow: 'rendered' (the clips' own) or a folder "
        "of flow stored by `python -m pipeline.flow extract`",
    )
    p.add_argument("--flow-subtract-mean", action="store_true", help="remove each frame's mean flow")
    p.add_argument("--out", required=True, type=Path, help="folder for the samples' arrays")
    add_tracking_arguments(p)
    p.set_defaults(func=prepare)

    p = commands.add_parser("train", help="train one stage of BodyNet's schedule")
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument("--train", required=True, type=Path, help="prepared training samples")
    p.add_argument("--val", required=True, type=Path, help="prepared validation samples")
    p.add_argument(
        "--clip-share",
        type=float,
        default=1.0,
        help="train on every frame of this share of the training clips, drawn with the seed (SURREAL's data study)",
    )
    p.add_argument(
        "--init",
        action="append",
        default=[],
        type=Path,
        help="checkpoint of an earlier stage to start from (repeatable; later wins)",
    )
    p.add_argument("--out", required=True, type=Path, help="folder for model.pt, history, figures")
    p.add_argument(
        "--register",
        action="store_true",
        help="log the trained network as an MLflow model and register it as a new version of "
        "<experiment>-<stage> in the tracking store's model registry",
    )
    p.add_argument("--stacks", type=int, required=True)
    p.add_argument("--features", type=int, required=True)
    p.add_argument("--modules", type=int, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument(
        "--backbone-2d",
        choices=BACKBONES_2D,
        required=True,
        help="the 2D networks' (pose2d, segm, depth): BodyNet's stacked hourglass (--stacks, --features, --modules, "
        "--depth), or SelecSLS (--selecsls-depth, --selecsls-width; its decoder has --features channels)",
    )
    p.add_argument("--selecsls-depth", choices=SELECSLS_DEPTHS, required=True, help="SelecSLS's levels")
    p.add_argument("--selecsls-width", type=float, required=True, help="SelecSLS's widths scaled (1: the thesis')")
    p.add_argument("--pose3d-inputs", nargs="+", default=list(BODYNET_INPUTS["pose3d"]), help="BodyNet's by default")
    p.add_argument("--voxel-inputs", nargs="+", default=list(BODYNET_INPUTS["voxels"]), help="BodyNet's by default")
    p.add_argument(
        "--pose3d-loss",
        choices=POSE3D_LOSSES,
        help="the 3D-pose network's loss (mse: BodyNet's); needed by the stages that train the 3D-pose network "
        "or start from one (they read its volumes as it was trained to give them)",
    )
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument(
        "--lr-drop",
        type=float,
        required=True,
        help="divide the learning rate by 10 after this fraction of the iterations (1: never)",
    )
    p.add_argument(
        "--optimiser",
        choices=["rmsprop", "adam", "sgd"],
        default="rmsprop",
        help="RMSprop is BodyNet's; SGD with momentum 0.9",
    )
    p.add_argument("--weight-decay", type=float, default=0.0, help="strength λ of the weight decay")
    p.add_argument(
        "--decay",
        choices=["l2", "decoupled"],
        default="l2",
        help="l2: λθ added to the gradient; decoupled: θ ← θ − s_t·λ·θ after each step, s_t the learning-rate "
        "schedule (1, then 0.1)",
    )
    p.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        required=True,
        help="bf16: the forward pass autocast to bfloat16; auto: where the hardware computes it natively",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        required=True,
        help="NHWC activations (oneDNN's and tensor cores' fast layout)",
    )
    p.add_argument(
        "--rotation",
        type=float,
        required=True,
        help="degrees: the 2D tasks' crops turned by up to this much (BodyNet's 2D networks: 30)",
    )
    p.add_argument("--scale", type=float, required=True, help="the 2D tasks' crops zoomed by a factor in 1 ± this")
    p.add_argument("--eval-every", type=int, required=True)
    p.add_argument("--eval-samples", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    add_device_arguments(p)
    add_tracking_arguments(p)
    p.set_defaults(func=train)

    p = commands.add_parser("curves", help="the stages' validation measures on one page, beside the references")
    p.add_argument(
        "--history", action="append", default=[], metavar="STAGE=PATH", help="a stage's history.csv (repeatable)"
    )
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a reference's evaluation summary.json, drawn as a line (repeatable)",
    )
    p.add_argument("--batch-size", type=int, required=True, help="the stages' batch: crops per iteration")
    p.add_argument("--out", required=True, type=Path, help="the figure (PNG)")
    add_tracking_arguments(p)
    p.set_defaults(func=curves)

    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
