"""Real-time 3D pose: VNect's location-map network on a SelecSLS backbone (`--head
location_maps`), and the direct regression the thesis compares it with (`--head regression`),
trained on the pipeline's prepared crops and measured on the test split's.

    python -m pipeline.realtime train --head location_maps --train results/bodynet/samples/train \\
        --val results/bodynet/samples/test --depth 42 --width 0.25 --features 64 \\
        --iterations 1500 --batch-size 16 --learning-rate 1e-3 --lr-drop 0.75 \\
        --intermediate-weight 1.0 0.1 --scale 0.2 --eval-every 250 --eval-samples 96 --seed 0 \\
        --out results/realtime/vnect
    python -m pipeline.realtime evaluate --model results/realtime/vnect/model.pt \\
        --samples results/bodynet/samples/test [--crop-jitter 0.1 --seed 0] \\
        --out results/evaluation/realtime/vnect
    python -m pipeline.realtime video --model results/realtime/vnect/model.pt --root results/surreal \\
        --split test --samples results/bodynet/samples/test --seed 0 \\
        --clips results/realtime/vnect/video_clips.csv --out results/vnect_video_table.csv
    python -m pipeline.realtime track my_video.mp4 --model results/realtime/vnect/model.pt \\
        --out results/realtime/track/my_video [--box x0,y0,x1,y1] [--focal 1200] [--precision bf16]

`train` writes model.pt, history.csv (the test crops' and a fixed subset of training crops'
measures at every evaluation) and curves.png; `evaluate` writes images.csv (one row per test
image: MPJPE and PA-MPJPE in mm, 3DPCK at 150 mm and its AUC, the 2D peaks' error in map
pixels) and summary.json, which the evaluation tables read (`vnect_table`), with --crop-jitter
on crops whose box corners moved at random (the thesis' Table 5.2); `video` reads every frame of
the test clips and compares the raw joints, the 1 Euro filtered ones and the kinematic fits
(`pipeline.realtime.video`); `track` runs the tracker, network, filters and kinematic fit over
a video file frame by frame and writes each frame's 3D skeleton and the video with it drawn
over (`pipeline.realtime.track`).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pipeline.cli import (
    add_device_arguments,
    command_parser,
    focal_length,
    pixel_box,
    positive_int,
    run_command,
    settings_from,
)
from pipeline.errors import InputError
from pipeline.models.choices import SELECSLS_DEPTHS
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.realtime")


def _threads(count: int) -> None:
    import torch

    if count:
        torch.set_num_threads(count)


def train(args: argparse.Namespace) -> None:
    import pandas as pd

    from pipeline.atomic import atomic_output
    from pipeline.models.checkpoint import save_checkpoint
    from pipeline.realtime import train as vnect
    from pipeline.training.figures import curves
    from pipeline.training.samples import SampleSet

    _threads(args.threads)
    settings = settings_from(vnect.VNectSettings, args)
    train_set, test_set = SampleSet.load(args.train), SampleSet.load(args.val)
    model = vnect.build_network(settings, train_set.sizes.input)
    with stage_run("realtime_train", vars(settings), args.rule, parse_wildcards(args.wildcard)) as run:
        began = time.perf_counter()
        history, steps = vnect.train(args.out.name, model, train_set, test_set, settings, run=run)
        seconds = time.perf_counter() - began
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"state": model.state_dict(), "settings": vars(settings), "input_size": train_set.sizes.input}
        save_checkpoint(args.out / "model.pt", payload)
        with atomic_output(args.out / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")
        name = "VNect" if settings.head == "location_maps" else "Direct regression"
        curves(history, steps, f"{name} on SelecSLS-{settings.depth} (width {settings.width})", args.out / "curves.png")
        run.log_metrics({"train_seconds": seconds})
        run.log_artifact(args.out / "curves.png")
    log.info("%s: %.0f s, test MPJPE %.1f mm", args.out, seconds, history[-1]["joint_error_mm"])


def location_map_network(path: Path):
    """`load_network`, refusing a direct-regression network (no heatmaps to track with)."""
    model, settings, size = load_network(path)
    if settings.head != "location_maps":
        raise InputError(f"{path}: a {settings.head} network has no heatmaps to follow a person with")
    return model, settings, size


def load_network(path: Path):
    """The network a `train` checkpoint holds, its settings and the side of the crops it was
    trained on; an InputError naming the file where it is not one."""
    from pipeline.models.checkpoint import load_plain
    from pipeline.realtime.train import VNectSettings, build_network

    payload = load_plain(path)
    if not isinstance(payload, dict) or not {"state", "settings", "input_size"} <= set(payload):
        raise InputError(f"{path}: not a VNect checkpoint (no state, settings and input_size)")
    try:
        settings = VNectSettings(**payload["settings"])
        model = build_network(settings, int(payload["input_size"]))
        model.load_state_dict(payload["state"])
    except (TypeError, RuntimeError) as error:
        raise InputError(f"{path}: not a VNect checkpoint this code can read ({error})") from error
    return model, settings, int(payload["input_size"])


def evaluate(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from pipeline.evaluation.network import image_rows
    from pipeline.evaluation.records import write_evaluation
    from pipeline.realtime.train import joint_measures, predict
    from pipeline.seeding import seeded_generator
    from pipeline.training.samples import SampleSet

    _threads(args.threads)
    model, settings, _ = load_network(args.model)
    samples = SampleSet.load(args.samples)
    rows = np.arange(len(samples))
    jitter = None
    if args.crop_jitter:
        if args.seed is None:
            raise InputError("--crop-jitter draws the corners' moves: give --seed")
        jitter = seeded_generator(args.seed, "crop jitter").uniform(-args.crop_jitter, args.crop_jitter, (len(rows), 4))
    params = {"model": str(args.model), "crop_jitter": args.crop_jitter}
    with stage_run("realtime_evaluate", params, args.rule, parse_wildcards(args.wildcard)) as run:
        measures = joint_measures(predict(model, samples, rows, args.batch_size, jitter))
        images = pd.DataFrame(image_rows(samples, rows, measures))
        record = {
            "model": str(args.model),
            "method": "vnect" if settings.head == "location_maps" else "direct regression",
            "crop_jitter": args.crop_jitter,
            "evaluation_run_id": run.run_id,
        }
        summary = write_evaluation(args.out, images, record)
        run.log_metrics(summary)
    log.info("%s, %d images: %s", args.out, len(images), ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))


def video(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.realtime.video import evaluate_clips, table
    from pipeline.training.samples import SampleSet

    _threads(args.threads)
    model, _, _ = location_map_network(args.model)
    sizes = SampleSet.load(args.samples).sizes
    params = {"model": str(args.model), "split": args.split, "clip_count": args.clip_count}
    with stage_run("realtime_video", params, args.rule, parse_wildcards(args.wildcard)) as run:
        rows = evaluate_clips(model, args.root, args.split, sizes, args.clip_count)
        if rows.empty:
            raise InputError(f"{args.root}: no clip of split {args.split!r} has enough usable frames")
        result = table(rows, args.seed)
        for path, frame in ((args.clips, rows), (args.out, result)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(path) as tmp:
                frame.to_csv(tmp, index=False, float_format="%.6g")
            run.log_artifact(path)
        for record in result.to_dict("records"):
            run.log_metrics({f"{record['way']}_{k}": v for k, v in record.items() if isinstance(v, float)})
    log.info("%s: %d clips\n%s", args.out, rows["clip"].nunique(), result.to_string(index=False))


def track(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.realtime.track import track_video
    from pipeline.training.loop import autocast_dtype, pick_device

    _threads(args.threads)
    device = pick_device(args.device)
    model, _, size = location_map_network(args.model)
    dtype = autocast_dtype(device, args.precision)
    params = {"model": str(args.model), "video": str(args.video), "precision": args.precision, "frames": args.frames}
    with stage_run("realtime_track", params, args.rule, parse_wildcards(args.wildcard)) as run:
        with atomic_output(args.out) as tmp:
            summary = track_video(model.to(device), args.video, tmp, size, args.box, args.focal, dtype, args.frames)
        run.log_metrics(
            {k: v for k, v in summary.items() if k in ("frames", "network_ms", "fit_ms", "frames_per_second")}
        )
    log.info("%s: %d frames, %.1f frames/s (network %.1f ms, fit %.1f ms a frame)", args.out, summary["frames"],
             summary["frames_per_second"], summary["network_ms"], summary["fit_ms"])  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.realtime", __doc__)

    p = commands.add_parser("train", help="VNect's location-map network on prepared crops")
    p.add_argument("--train", type=Path, required=True, help="prepared samples (pipeline.training prepare)")
    p.add_argument("--val", type=Path, required=True, help="prepared samples measured during training")
    p.add_argument("--head", required=True, help="location_maps (VNect) or regression (direct)")
    p.add_argument("--depth", required=True, choices=SELECSLS_DEPTHS, help="SelecSLS's levels")
    p.add_argument("--width", type=float, required=True, help="the levels' widths, scaled (1: the thesis')")
    p.add_argument("--features", type=int, required=True, help="the head's channels")
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--lr-drop", type=float, required=True, help="share of iterations after which the rate is a tenth")
    p.add_argument(
        "--intermediate-weight", type=float, nargs=2, required=True, metavar=("FIRST", "LAST"),
        help="the parent-relative maps' loss weight, tapered linearly",
    )  # fmt: skip
    p.add_argument("--scale", type=float, required=True, help="crops zoomed by a factor in 1 ± scale")
    p.add_argument("--eval-every", type=int, required=True)
    p.add_argument("--eval-samples", type=int, required=True, help="test and training crops measured each time")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, required=True, help="folder: model.pt, history.csv, curves.png")
    add_tracking_arguments(p)
    p.set_defaults(func=train)

    p = commands.add_parser("evaluate", help="a trained network's 3D joints on prepared test crops")
    p.add_argument("--model", type=Path, required=True, help="a `train` checkpoint (model.pt)")
    p.add_argument("--samples", type=Path, required=True, help="prepared test samples")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument(
        "--crop-jitter", type=float, default=0.0, help="each crop corner moved by up to this share of its side"
    )
    p.add_argument("--seed", type=int, help="the jitter's (with --crop-jitter)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, required=True, help="folder: images.csv, summary.json")
    add_tracking_arguments(p)
    p.set_defaults(func=evaluate)

    p = commands.add_parser("video", help="every frame of the test clips: raw, 1 Euro filtered and fitted poses")
    p.add_argument("--model", type=Path, required=True, help="a `train` checkpoint (model.pt)")
    p.add_argument("--root", type=Path, required=True, help="the clips' root (SURREAL's layout)")
    p.add_argument("--split", required=True)
    p.add_argument("--samples", type=Path, required=True, help="prepared samples: the crops' sizes")
    p.add_argument("--clip-count", type=int, help="the first this many clips, in order (default: all)")
    p.add_argument("--seed", type=int, required=True, help="the bootstrap's")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--clips", type=Path, required=True, help="CSV: one row per clip and way")
    p.add_argument("--out", type=Path, required=True, help="CSV: the table, one row per way")
    add_tracking_arguments(p)
    p.set_defaults(func=video)

    p = commands.add_parser("track", help="a video file, frame by frame: 3D skeletons and an overlay video")
    p.add_argument("video", type=Path, help="a video file OpenCV reads (mp4, avi, mov, ...)")
    p.add_argument("--model", type=Path, required=True, help="a `train` checkpoint (model.pt)")
    p.add_argument("--box", type=pixel_box, help="x0,y0,x1,y1: the person in the first frame (default: found)")
    p.add_argument("--focal", type=focal_length, help="the camera's focal length in pixels (default: the longer side)")
    p.add_argument(
        "--precision", default="fp32", help="the network's: fp32, bf16 (autocast) or auto (bf16 where native)"
    )
    p.add_argument("--frames", type=positive_int, help="the first this many frames (default: all)")
    add_device_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="folder: poses.csv, frames.csv, overlay.mp4, summary.json")
    add_tracking_arguments(p)
    p.set_defaults(func=track)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
