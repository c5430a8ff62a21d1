"""Temporally coherent meshes from video: the clips, the frame and video models, and the tables
(Liu, Akhtar & Mian, "Temporally Coherent Full 3D Mesh Human Pose Recovery from Monocular
Video", 2019; `pipeline.video_mesh`).

    python -m pipeline.video_mesh render --split train --motions resources/motions/train.npz \\
        --model female=f.npz --model male=m.npz --performances 3 --azimuths 0 90 180 270 \\
        --frames 16 --size 250 --lens 180 --camera-distance 12 0.5 --speed 0.8 1.25 --jitter 0.1 \\
        --mirror 0.5 --shapes 300 --outfits 500 [--transitions 28 --transition-step 0.25] --seed 0 \\
        --manifest results/video_mesh/captures/train.csv
    python -m pipeline.video_mesh train --kind frame --train-manifest .../captures/train.csv \\
        [.../transitions/train.csv] --test-manifest .../captures/test.csv --body neutral.npz \\
        --input-size 64 --width 16 --features 256 --hidden 512 --feedback 3 --dropout 0.5 --lstm 256 --attention 64 \\
        --iterations 1500 --batch-size 16 --window 8 --learning-rate 1e-3 --lr-drop 0.75 \\
        --weight reprojection=1 --weight joints=1 --weight smpl=1 --eval-every 250 --seed 0 \\
        --out results/video_mesh/frame
    python -m pipeline.video_mesh train --kind video --init results/video_mesh/frame/model.pt ... \\
        --weight smoothness=1 --out results/video_mesh/video
    python -m pipeline.video_mesh evaluate --manifest .../captures/test.csv \\
        --frame results/video_mesh/frame/model.pt --video results/video_mesh/video/model.pt \\
        --smplify-model results/bodynet/pose3d/model.pt --joint-steps 40 --fit-steps 60 \\
        --max-vertices 800 --objective mean --matching every_step \\
        [--pose-prior results/fitting/pose_prior.npz] [--mirror-test] \\
        --model female=f.npz --model male=m.npz --body neutral.npz --seed 0 \\
        --clips results/video_mesh/test_clips.csv --out results/video_mesh_table.csv \\
        --figure results/video_mesh/clip.png
    python -m pipeline.video_mesh losses --manifest .../captures/test.csv \\
        --row l2d=results/video_mesh/video_l2d/model.pt ... --row all=results/video_mesh/video/model.pt \\
        --model ... --body neutral.npz --seed 0 --out results/video_mesh_losses.csv \\
        --orderings results/video_mesh/losses_orderings.csv
    python -m pipeline.video_mesh transitions --manifest .../captures/test.csv \\
        --manifest .../transitions/test.csv --row frame=results/video_mesh/frame/model.pt \\
        --row frame_transitions=... --row video=... --row video_transitions=... --model ... \\
        --body neutral.npz --seed 0 --out results/video_mesh_transitions.csv \\
        --orderings results/video_mesh/transitions_orderings.csv

`render` writes each view of each performance in SURREAL's layout beside its manifest (with
--transitions, poses interpolated between two of the split's motions instead of the motions,
Liu et al.'s §3.2); the other commands find the clips beside the manifests they are given. `train`
writes model.pt, history.csv (the test clips' MPJPE and 2D error at every evaluation) and
curves.png; `evaluate` writes one row per test clip and way (`pipeline.video_mesh.evaluate`),
the table (each row's measures with 95 % bootstrap intervals over the clips, and the paper's
orderings of the video model against the frame model, and of both against SMPLify, judged; the
SMPLify row is SMPLify++ fitted to every frame, cropped as BodyNet's test images are, with
--smplify-model's networks) and a figure of one test clip,
each row's error and joint speed frame by frame beside the truth's; `losses` measures the video
models trained with some of the losses (the paper's Table 4) on the same clips; `transitions`
measures the models trained with and without the interpolated transitions on both test sets,
the captured motions' and the transitions' (a claim the paper makes and does not test).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pipeline.cli import command_parser, parse_pair, run_command, settings_from
from pipeline.errors import InputError
from pipeline.fitting.options import add_fit_arguments
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.video_mesh")

KINDS = ("frame", "video")


def _body(path: Path):
    """The body model the networks' parameters pose, in float32 as they are."""
    from pipeline.body_model.model import BodyModel

    return BodyModel.from_file(path).float()


