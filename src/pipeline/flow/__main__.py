"""Optical-flow stage: flow of a split's clips by one method, scored against the true flow;
the table of methods and a colour-wheel figure.

    python -m pipeline.flow extract --root results/surreal --split test --method dis_medium \\
        --clips 12 --out results/flow/test/dis_medium --scores results/flow/test/dis_medium.json
    python -m pipeline.flow table --score dis_medium=results/flow/test/dis_medium.json ... \\
        --out results/flow_table.csv --figure results/flow/flow_colours.png --root results/surreal --split test
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.cli import command_parser, parse_pair, run_command
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.flow")


def extract(args: argparse.Namespace) -> None:
    from pipeline.atomic import write_json
    from pipeline.clips import find_clips
    from pipeline.flow.extract import extract as run_extraction

    clips = find_clips(args.root, args.split)
    if not clips:
        raise InputError(f"{args.root}: no clips in split {args.split!r}")
    clips = clips[: args.clips] if args.clips else clips
    params = {"method": args.method, "split": args.split, "clips": len(clips), "jpeg_quality": args.quality}
    with stage_run("flow", params, args.rule, parse_wildcards(args.wildcard)) as run:
        scores = run_extraction(clips, args.method, args.out, args.quality)
        write_json(args.scores, {"method": args.method, **scores, "run_id": run.run_id})
        run.log_metrics({k: v for k, v in scores.items() if v == v})  # NaN-free
        run.log_artifact(args.scores)
    log.info("%s: %s", args.method, ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))


def table(args: argparse.Namespace) -> None:
    import pandas as pd

    from pipeline.atomic import atomic_output
    from pipeline.clips import find_clips
    from pipeline.flow.extract import RENDERED
    from pipeline.flow.figures import flow_colours

    rows, folders = [], {}
    for item in args.score:
        method, path = parse_pair(item, "--score", "METHOD")
        try:
            scores = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable flow score file ({error})") from error
        missing = {"epe", "epe_body", "outlier_rate", "frames_per_second"} - set(scores)
        if missing:
            raise InputError(f"{path}: lacks {', '.join(sorted(missing))}")
        rows.append({"method": method, **{k: v for k, v in scores.items() if k not in ("method", "run_id")}})
        folders[method] = Path(path).with_suffix("")
    frame = pd.DataFrame(rows)
    estimated = frame[frame["method"] != RENDERED]
    fast = estimated[estimated["frames_per_second"] >= args.min_fps]
    chosen = fast.sort_values("epe_body").iloc[0]["method"] if len(fast) else None
    frame["default"] = frame["method"] == chosen
    with stage_run(
        "flow_table",
        {"methods": list(frame["method"]), "min_fps": args.min_fps},
        args.rule,
        parse_wildcards(args.wildcard),
    ) as run:
        with atomic_output(args.out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4g")
        stem = find_clips(args.root, args.split)[0].name.removesuffix("_info.mat")
        flow_colours(args.root, args.split, stem, folders, args.figure)
        run.log_metrics({f"{r['method']}.{k}": float(r[k]) for r in rows for k in ("epe", "epe_body", "outlier_rate")})
        run.set_tags({"pipeline.flow.default_method": str(chosen)})
        run.log_artifact(args.out)
        run.log_artifact(args.figure)
    log.info("best error at ≥ %g frames/s: %s", args.min_fps, chosen)


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    from pipeline.flow.extract import RENDERED
    from pipeline.flow.methods import METHODS

    parser, commands = command_parser("python -m pipeline.flow", __doc__)
    p = commands.add_parser("extract", help="flow of a split's clips by one method, both formats, scored")
    p.add_argument("--root", required=True, type=Path, help="root of the SURREAL layout")
    p.add_argument("--split", required=True)
    p.add_argument("--method", required=True, choices=[RENDERED, *METHODS])
    p.add_argument("--clips", type=int, required=True, help="the first N clips (sorted); 0: all")
    p.add_argument("--quality", type=int, required=True, help="JPEG quality of LTC's format")
    p.add_argument("--out", required=True, type=Path, help="folder for <stem>.npz, <stem>/, <stem>_minmax.txt")
    p.add_argument("--scores", required=True, type=Path, help="JSON of the scores and speed")
    add_tracking_arguments(p)
    p.set_defaults(func=extract)

    p = commands.add_parser("table", help="the methods' scores in one table, and a colour-wheel figure")
    p.add_argument(
        "--score",
        action="append",
        default=[],
        metavar="METHOD=PATH",
        required=True,
        help="scores JSON of a method; its flows are the folder of the same name",
    )
    p.add_argument("--root", required=True, type=Path, help="root of the SURREAL layout (frames for the figure)")
    p.add_argument("--split", required=True)
    p.add_argument(
        "--min-fps", type=float, required=True, help="the default method: best EPE on the body at this speed or more"
    )
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--figure", required=True, type=Path)
    add_tracking_arguments(p)
    p.set_defaults(func=table)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
