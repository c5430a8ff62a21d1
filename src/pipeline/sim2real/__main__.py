"""Motion for sim-to-real 3D pose: the recomposed clips, the temporal model and its tables
(Doersch & Zisserman, "Sim2real transfer learning for 3D human pose estimation: motion to the
rescue", 2019; `pipeline.sim2real`).

    python -m pipeline.sim2real prepare --root results/surreal --split train \\
        --backgrounds resources/backgrounds/train --construction full --size 64 --box-scale 1.5 \\
        --pan 2 --shake 1 --smoothing 0.7 --chance 0.3 --segments 10 30 --compactness 10 \\
        --blank-chance 0.1 --blank-frames 15 --behind 0.2 --unhide-legs 0.5 --flip 0.05 --seed 0 \\
        --out results/sim2real/clips/full/train.npz
    python -m pipeline.sim2real train --train .../full/train.npz --test .../full/test.npz \\
        --inputs flow+keypoints --width 16 --depth 4 --features 128 --lstm 128 \\
        --iterations 1500 --batch-size 4 --window 16 --learning-rate 1e-3 --lr-drop 0.75 \\
        --weight aligned=1 --weight joints=1 --eval-every 500 --seed 0 \\
        --out results/sim2real/full/flow+keypoints
    python -m pipeline.sim2real evaluate --test .../full/test.npz --train .../full/train.npz \\
        --row flow+keypoints=results/sim2real/full/flow+keypoints/model.pt ... \\
        --row untracked=results/sim2real/untracked/flow+keypoints/model.pt --seed 0 \\
        --clips results/sim2real/test_clips.csv --out results/sim2real_table.csv \\
        --orderings results/sim2real/orderings.csv

`prepare` recomposes a split's rendered clips over a hand-held camera's video of the split's
photos (`pipeline.sim2real.dataset`); `train` writes model.pt, history.csv (PA-MPJPE and MPJPE
on the test clips and on as many training clips at every evaluation) and curves.png;
`evaluate` writes one line per row and test clip, the table (each row's measures with 95 %
bootstrap intervals, the paper's figures) and the orderings judged (the paper's, and every
learned row against the constant; `pipeline.sim2real.evaluate`).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pipeline.cli import command_parser, parse_pair, run_command, settings_from
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.sim2real")


def prepare(args: argparse.Namespace) -> None:
    from pipeline.clips import find_clips
    from pipeline.sim2real import dataset
    from pipeline.sim2real.occlude import OcclusionSettings
    from pipeline.synthesis.backgrounds import list_images
    from pipeline.synthesis.handheld import HandheldSettings

    try:
        camera = settings_from(HandheldSettings, args)
        occlusion = settings_from(OcclusionSettings, args)
        settings = settings_from(dataset.Sim2RealData, args, camera=camera, occlusion=occlusion)
    except ValueError as error:
        raise InputError(f"sim2real.dataset: {error}") from None
    clips, photos = find_clips(args.root, args.split), list_images(args.backgrounds)
    params = vars(settings) | {"camera": vars(camera), "occlusion": vars(occlusion), "split": args.split}
    with stage_run("sim2real_prepare", params, args.rule, parse_wildcards(args.wildcard)) as run:
        began = time.perf_counter()
        arrays = dataset.prepare(clips, photos, args.split, settings)
        dataset.write(args.out, arrays)
        seconds = time.perf_counter() - began
        shares = {name: float(arrays[name].mean()) for name in ("visible", "blank")}
        run.log_metrics({"clips": len(arrays["stems"]), "seconds": seconds} | shares)
    log.info("%s: %d clips in %.0f s", args.out, len(clips), seconds)


def load_model(path: Path):
    """The model, the inputs it reads and the window it was trained on, from a `train`
    checkpoint; an InputError naming the file where it is not one."""
    from pipeline.models.checkpoint import load_plain
    from pipeline.sim2real.network import TemporalConfig, TemporalPoseNet

    payload = load_plain(path)
    if not isinstance(payload, dict) or not {"state", "network", "inputs", "window"} <= set(payload):
        raise InputError(f"{path}: not a sim2real checkpoint (no state, network, inputs and window)")
    try:
        model = TemporalPoseNet(TemporalConfig(**payload["network"]))
        model.load_state_dict(payload["state"])
    except (TypeError, RuntimeError) as error:
        raise InputError(f"{path}: not a sim2real checkpoint this code can read ({error})") from error
    return model, tuple(payload["inputs"]), int(payload["window"])


def train(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.models.checkpoint import save_checkpoint
    from pipeline.seeding import torch_seed
    from pipeline.sim2real import dataset, inputs
    from pipeline.sim2real import train as temporal
    from pipeline.sim2real.network import TemporalConfig, TemporalPoseNet
    from pipeline.training.figures import curves

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        kinds = inputs.parse_kinds(args.inputs)
    except ValueError as error:
        raise InputError(f"--inputs: {error}") from None
    weights = {name: float(value) for name, value in (parse_pair(w, "--weight", "LOSS") for w in args.weight)}
    settings = settings_from(temporal.Sim2RealTrainSettings, args, weights=weights)
    config = settings_from(TemporalConfig, args, channels=inputs.channel_count(kinds))
    train_set, test_set = dataset.load(args.train), dataset.load(args.test)
    torch.manual_seed(torch_seed(args.seed, "sim2real init", args.inputs))
    model = TemporalPoseNet(config)
    temporal.start_at(model, temporal.mean_pose(train_set))
    params = vars(settings) | vars(config) | {"inputs": args.inputs, "train": str(args.train)}
    with stage_run("sim2real_train", params, args.rule, parse_wildcards(args.wildcard)) as run:
        began = time.perf_counter()
        history, steps = temporal.train(args.out.name, model, kinds, train_set, test_set, settings, run=run)
        seconds = time.perf_counter() - began
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"state": model.state_dict(), "network": vars(config), "inputs": kinds, "window": settings.window}
        save_checkpoint(args.out / "model.pt", payload)
        with atomic_output(args.out / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")
        curves(history, steps, f"temporal model, {args.inputs}", args.out / "curves.png")
        run.log_metrics({"train_seconds": seconds})
        run.log_artifact(args.out / "curves.png")
    log.info("%s: %.0f s, test PA-MPJPE %.1f mm", args.out, seconds, history[-1]["aligned_error_mm"])


def evaluate(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.sim2real import dataset, evaluate
    from pipeline.sim2real.train import mean_pose, predict

    if args.threads:
        torch.set_num_threads(args.threads)
    test_set, train_set = dataset.load(args.test), dataset.load(args.train)
    truth = test_set["joints"]
    training_poses = train_set["joints"].reshape(-1, *truth.shape[-2:])
    predictions = {evaluate.REFERENCE: np.broadcast_to(mean_pose(train_set).numpy(), truth.shape).copy()}
    rows = dict(parse_pair(item, "--row", "ROW") for item in args.row)
    # MLflow's names take no '+'
    params = {f"row.{row.replace('+', '_')}": path for row, path in rows.items()}
    params |= {"test": str(args.test), "train": str(args.train), "clips": len(truth)}
    with stage_run("sim2real_evaluate", params, args.rule, parse_wildcards(args.wildcard)) as run:
        frames = {}
        for row, path in rows.items():
            model, kinds, frames[row] = load_model(Path(path))
            predictions[row] = predict(model, test_set, kinds, frames[row]).numpy()
        predictions[evaluate.ORACLE] = evaluate.nearest_training_poses(truth, training_poses)
        clips = evaluate.clip_rows(predictions, truth, test_set["stems"])
        table, orderings = evaluate.tables(clips, args.seed, frames)
        for path, frame in ((args.clips, clips), (args.out, table), (args.orderings, orderings)):
            with atomic_output(path) as tmp:
                frame.to_csv(tmp, index=False, float_format="%.6g")
            run.log_artifact(path)
        for record in table.to_dict("records"):
            run.log_metrics({f"{record['row'].replace('+', '_')}_{m}": record[m] for m in evaluate.MEASURES})
    log.info(
        "%s: %d clips\n%s\n%s", args.out, len(truth), table.to_string(index=False), orderings.to_string(index=False)
    )


def build_parser() -> argparse.ArgumentParser:
    parser, commands = command_parser("python -m pipeline.sim2real", __doc__)

    p = commands.add_parser("prepare", help="recompose a split's clips over a hand-held camera's video")
    p.add_argument("--root", type=Path, required=True, help="the rendered clips' root (SURREAL's layout)")
    p.add_argument("--split", required=True)
    p.add_argument("--backgrounds", type=Path, required=True, help="the split's background photos")
    p.add_argument("--construction", required=True, help="full, untracked or static")
    p.add_argument("--size", type=int, required=True, help="the crop's side, pixels")
    p.add_argument("--box-scale", type=float, required=True, help="the crop's side over the person's extent")
    p.add_argument("--pan", type=float, required=True, help="the camera's mean speed, pixels a frame")
    p.add_argument("--shake", type=float, required=True, help="the jitter's step, pixels")
    p.add_argument("--smoothing", type=float, required=True, help="the jitter's autoregression, [0, 1)")
    occlusion = p.add_argument_group("occlusion", "occluders and hidden keypoints (pipeline.sim2real.occlude)")
    occlusion.add_argument("--chance", type=float, required=True, help="of a clip having an occluder")
    occlusion.add_argument("--segments", type=int, nargs=2, required=True, help="SLIC's segment count, drawn")
    occlusion.add_argument("--compactness", type=float, required=True, help="SLIC's space against colour")
    occlusion.add_argument("--blank-chance", type=float, required=True, help="of a clip having a total occlusion")
    occlusion.add_argument("--blank-frames", type=int, required=True, help="a total occlusion's most frames")
    occlusion.add_argument("--behind", type=float, required=True, help="metres behind the depth map hiding a joint")
    occlusion.add_argument("--unhide-legs", type=float, required=True, help="chance a clip shows its hidden legs")
    occlusion.add_argument("--flip", type=float, required=True, help="chance a keypoint's visibility turns over")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="the clips' file (.npz)")
    add_tracking_arguments(p)
    p.set_defaults(func=prepare)

    p = commands.add_parser("train", help="train the temporal model on recomposed clips")
    p.add_argument("--train", type=Path, required=True, help="the training clips (prepare's file)")
    p.add_argument("--test", type=Path, required=True, help="the clips measured at each evaluation")
    p.add_argument("--inputs", required=True, help="'+'-joined: rgb, flow, keypoints")
    for name in ("width", "depth", "features", "lstm", "iterations", "batch-size", "window", "eval-every", "seed"):
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--lr-drop", type=float, required=True, help="the share of iterations after which the rate drops")
    p.add_argument("--weight", action="append", default=[], metavar="LOSS=WEIGHT", help="aligned, joints")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, required=True, help="the model's folder")
    add_tracking_arguments(p)
    p.set_defaults(func=train)

    p = commands.add_parser("evaluate", help="the table of every row on the test clips")
    p.add_argument("--test", type=Path, required=True, help="the test clips (prepare's file)")
    p.add_argument("--train", type=Path, required=True, help="the training clips: the constant and oracle rows")
    p.add_argument("--row", action="append", default=[], metavar="ROW=MODEL", help="a trained model (repeatable)")
    p.add_argument("--seed", type=int, required=True, help="the bootstrap's")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--clips", type=Path, required=True, help="one line per row and test clip (.csv)")
    p.add_argument("--out", type=Path, required=True, help="the table (.csv)")
    p.add_argument("--orderings", type=Path, required=True, help="the orderings judged (.csv)")
    add_tracking_arguments(p)
    p.set_defaults(func=evaluate)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