def _measuring(args: argparse.Namespace) -> tuple[dict, object]:
    """What `evaluate` and `losses` measure with: torch's threads set, the clips' genders' body
    models and the one the parameters pose."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return _body_models(args.model), _body(args.body)


def _add_measuring_arguments(p: argparse.ArgumentParser, test_sets: bool = False) -> None:
    """The test clips (`test_sets`: repeatable) and body models of the measuring commands, the
    bootstrap's seed, threads."""
    if test_sets:
        p.add_argument("--manifest", type=Path, action="append", required=True, help="a test set (repeatable)")
    else:
        p.add_argument("--manifest", type=Path, required=True, help="the test clips (found beside it)")
    p.add_argument("--model", action="append", required=True, metavar="GENDER=PATH", help="the clips' genders' models")
    p.add_argument("--body", type=Path, required=True, help="the body model the parameters pose")
    p.add_argument("--seed", type=int, required=True, help="the bootstrap's")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")


def _body_models(items: list[str]) -> dict:
    """{gender: body model} of the repeatable `--model GENDER=PATH`."""
    models = {}
    for item in items:
        gender, path = parse_pair(item, "--model", keys=("female", "male", "neutral"))
        models[gender] = _body(Path(path))
    return models


def render(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.synthesis.backgrounds import list_images, package_photos
    from pipeline.video_mesh.data import MeshClipSettings
    from pipeline.video_mesh.data import render as render_split

    models = _body_models(args.model)
    settings = settings_from(MeshClipSettings, args, cam_dist=tuple(args.camera_distance))
    backgrounds = list_images(args.backgrounds) if args.backgrounds else package_photos(args.split)
    transitions = {"transitions": args.transitions, "transition_step": args.transition_step}
    params = vars(settings) | transitions | {"split": args.split, "motions": str(args.motions)}
    with stage_run("video_mesh_render", params, args.rule, parse_wildcards(args.wildcard)) as run:
        began = time.perf_counter()
        root = args.manifest.parent
        manifest = render_split(args.split, settings, args.motions, models, backgrounds, root, **transitions)
        seconds = time.perf_counter() - began
        with atomic_output(args.manifest) as tmp:
            manifest.to_csv(tmp, index=False, float_format="%.6g")
        run.log_metrics({"clips": len(manifest), "frames": int(manifest["frames"].sum()), "seconds": seconds})
    log.info("%s: %d clips in %.0f s", args.split, len(manifest), seconds)


def _manifest(manifests: list[Path]):
    """The rows of every manifest, in order, each clip's `info` found beside its manifest (where
    `render` writes them)."""
    import pandas as pd

    from pipeline.actions.dataset import read_manifest

    read = []
    for path in manifests:
        manifest = read_manifest(path)
        read.append(manifest.assign(info=[str(path.parent / info) for info in manifest["info"]]))
    return pd.concat(read, ignore_index=True)


def _clips(manifests: list[Path], size: int):
    """The clips of every manifest, in order (`_manifest`)."""
    from pipeline.video_mesh.data import load_clips

    return load_clips(Path(), _manifest(manifests), size)


# crops read and fitted at once by the SMPLify row: the fits' cost per frame falls with the batch
# (one body model evaluation per step for all of them) and its results do not depend on it
SMPLIFY_BATCH = 64


def _smplify_row(args: argparse.Namespace, settings, body, data, run):
    """The SMPLify row's bodies {clip index: (T, ...)} of --smplify-clips of the test clips:
    SMPLify++ on --smplify-model's networks, every frame cropped and fitted
    (`pipeline.video_mesh.smplify`)."""
    from pipeline.datasets.surreal import SampleSizes
    from pipeline.evaluation.choices import NEEDS
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.models.checkpoint import build_model, load_checkpoint
    from pipeline.video_mesh.smplify import clip_bodies, crop_frames, smplify_bodies, smplify_clips

    checkpoint = load_checkpoint(args.smplify_model)
    missing = NEEDS["smplify"] - set(checkpoint["state"])
    if missing:
        raise InputError(f"{args.smplify_model}: holds no trained {', '.join(sorted(missing))}, which SMPLify++ needs")
    config = BodyNetConfig(**checkpoint["config"])
    if "flow" in config.pose3d_inputs:
        raise InputError(f"{args.smplify_model}: its 3D-pose network reads flow, which the test clips' crops lack")
    sizes = SampleSizes(config.input_size, config.heatmap_size, config.voxel_size)
    fitted = smplify_clips(len(data), args.smplify_clips or 0)
    infos = _manifest([args.manifest])["info"]
    samples = crop_frames([infos[i] for i in fitted], sizes)
    network = build_model(config, [args.smplify_model])
    began = time.perf_counter()
    bodies = smplify_bodies(network, samples, body, settings, SMPLIFY_BATCH, args.mirror_test)
    seconds = time.perf_counter() - began
    run.log_metrics({"smplify_seconds": seconds, "smplify_seconds_per_frame": seconds / len(samples)})
    log.info("SMPLify++: %d frames in %.0f s (%.3f s a frame)", len(samples), seconds, seconds / len(samples))
    per_clip = clip_bodies(bodies, len(fitted), data.frames)
    return {int(clip): per_clip[k] for k, clip in enumerate(fitted)}


def load_model(path: Path):
    """The model a `train` checkpoint holds; an InputError naming the file where it is not one."""
    import torch

    from pipeline.models.checkpoint import load_plain
    from pipeline.video_mesh.network import PARAMETERS, FrameModel, MeshNetworkConfig, VideoModel

    payload = load_plain(path)
    if not isinstance(payload, dict) or not {"state", "kind", "network"} <= set(payload):
        raise InputError(f"{path}: not a mesh-video checkpoint (no state, kind and network)")
    try:
        config = MeshNetworkConfig(**payload["network"])
        model = (VideoModel if payload["kind"] == "video" else FrameModel)(config, torch.zeros(PARAMETERS))
        model.load_state_dict(payload["state"])
    except (TypeError, RuntimeError) as error:
        raise InputError(f"{path}: not a mesh-video checkpoint this code can read ({error})") from error
    return model


def train(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.models.checkpoint import save_checkpoint
    from pipeline.training.figures import curves
    from pipeline.video_mesh import train as mesh
    from pipeline.video_mesh.network import FrameModel, MeshNetworkConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    weights = {name: float(value) for name, value in (parse_pair(w, "--weight", "LOSS") for w in args.weight)}
    settings = settings_from(mesh.MeshTrainSettings, args, weights=weights)
    config = settings_from(MeshNetworkConfig, args, iterations=args.feedback)
    body = _body(args.body)
    if config.input_size % 16:
        raise InputError(f"video_mesh.network.input_size: {config.input_size} is not a multiple of 16")
    train_set = _clips(args.train_manifest, config.input_size)
    test_set = _clips([args.test_manifest], config.input_size)
    if args.kind == "video":
        if args.init is None:
            raise InputError("--kind video starts from the frame model: give --init")
        frame = load_model(args.init)
        if not isinstance(frame, FrameModel) or frame.config != config:
            raise InputError(f"{args.init}: not a frame model of these sizes ({config})")
    else:
        frame = None
    model = mesh.initial_model(config, train_set, args.seed, frame)
    params = vars(settings) | vars(config) | {"kind": args.kind}
    with stage_run("video_mesh_train", params, args.rule, parse_wildcards(args.wildcard)) as run:
        began = time.perf_counter()
        history = mesh.train(args.out.name, model, body, train_set, test_set, settings, run=run)
        seconds = time.perf_counter() - began
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {
            "state": model.state_dict(),
            "kind": args.kind,
            "network": vars(model.config),
        }
        save_checkpoint(args.out / "model.pt", payload)
        with atomic_output(args.out / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")
        title = "video model (MVIPER)" if args.kind == "video" else "frame model (HMR*)"
        curves(history[1:], history[1:], title, args.out / "curves.png")
        run.log_metrics({"train_seconds": seconds})
        run.log_artifact(args.out / "curves.png")
    log.info("%s: %.0f s, test MPJPE %.1f mm", args.out, seconds, history[-1]["joint_error_mm"])


def evaluate(args: argparse.Namespace) -> None:
    from pipeline.fitting.options import fit_params, fit_settings
    from pipeline.video_mesh.evaluate import clip_predictions, evaluate_clips, row_predictions, table, true_meshes
    from pipeline.video_mesh.figures import clip_figure
    from pipeline.video_mesh.train import predict

    models, body = _measuring(args)
    frame, video = load_model(args.frame), load_model(args.video)
    if frame.config.input_size != video.config.input_size:
        raise InputError(f"{args.frame} and {args.video} read frames of different sizes")
    data = _clips([args.manifest], frame.config.input_size)
    params = {"frame": str(args.frame), "video": str(args.video), "clips": len(data)}
    settings = fit_settings(args, required=True) if args.smplify_model is not None else None
    if settings is not None:
        fit = {"fit": fit_params(settings, args), "mirror_test": args.mirror_test}
        params |= {"smplify_model": str(args.smplify_model), **fit}
    with stage_run("video_mesh_evaluate", params, args.rule, parse_wildcards(args.wildcard)) as run:
        smplify = _smplify_row(args, settings, body, data, run) if settings is not None else None
        thetas = (predict(frame, data), predict(video, data))
        predictions = row_predictions(*thetas, frame.regressor.mean, data, smplify)
        rows = evaluate_clips(predictions, body, models, data)
        result = table(rows, args.seed)
        _write_tables(run, {args.clips: rows, args.out: result})
        # the clip whose frame-model flicker is the median's, drawn
        frame_rows = rows[rows["row"] == "frame"].reset_index(drop=True)
        index = int((frame_rows["acceleration_error_mm"] - frame_rows["acceleration_error_mm"].median()).abs().idxmin())
        truth = true_meshes(models, data, index)["joints"]
        drawn = clip_predictions(predictions, index)
        clip_figure(body, drawn, truth, f"test clip {data.stems[index]}", args.figure)
        run.log_artifact(args.figure)
        for record in result.to_dict("records"):
            run.log_metrics({f"{record['row']}_{k}": v for k, v in record.items() if isinstance(v, float)})
    log.info("%s: %d clips\n%s", args.out, len(data), result.to_string(index=False))


def _row_networks(items: list[str], rows: tuple[str, ...]) -> dict:
    """{row: network} of the repeatable `--row ROW=PATH`, or an InputError where they read frames
    of different sizes."""
    networks = {}
    for item in items:
        name, path = parse_pair(item, "--row", "ROW", keys=rows)
        networks[name] = load_model(Path(path))
    sizes = {network.config.input_size for network in networks.values()}
    if len(sizes) != 1:
        raise InputError(f"the --row networks read frames of different sizes {sorted(sizes)}")
    return networks


def _measured_rows(networks: dict, body, models: dict, data):
    """Per-clip rows (`evaluate_clips`) of every network's prediction of the clips."""
    from pipeline.video_mesh.evaluate import evaluate_clips
    from pipeline.video_mesh.train import predict

    return evaluate_clips({name: predict(network, data) for name, network in networks.items()}, body, models, data)


def _write_tables(run, tables: dict[Path, object]) -> None:
    from pipeline.atomic import atomic_output

    for path, frame in tables.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
        run.log_artifact(path)


def losses(args: argparse.Namespace) -> None:
    from pipeline.video_mesh.evaluate import LOSS_ROWS, losses_table

    models, body = _measuring(args)
    networks = _row_networks(args.row, tuple(LOSS_ROWS))
    data = _clips([args.manifest], next(iter(networks.values())).config.input_size)
    params = {name: str(path) for name, path in (item.split("=", 1) for item in args.row)}
    with stage_run("video_mesh_losses", params, args.rule, parse_wildcards(args.wildcard)) as run:
        table, orderings = losses_table(_measured_rows(networks, body, models, data), args.seed)
        _write_tables(run, {args.out: table, args.orderings: orderings})
    log.info(
        "%s: %d clips\n%s\n%s", args.out, len(data), table.to_string(index=False), orderings.to_string(index=False)
    )


def transitions(args: argparse.Namespace) -> None:
    from pipeline.video_mesh.evaluate import TRANSITION_ROWS, transitions_table

    models, body = _measuring(args)
    networks = _row_networks(args.row, tuple(TRANSITION_ROWS))
    size = next(iter(networks.values())).config.input_size
    params = {name: str(path) for name, path in (item.split("=", 1) for item in args.row)}
    with stage_run("video_mesh_transitions", params, args.rule, parse_wildcards(args.wildcard)) as run:
        clips = {}
        for manifest in args.manifest:
            data = _clips([manifest], size)
            clips[manifest.parent.name] = _measured_rows(networks, body, models, data)
        table, orderings = transitions_table(clips, args.seed)
        _write_tables(run, {args.out: table, args.orderings: orderings})
    log.info("%s\n%s\n%s", args.out, table.to_string(index=False), orderings.to_string(index=False))


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.video_mesh", __doc__)

    p = commands.add_parser("render", help="a split's performances, each from four telephoto cameras")
    p.add_argument("--split", required=True)
    p.add_argument("--motions", type=Path, required=True, help="the split's motions (pipeline.synthesis motions)")
    p.add_argument("--model", action="append", required=True, metavar="GENDER=PATH", help="a body model (repeatable)")
    p.add_argument("--backgrounds", type=Path, help="folder of background photographs (default: the package's)")
    p.add_argument("--performances", type=int, required=True, help="per motion")
    p.add_argument("--azimuths", type=float, nargs="+", required=True, help="degrees from the world's east")
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--size", type=int, required=True, help="the frames' side, pixels")
    p.add_argument("--lens", type=float, required=True, help="focal length, mm on a 32 mm sensor")
    p.add_argument("--camera-distance", type=float, nargs=2, required=True, metavar=("MEAN", "STD"))
    p.add_argument("--speed", type=float, nargs=2, required=True, metavar=("LOW", "HIGH"))
    p.add_argument("--jitter", type=float, required=True, help="radians of each joint's drift")
    p.add_argument("--mirror", type=float, required=True, help="chance a performance is mirrored")
    p.add_argument("--shapes", type=int, required=True)
    p.add_argument("--outfits", type=int, required=True)
    p.add_argument("--transitions", type=int, default=0, help="render this many interpolated transitions instead")
    p.add_argument("--transition-step", type=float, help="transitions: the most the summed joint angle moves a frame")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--manifest", type=Path, required=True, help="CSV, the clips written beside it in SURREAL's layout")
    add_tracking_arguments(p)
    p.set_defaults(func=render)

    p = commands.add_parser("train", help="the frame model, or the video model from it")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--init", type=Path, help="the frame model the video model starts from (model.pt)")
    p.add_argument("--train-manifest", type=Path, nargs="+", required=True, help="the training clips' manifests")
    p.add_argument("--test-manifest", type=Path, required=True, help="clips measured during training")
    p.add_argument("--body", type=Path, required=True, help="the body model the parameters pose (HMR's: neutral)")
    p.add_argument("--input-size", type=int, required=True, help="the frames resized to this side")
    p.add_argument("--width", type=int, required=True, help="the encoder's first channels")
    p.add_argument("--features", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True, help="the regressor's hidden layers")
    p.add_argument("--feedback", type=int, required=True, help="iterative error feedback's iterations")
    p.add_argument("--dropout", type=float, required=True, help="after each of the regressor's hidden layers")
    p.add_argument("--lstm", type=int, required=True)
    p.add_argument("--attention", type=int, required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True, help="frames (frame model) or clips (video model)")
    p.add_argument("--window", type=int, required=True, help="the video model's frames a clip")
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--lr-drop", type=float, required=True, help="share of iterations after which the rate is a tenth")
    p.add_argument("--weight", action="append", default=[], metavar="LOSS=W", help="a loss's weight (repeatable)")
    p.add_argument("--eval-every", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, required=True, help="folder: model.pt, history.csv, curves.png")
    add_tracking_arguments(p)
    p.set_defaults(func=train)

    p = commands.add_parser("evaluate", help="the test clips' meshes: every row's measures and the table")
    _add_measuring_arguments(p)
    p.add_argument("--frame", type=Path, required=True, help="the frame model (model.pt)")
    p.add_argument("--video", type=Path, required=True, help="the video model (model.pt)")
    p.add_argument(
        "--smplify-model",
        type=Path,
        help="the SMPLify row: SMPLify++ on this BodyNet's trained 2D pose, segmentation and 3D pose "
        "(the 3D-pose stage's model.pt), with the --fit options; without it, no SMPLify row",
    )
    add_fit_arguments(p)
    p.add_argument("--mirror-test", action="store_true", help="the SMPLify row's networks read each crop mirrored too")
    p.add_argument(
        "--smplify-clips", type=int, help="the SMPLify row's clips, spread evenly over the test's (0 or none: all)"
    )
    p.add_argument("--clips", type=Path, required=True, help="CSV: one row per clip and way")
    p.add_argument("--out", type=Path, required=True, help="CSV: the table, one row per way")
    p.add_argument("--figure", type=Path, required=True, help="PNG: one test clip's error and joint speed per frame")
    add_tracking_arguments(p)
    p.set_defaults(func=evaluate)

    p = commands.add_parser("losses", help="the loss ablation: video models trained with some of the losses")
    _add_measuring_arguments(p)
    p.add_argument("--row", action="append", required=True, metavar="ROW=PATH", help="l2d, l2d_l3d, l2d_smpl, all")
    p.add_argument("--out", type=Path, required=True, help="CSV: the table, one row per loss combination")
    p.add_argument("--orderings", type=Path, required=True, help="CSV: the paper's orderings judged")
    add_tracking_arguments(p)
    p.set_defaults(func=losses)

    p = commands.add_parser("transitions", help="the models trained with and without interpolated transitions")
    _add_measuring_arguments(p, test_sets=True)
    rows = "frame, frame_transitions, video, video_transitions"
    p.add_argument("--row", action="append", required=True, metavar="ROW=PATH", help=rows)
    p.add_argument("--out", type=Path, required=True, help="CSV: the table, one row per model and test set")
    p.add_argument("--orderings", type=Path, required=True, help="CSV: with transitions against without, judged")
    add_tracking_arguments(p)
    p.set_defaults(func=transitions)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
