"""Evaluation stage: trained BodyNets measured on the test images, and the paper's tables.

    python -m pipeline.evaluation network --model results/bodynet/voxels_fvsv/model.pt \\
        --samples results/bodynet/samples/test --body-model female=F.pkl --body-model male=M.pkl \\
        --out results/evaluation/voxels_fvsv
    python -m pipeline.evaluation table --table bodynet_table \\
        --summary voxels=results/evaluation/voxels/summary.json ... --out results/bodynet_table.csv

`network` writes images.csv (one row per image), summary.json (the test set's figures,
with the MLflow runs of the training and of this evaluation) and, for the methods that fit
a body, sheet.png. `table` writes one of the paper's tables with the paper's numbers beside
ours, its bar chart, and how many of the paper's orderings between rows hold.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from dataclasses import asdict
from pathlib import Path

from pipeline.cli import add_device_arguments, command_parser, run_command
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.evaluation")


def _body_models(items: list[str]) -> dict:
    from pipeline.body_model.model import BodyModel

    models = {}
    for item in items:
        gender, sep, path = item.partition("=")
        if not sep or gender not in ("female", "male"):
            raise InputError(f"--body-model expects female=PATH or male=PATH, got {item!r}")
        models[gender] = copy.deepcopy(BodyModel.from_file(path)).float()
    return models


def network(args: argparse.Namespace) -> None:
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.evaluation.figures import qualitative_sheet
    from pipeline.evaluation.measures import summarise
    from pipeline.evaluation.network import METHODS, NEEDS, evaluate_network, method_for_stage
    from pipeline.fitting.body_fit import FitSettings
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.training.loop import build_model, load_checkpoint, pick_device
    from pipeline.training.samples import SampleSet

    models = _body_models(args.body_model)
    samples = SampleSet.load(args.samples)
    checkpoint = load_checkpoint(args.model)
    method = args.method or method_for_stage(checkpoint.get("stage", ""))
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    genders = {int(g) for g in set(samples.arrays["gender"].tolist())}
    if method != "tasks" and {("female", "male")[g] for g in genders} - set(models):
        raise InputError(f"{args.samples}: holds {sorted(('female', 'male')[g] for g in genders)} bodies; "
                         "give a --body-model for each")  # fmt: skip
    missing = NEEDS[method] - set(checkpoint["state"])
    if missing:
        raise InputError(f"{args.model}: holds no trained {', '.join(sorted(missing))}, which method {method!r} needs")
    config = BodyNetConfig(**checkpoint["config"])
    sizes = (samples.sizes.input, samples.sizes.heatmap, samples.sizes.voxels)
    if sizes != (config.input_size, config.heatmap_size, config.voxel_size):
        raise InputError(f"{args.samples}: samples of sizes {sizes} do not fit {args.model}")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = FitSettings(joint_steps=args.joint_steps, steps=args.fit_steps, max_vertices=args.max_vertices)
    params = {"model": str(args.model), "samples": str(args.samples), "images": len(samples), "method": method,
              "fit": asdict(settings)}  # fmt: skip
    trained_run = checkpoint.get("run_id", "unknown")
    with stage_run("evaluation", params, args.rule, parse_wildcards(args.wildcard)) as run:
        run.set_tags({"pipeline.evaluated_run_id": trained_run})
        net = build_model(config, [args.model]).to(pick_device(args.device))
        evaluation = evaluate_network(net, samples, models, method, settings, batch_size=args.batch_size,
                                      examples=args.examples if method != "tasks" else 0)  # fmt: skip
        measures = summarise(evaluation.images, evaluation.part_intersection, evaluation.part_union)
        args.out.mkdir(parents=True, exist_ok=True)
        with atomic_output(args.out / "images.csv") as tmp:
            evaluation.images.to_csv(tmp, index=False, float_format="%.6g")
        summary = {"method": method, "model": str(args.model), "stage": checkpoint.get("stage"),
                   "trained_run_id": trained_run, "evaluation_run_id": run.run_id, "measures": measures}  # fmt: skip
        with atomic_output(args.out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
        if evaluation.examples:
            qualitative_sheet(evaluation.examples, f"{checkpoint.get('stage')} ({method})", args.out / "sheet.png")
            run.log_artifact(args.out / "sheet.png")
        run.log_metrics(measures)
        for name in ("images.csv", "summary.json"):
            run.log_artifact(args.out / name)
        log.info("%s, %d images: %s", method, len(evaluation.images), ", ".join(f"{k}={v:.4g}" for k, v in measures.items()))


def _name(key: str) -> str:
    """A row key as MLflow accepts in metric and tag names ('+' is not allowed)."""
    return key.replace("+", "-")


def table(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.evaluation import tables
    from pipeline.evaluation.figures import table_bars

    spec = tables.TABLES[args.table]
    summaries = {}
    for item in args.summary:
        key, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"--summary expects ROW=PATH, got {item!r}")
        if key not in {row.key for row in spec.rows}:
            raise InputError(f"--summary {item}: {args.table} has no row {key!r}")
        summaries[key] = tables.read_summary(path)
    frame = tables.build(spec, summaries)
    orderings = tables.orderings(spec, frame)
    params = {"table": args.table, "rows": {_name(row.key): row.evaluation for row in spec.rows}}
    with stage_run("evaluation_table", params, args.rule, parse_wildcards(args.wildcard)) as run:
        tags = {}
        for key, summary in summaries.items():
            tags[f"pipeline.row.{_name(key)}.evaluation_run_id"] = summary.get("evaluation_run_id", "unknown")
            tags[f"pipeline.row.{_name(key)}.trained_run_id"] = summary.get("trained_run_id", "unknown")
        run.set_tags(tags)
        with atomic_output(args.out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4g")
        if args.figure:
            table_bars(spec, frame, args.figure)
            run.log_artifact(args.figure)
        if args.orderings:
            with atomic_output(args.orderings) as tmp:
                orderings.to_csv(tmp, index=False)
            run.log_artifact(args.orderings)
        metrics = {f"{_name(row['key'])}.{column}": row[column] for row in frame.to_dict("records") for column in spec.columns}
        if len(orderings):
            metrics["orderings_held"] = float(orderings["holds"].mean())
        run.log_metrics(metrics)
        run.log_artifact(args.out)
    held = f"{int(orderings['holds'].sum())} of {len(orderings)}" if len(orderings) else "none to compare"
    log.info("%s: %d rows; the paper's orderings that hold: %s", args.table, len(frame), held)


def main(argv: list[str] | None = None) -> None:
    from pipeline.evaluation.network import METHODS
    from pipeline.evaluation.tables import TABLES

    parser, commands = command_parser("python -m pipeline.evaluation", __doc__)
    p = commands.add_parser("network", help="per-image measures of a trained BodyNet, with the body model fitted")
    p.add_argument("--model", required=True, type=Path, help="checkpoint of a stage (model.pt)")
    p.add_argument("--samples", required=True, type=Path, help="prepared test samples")
    p.add_argument("--method", choices=METHODS, help="default: voxels for voxel stages, shape_regression for "
                   "its stage, tasks otherwise")  # fmt: skip
    p.add_argument("--body-model", action="append", default=[], metavar="GENDER=PATH",
                   help="the SMPL-format model of each gender the samples hold")
    p.add_argument("--out", required=True, type=Path, help="folder for images.csv, summary.json, sheet.png")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--joint-steps", type=int, default=40, help="fit iterations on the joints alone")
    p.add_argument("--fit-steps", type=int, default=60, help="fit iterations on the whole objective")
    p.add_argument("--max-vertices", type=int, default=800, help="vertices used for correspondences")
    p.add_argument("--examples", type=int, default=4, help="test images on the qualitative sheet")
    add_device_arguments(p)
    add_tracking_arguments(p)
    p.set_defaults(func=network)

    p = commands.add_parser("table", help="one of the paper's tables from evaluation summaries")
    p.add_argument("--table", required=True, choices=list(TABLES))
    p.add_argument("--summary", action="append", default=[], metavar="ROW=PATH",
                   help="summary.json of each row's evaluation (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="the table (CSV)")
    p.add_argument("--figure", type=Path, help="bar chart against the paper (PNG)")
    p.add_argument("--orderings", type=Path, help="the paper's pairwise orderings and whether ours hold (CSV)")
    add_tracking_arguments(p)
    p.set_defaults(func=table)
    run_command(parser, argv)


if __name__ == "__main__":
    main()
