"""Action-recognition stage: clips of named motions from synchronised cameras, LTC networks
on RGB or flow, their tables.

    python -m pipeline.actions render --split train --model female=f.pkl --model male=m.pkl \\
        --actions walk run jump punch kick dance_a cartwheel backflip --performances 6 \\
        --azimuths 0 45 90 --frames 40 --width 96 --height 72 --focal 180 --camera-distance 7 0.5 \\
        --speed 0.8 1.25 --jitter 0.1 --mirror 0.5 --shapes 300 --outfits 500 --seed 0 \\
        --root results/actions/clips --manifest results/actions/clips/train.csv
    python -m pipeline.flow extract --root results/actions/clips --split train --method dis_medium ...
    python -m pipeline.actions train --root results/actions/clips --train-manifest .../train.csv \\
        --test-manifest .../test.csv --input dis_medium --train-flow results/actions/flow/train/dis_medium \\
        --test-flow results/actions/flow/test/dis_medium --frame-size 64 48 --flow-scale 2 --extent 32 \\
        --crop 48 --width 0.125 --dropout 0.5 --iterations 400 --batch-size 16 --optimiser sgd \\
        --learning-rate 0.01 --momentum 0.9 --weight-decay 5e-4 --lr-drop 0.75 --test-stride 4 \\
        --eval-every 100 --seed 0 --out results/actions/ltc/dis_medium_long
    python -m pipeline.actions fuse --clips .../rgb_long/clips.csv --clips .../dis_medium_long/clips.csv \\
        --out results/actions/ltc/fusion_long
    python -m pipeline.actions table --row rgb_short=results/actions/ltc/rgb_short ... \\
        --extent short=8 --extent long=32 --train-manifest .../train.csv \\
        --score dis_medium=results/actions/flow/test/dis_medium.json ... --quality-extent long \\
        --out results/ltc_table.csv --quality results/ltc_flow_quality.csv --figure results/ltc_flow_quality.png
    python -m pipeline.actions views-table --row a_v1=results/actions/views/a_v1 ... \\
        --train-manifest .../train.csv --out results/ltc_view_table.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from pipeline.cli import command_parser, parse_pair, run_command, settings_from
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.actions")


def render(args: argparse.Namespace) -> None:
    from pipeline.actions.dataset import ActionSettings, render_split
    from pipeline.atomic import atomic_output
    from pipeline.body_model.model import BodyModel
    from pipeline.synthesis.backgrounds import list_images, package_photos

    models = {}
    for item in args.model:
        gender, path = parse_pair(item, "--model", keys=("female", "male", "neutral"))
        models[gender] = BodyModel.from_file(path)
    settings = settings_from(ActionSettings, args, cam_dist=tuple(args.camera_distance))
    backgrounds = list_images(args.backgrounds) if args.backgrounds else package_photos(args.split)
    params = {k: v for k, v in vars(settings).items() if k != "light"} | {"split": args.split}
    with stage_run("actions_render", params, args.rule, parse_wildcards(args.wildcard)) as run:
        began = time.perf_counter()
        manifest = render_split(args.split, settings, models, backgrounds, args.root)
        seconds = time.perf_counter() - began
        with atomic_output(args.manifest) as tmp:
            manifest.to_csv(tmp, index=False, float_format="%.6g")
        run.log_metrics({"clips": len(manifest), "frames": int(manifest["frames"].sum()), "seconds": seconds})
    log.info(
        "%s: %d clips of %d performances in %.0f s",
        args.split,
        len(manifest),
        len(manifest) // len(args.azimuths),
        seconds,
    )


def _settings(args: argparse.Namespace, views: list[int]):
    """The network's training settings; without --losses, the action loss on every one of
    the training clips' `views`."""
    from pipeline.actions.train import LTCSettings, view_training

    losses = args.losses or "a_" + "_".join(f"v{view}" for view in sorted(views))

    return settings_from(LTCSettings, args, size=args.crop, **view_training(losses))


def write_evaluation(out: Path, clips, extra: dict) -> dict:
    """An evaluation folder: clips.csv (every test clip's softmax), videos.csv, summary.json
    (last, so that its presence says the folder is whole)."""
    from pipeline.actions.tables import FIGURES
    from pipeline.actions.train import video_results
    from pipeline.atomic import atomic_output, write_json
    from pipeline.evaluation import statistics

    out.mkdir(parents=True, exist_ok=True)
    videos = video_results(clips)
    for name, frame in (("clips.csv", clips), ("videos.csv", videos)):
        with atomic_output(out / name) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
    counts = statistics.resample_counts(len(videos))
    summary = {"videos": len(videos), "clips": int(videos["clips"].sum()), **extra}
    for column, figure in FIGURES.items():
        summary[column] = float(statistics.evaluate(figure, videos))
        summary[f"{column}_interval"] = list(statistics.interval(statistics.evaluate(figure, videos, counts)))
    write_json(out / "summary.json", summary)
    return summary


def train(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    import torch

    from pipeline.actions import train as ltc
    from pipeline.actions.dataset import read_manifest
    from pipeline.actions.inputs import RGB, load_set
    from pipeline.atomic import atomic_output
    from pipeline.models.checkpoint import save_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.input != RGB and (args.train_flow is None or args.test_flow is None):
        raise InputError(f"--input {args.input} needs --train-flow and --test-flow")
    train_manifest, test_manifest = read_manifest(args.train_manifest), read_manifest(args.test_manifest)
    settings = _settings(args, train_manifest["view"].unique().tolist())
    ltc.check_settings(settings)
    width, height = args.frame_size
    sets = [
        load_set(manifest, args.root, args.input, folder, width, height, args.flow_scale)
        for manifest, folder in ((train_manifest, args.train_flow), (test_manifest, args.test_flow))
    ]
    classes = int(max(train_manifest["label"].max(), test_manifest["label"].max())) + 1
    model = ltc.build_network(settings, sets[0].clips.shape[1], classes)
    name = args.out.name
    params = {**vars(settings), "input": args.input, "frame_size": args.frame_size, "flow_scale": args.flow_scale}
    with stage_run("actions_train", params, args.rule, parse_wildcards(args.wildcard)) as run:
        began = time.perf_counter()
        history = ltc.train(name, model, *sets, settings, run=run)
        seconds = time.perf_counter() - began
        args.out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            args.out / "model.pt", {"state": model.state_dict(), "settings": vars(settings), "classes": classes}
        )
        with atomic_output(args.out / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")
        clips = ltc.clip_probabilities(model, sets[1], settings)
        summary = write_evaluation(
            args.out,
            clips,
            {"input": args.input, "classes": classes, "train_seconds": seconds, "chance": 1.0 / classes},
        )
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float) and np.isfinite(v)})
    log.info("%s: clip accuracy %.3f, video accuracy %.3f", name, summary["clip_accuracy"], summary["video_accuracy"])


def fuse(args: argparse.Namespace) -> None:
    import pandas as pd

    from pipeline.actions.train import late_fusion

    if len(args.clips) != 2:
        raise InputError("--clips: late fusion takes exactly two evaluations (RGB and flow)")
    frames = []
    for path in args.clips:
        try:
            frames.append(pd.read_csv(path))
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise InputError(f"{path}: not a readable clips.csv ({error})") from error
    fused = [str(path) for path in args.clips]
    with stage_run("actions_fuse", {"fused": fused}, args.rule, parse_wildcards(args.wildcard)) as run:
        summary = write_evaluation(args.out, late_fusion(*frames), {"fused": fused})
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
    log.info("fusion: clip accuracy %.3f, video accuracy %.3f", summary["clip_accuracy"], summary["video_accuracy"])


def _videos(item: str, option: str) -> tuple[str, object]:
    import pandas as pd

    from pipeline.actions.tables import check_videos

    key, folder = parse_pair(item, option, "KEY")
    path = Path(folder) / "videos.csv"
    try:
        return key, check_videos(pd.read_csv(path), str(path))
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: not a readable videos.csv ({error})") from error


def table(args: argparse.Namespace) -> None:
    from pipeline.actions import tables
    from pipeline.actions.dataset import read_manifest
    from pipeline.atomic import atomic_output, write_json

    videos = dict(_videos(item, "--row") for item in args.row)
    extents = {}
    for item in args.extent:
        name, frames = parse_pair(item, "--extent", keys=("short", "long"))
        extents[name] = int(frames)
    if set(extents) != {"short", "long"}:
        raise InputError("--extent: give short=FRAMES and long=FRAMES")
    train_labels = read_manifest(args.train_manifest)["label"].to_numpy()
    first = next(iter(videos.values()))
    videos["constant"] = tables.constant_videos(first, train_labels)
    sources = list(dict.fromkeys(key.rsplit("_", 1)[0] for key in videos if key != "constant"))
    rows = tables.ltc_rows(sources, extents, int(train_labels.max()) + 1)
    missing = [row.key for row in rows if row.key not in videos and row.key != "chance"]
    if missing:
        raise InputError(f"--row: no evaluation given for {', '.join(missing)}")
    frame, counts = tables.measure(rows, videos, tables.FIGURES, seed=args.seed)
    flows = [s for s in sources if s not in ("rgb", "fusion")]
    orderings = tables.judge(tables.ltc_pairs(sources, extents, flows), videos, tables.FIGURES, counts)
    scores = {}
    for item in args.score:
        method, path = parse_pair(item, "--score", "METHOD")
        try:
            scores[method] = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable flow score file ({error})") from error
    quality = tables.flow_quality(frame, scores, args.quality_extent)
    quality_orderings = tables.judge(
        tables.flow_quality_pairs(quality, args.quality_extent), videos, tables.FIGURES, counts
    )
    params = {"rows": sorted(videos), "extents": extents, "quality_extent": args.quality_extent}
    with stage_run("actions_table", params, args.rule, parse_wildcards(args.wildcard)) as run:
        for path, data in (
            (args.out, frame),
            (args.out.with_name(f"{args.out.stem}_orderings.csv"), orderings),
            (args.quality, quality),
            (args.quality.with_name(f"{args.quality.stem}_orderings.csv"), quality_orderings),
        ):
            with atomic_output(path) as tmp:
                data.to_csv(tmp, index=False, float_format="%.4g")
        from pipeline.actions.figures import flow_quality_figure

        flow_quality_figure(quality, args.figure)
        counts_by = {"ltc": tables.verdict_counts(orderings), "flow_quality": tables.verdict_counts(quality_orderings)}
        write_json(args.out.with_suffix(".verdicts.json"), counts_by)
        run.log_artifact(args.out)
    log.info("verdicts: %s", counts_by)


def views_table(args: argparse.Namespace) -> None:
    from pipeline.actions import tables
    from pipeline.actions.dataset import read_manifest
    from pipeline.atomic import atomic_output

    videos = dict(_videos(item, "--row") for item in args.row)
    train_labels = read_manifest(args.train_manifest)["label"].to_numpy()
    videos["constant"] = tables.constant_videos(next(iter(videos.values())), train_labels)
    views = tuple(sorted(int(v) for v in next(iter(videos.values()))["view"].unique()))
    videos = {key: tables.view_columns(frame, views) for key, frame in videos.items()}
    rows = tables.view_rows(list(videos))
    figures = tables.view_figures(views)
    frame, counts = tables.measure(rows, videos, figures, seed=args.seed)
    orderings = tables.judge(tables.paper_pairs(rows, list(figures)), videos, figures, counts)
    with stage_run("actions_view_table", {"rows": sorted(videos)}, args.rule, parse_wildcards(args.wildcard)) as run:
        for path, data in ((args.out, frame), (args.out.with_name(f"{args.out.stem}_orderings.csv"), orderings)):
            with atomic_output(path) as tmp:
                data.to_csv(tmp, index=False, float_format="%.4g")
        run.log_artifact(args.out)
    log.info("verdicts: %s", tables.verdict_counts(orderings))


def load_ltc_checkpoint(path: Path) -> dict:
    """An LTC network's `model.pt` ({"state", "settings", "classes"}, as `train` writes it),
    read without running anything from it."""
    from pipeline.models.checkpoint import load_plain

    checkpoint = load_plain(path, "LTC checkpoint")
    kinds = {"state": dict, "settings": dict, "classes": int}
    if not isinstance(checkpoint, dict) or not all(isinstance(checkpoint.get(k), kind) for k, kind in kinds.items()):
        raise InputError(f"{path}: not an LTC checkpoint (no state, settings and classes)")
    return checkpoint


def view_figure(args: argparse.Namespace) -> None:
    from sklearn.manifold import TSNE

    from pipeline.actions import train as ltc
    from pipeline.actions.dataset import read_manifest
    from pipeline.actions.figures import view_embedding_figure
    from pipeline.actions.inputs import load_set
    from pipeline.actions.network import LTC

    manifest = read_manifest(args.test_manifest)
    width, height = args.frame_size
    data = load_set(manifest, args.root, args.input, args.test_flow, width, height, args.flow_scale)
    actions = list(manifest.drop_duplicates("label").sort_values("label")["action"])
    panels = {}
    for item in args.row:
        row, folder = parse_pair(item, "--row", "KEY")
        path = Path(folder) / "model.pt"
        checkpoint = load_ltc_checkpoint(path)
        fields = {name for name in ltc.LTCSettings.__dataclass_fields__}
        try:
            settings = ltc.LTCSettings(**{k: v for k, v in checkpoint["settings"].items() if k in fields})
            model = LTC(data.clips.shape[1], checkpoint["classes"], settings.extent, settings.size, settings.width)
            model.load_state_dict(checkpoint["state"])
        except (TypeError, ValueError, RuntimeError) as error:  # settings missing, or weights of another shape
            raise InputError(f"{path}: does not fit its own settings ({str(error).splitlines()[0]})") from error
        embeddings = ltc.video_embeddings(model, data, settings)
        perplexity = min(30.0, (len(embeddings) - 1) / 3)
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=args.seed).fit_transform(embeddings)
        panels[row] = (points, data.views, data.labels)
    with stage_run("actions_view_figure", {"rows": sorted(panels)}, args.rule, parse_wildcards(args.wildcard)) as run:
        view_embedding_figure(panels, actions, args.out)
        run.log_artifact(args.out)
    log.info("%s: %d networks' test videos", args.out, len(panels))


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.actions", __doc__)

    p = commands.add_parser("render", help="a split's performances, each from every camera, and its manifest")
    p.add_argument("--split", required=True)
    p.add_argument("--model", action="append", required=True, metavar="GENDER=PATH", help="a body model (repeatable)")
    p.add_argument("--backgrounds", type=Path, help="folder of background photographs (default: the package's)")
    p.add_argument("--actions", nargs="+", required=True, help="embedded motion names; labels in this order")
    p.add_argument("--performances", type=int, required=True, help="per action")
    p.add_argument("--azimuths", type=float, nargs="+", required=True, help="degrees from the person's front")
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--focal", type=float, required=True, help="pixels")
    p.add_argument("--camera-distance", type=float, nargs=2, required=True, metavar=("MEAN", "STD"))
    p.add_argument("--speed", type=float, nargs=2, required=True, metavar=("LOW", "HIGH"))
    p.add_argument("--jitter", type=float, required=True, help="radians of each joint's drift")
    p.add_argument("--mirror", type=float, required=True, help="chance a performance is mirrored")
    p.add_argument("--shapes", type=int, required=True)
    p.add_argument("--outfits", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--manifest", type=Path, required=True)
    add_tracking_arguments(p)
    p.set_defaults(func=render)

    p = commands.add_parser("train", help="one LTC network on RGB or a flow, tested on the test manifest")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--train-manifest", type=Path, required=True)
    p.add_argument("--test-manifest", type=Path, required=True)
    p.add_argument("--input", required=True, help="rgb, or the flow method the flow folders hold")
    p.add_argument("--train-flow", type=Path)
    p.add_argument("--test-flow", type=Path)
    p.add_argument("--frame-size", type=int, nargs=2, required=True, metavar=("WIDTH", "HEIGHT"))
    p.add_argument("--flow-scale", type=float, required=True, help="flow divided by this, after resizing")
    p.add_argument("--extent", type=int, required=True, help="frames per clip")
    p.add_argument("--crop", type=int, required=True, help="crop side, pixels")
    p.add_argument("--width", type=float, required=True, help="layer-size factor")
    p.add_argument("--dropout", type=float, required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--optimiser", required=True, choices=["sgd", "adam"])
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--momentum", type=float, required=True)
    p.add_argument("--weight-decay", type=float, required=True)
    p.add_argument("--lr-drop", type=float, required=True)
    p.add_argument("--test-stride", type=int, required=True)
    p.add_argument("--eval-every", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--losses",
        help="the losses, as a view-study row names them: a_v1_v2 (the action loss on views 1 and 2), "
        "s_v1_v2+a_v1 (L_s between views 1 and 2, the action loss on view 1), c_...: L_c "
        "(default: the action loss on every view of the training clips)",
    )
    p.add_argument("--similarity-weight", type=float, required=True, help="the similarity loss's weight")
    p.add_argument("--margin", type=float, required=True, help="L_c's margin")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument(
        "--out", type=Path, required=True, help="folder: model.pt, history.csv, clips.csv, videos.csv, summary.json"
    )
    add_tracking_arguments(p)
    p.set_defaults(func=train)

    p = commands.add_parser("fuse", help="late fusion of two evaluations (RGB and flow)")
    p.add_argument("--clips", type=Path, action="append", required=True, help="an evaluation's clips.csv (twice)")
    p.add_argument("--out", type=Path, required=True)
    add_tracking_arguments(p)
    p.set_defaults(func=fuse)

    p = commands.add_parser("table", help="the LTC table, the flow-quality table and its figure")
    p.add_argument(
        "--row", action="append", required=True, metavar="KEY=FOLDER", help="<input>_<short|long>=evaluation"
    )
    p.add_argument("--extent", action="append", required=True, metavar="NAME=FRAMES")
    p.add_argument("--train-manifest", type=Path, required=True, help="the constant row's training labels")
    p.add_argument("--score", action="append", default=[], metavar="METHOD=PATH", help="a flow method's scores JSON")
    p.add_argument("--quality-extent", choices=["short", "long"], required=True)
    p.add_argument("--seed", type=int, required=True, help="the bootstrap's")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quality", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True)
    add_tracking_arguments(p)
    p.set_defaults(func=table)

    p = commands.add_parser("view-figure", help="the view study's networks' test videos in two dimensions (t-SNE)")
    p.add_argument("--row", action="append", required=True, metavar="KEY=FOLDER", help="a network (its model.pt)")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--test-manifest", type=Path, required=True)
    p.add_argument("--input", required=True, help="rgb, or the flow method the networks read")
    p.add_argument("--test-flow", type=Path)
    p.add_argument("--frame-size", type=int, nargs=2, required=True, metavar=("WIDTH", "HEIGHT"))
    p.add_argument("--flow-scale", type=float, required=True)
    p.add_argument("--seed", type=int, required=True, help="t-SNE's")
    p.add_argument("--out", type=Path, required=True)
    add_tracking_arguments(p)
    p.set_defaults(func=view_figure)

    p = commands.add_parser("views-table", help="Table 6.1's shape: accuracy per test view by training views")
    p.add_argument("--row", action="append", required=True, metavar="KEY=FOLDER")
    p.add_argument("--train-manifest", type=Path, required=True)
    p.add_argument("--seed", type=int, required=True, help="the bootstrap's")
    p.add_argument("--out", type=Path, required=True)
    add_tracking_arguments(p)
    p.set_defaults(func=views_table)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
