"""Evaluation stage: trained BodyNets measured on the test images, and the paper's tables.

    python -m pipeline.evaluation network --model results/bodynet/voxels_fvsv/model.pt \\
        --samples results/bodynet/samples/test --body-model female=F.pkl --body-model male=M.pkl \\
        --out results/evaluation/voxels_fvsv
    python -m pipeline.evaluation table --table bodynet_table \\
        --summary voxels=results/evaluation/voxels/summary.json ... --out results/bodynet_table.csv

    python -m pipeline.evaluation reference --kind constant --train-samples results/bodynet/samples/train \
        --samples results/bodynet/samples/test --body-model female=F.pkl ... --out results/evaluation/reference/constant

`network` writes images.csv (one row per image), summary.json (the test set's figures,
with the MLflow runs of the training and of this evaluation) and, for the methods that fit
a body, sheet.png. `reference` does the same for a reference predictor (the training set's
constant, or the truth), fitted as the voxel networks are. `table` writes one of the
paper's tables with the paper's numbers beside ours and 95 % bootstrap intervals, its bar
chart, and each ordering's verdict (holds, reversed, undecided) by paired bootstrap.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli import add_device_arguments, command_parser, parse_pair, run_command, settings_from
from pipeline.errors import InputError
from pipeline.fitting.options import add_fit_arguments, fit_params, fit_settings
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.evaluation")


def _fit_settings(args: argparse.Namespace, method: str):
    """The body fit's settings, which every method but `tasks` needs, with where the body is placed."""
    if method == "tasks":
        return None
    if args.placement is None:
        raise InputError("fitting the body needs --placement")
    return fit_settings(args, required=True)


def _exemplars(args: argparse.Namespace, samples):
    """The exemplar readout's library (--exemplars, of the evaluated samples' sizes), or None
    for the volumes' peaks."""
    if args.readout == "peak":
        return None
    missing = [option for option in ("exemplars", "neighbours", "truncation") if getattr(args, option) is None]
    if missing:
        raise InputError(f"--readout exemplars needs {', '.join('--' + option for option in missing)}")
    from pipeline.evaluation.exemplars import ExemplarSettings, PoseExemplars
    from pipeline.training.samples import SampleSet

    library = SampleSet.load(args.exemplars)
    if library.sizes.heatmap != samples.sizes.heatmap:
        raise InputError(
            f"--exemplars {args.exemplars}: heatmaps of {library.sizes.heatmap} pixels, "
            f"the evaluated samples' are {samples.sizes.heatmap}"
        )
    try:
        settings = settings_from(ExemplarSettings, args)
    except ValueError as error:
        raise InputError(f"--neighbours/--truncation: {error}") from error
    return PoseExemplars.from_samples(library, settings)


def _readout_params(args: argparse.Namespace) -> dict:
    """How the outputs are read (mirrored too or not; the 3D joints' readout) as run parameters."""
    if args.readout == "peak":
        return {"mirror_test": args.mirror_test, "readout": "peak"}
    return {
        "mirror_test": args.mirror_test,
        "readout": "exemplars",
        "exemplars": str(args.exemplars),
        "neighbours": args.neighbours,
        "truncation": args.truncation,
    }


def _write_evaluation(args: argparse.Namespace, evaluation, summary: dict, run, title: str) -> dict:
    """images.csv, summary.json (with the measures) and the sheet, logged to `run`."""
    from pipeline.evaluation.figures import qualitative_sheet
    from pipeline.evaluation.records import write_evaluation

    measures = write_evaluation(args.out, evaluation.images, {**summary, "evaluation_run_id": run.run_id})
    if evaluation.examples:
        qualitative_sheet(evaluation.examples, title, args.out / "sheet.png")
        run.log_artifact(args.out / "sheet.png")
    run.log_metrics(measures)
    for name in ("images.csv", "summary.json"):
        run.log_artifact(args.out / name)
    log.info("%s, %d images: %s", title, len(evaluation.images), ", ".join(f"{k}={v:.4g}" for k, v in measures.items()))
    return measures


def network(args: argparse.Namespace) -> None:
    import torch

    from pipeline.evaluation.network import (
        METHODS,
        NEEDS,
        body_models,
        check_genders,
        evaluate_network,
        method_for_stage,
    )
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.models.checkpoint import build_model, load_checkpoint
    from pipeline.training.loop import pick_device
    from pipeline.training.samples import SampleSet

    models = body_models(args.body_model)
    samples = SampleSet.load(args.samples)
    checkpoint = load_checkpoint(args.model)
    method = args.method or method_for_stage(checkpoint.get("stage", ""))
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "tasks":
        check_genders(samples, models, args.samples)
    missing = NEEDS[method] - set(checkpoint["state"])
    if missing:
        raise InputError(f"{args.model}: holds no trained {', '.join(sorted(missing))}, which method {method!r} needs")
    config = BodyNetConfig(**checkpoint["config"])
    sizes = (samples.sizes.input, samples.sizes.heatmap, samples.sizes.voxels)
    if sizes != (config.input_size, config.heatmap_size, config.voxel_size):
        raise InputError(f"{args.samples}: samples of sizes {sizes} do not fit {args.model}")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = _fit_settings(args, method)
    params = {
        "model": str(args.model),
        "samples": str(args.samples),
        "images": len(samples),
        "method": method,
        "placement": args.placement,
        "fit": fit_params(settings, args) if settings else None,
        **_readout_params(args),
    }
    exemplars = _exemplars(args, samples)
    trained_run = checkpoint.get("run_id", "unknown")
    with stage_run("evaluation", params, args.rule, parse_wildcards(args.wildcard)) as run:
        run.tag_evaluated(trained_run)
        net = build_model(config, [args.model]).to(pick_device(args.device))
        evaluation = evaluate_network(
            net,
            samples,
            models,
            method,
            settings,
            batch_size=args.batch_size,
            examples=args.examples if method != "tasks" else 0,
            placement=args.placement,
            exemplars=exemplars,
            mirrored=args.mirror_test,
        )
        summary = {
            "method": method,
            "model": str(args.model),
            "stage": checkpoint.get("stage"),
            "trained_run_id": trained_run,
            "placement": args.placement,
            "mirror_test": args.mirror_test,
        }
        _write_evaluation(args, evaluation, summary, run, f"{checkpoint.get('stage')} ({method})")


def reference(args: argparse.Namespace) -> None:
    import torch

    from pipeline.evaluation.network import body_models, check_genders, evaluate_network
    from pipeline.evaluation.references import ReferencePredictor, training_means
    from pipeline.training.samples import SampleSet

    models = body_models(args.body_model)
    samples = SampleSet.load(args.samples)
    if args.method != "tasks":
        check_genders(samples, models, args.samples)
    if args.kind == "constant" and args.train_samples is None:
        raise InputError("reference --kind constant needs --train-samples (the training set it is the mean of)")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = _fit_settings(args, args.method)
    params = {
        "kind": args.kind,
        "samples": str(args.samples),
        "train_samples": str(args.train_samples),
        "train_images": args.train_images,
        "images": len(samples),
        "method": args.method,
        "placement": args.placement,
        "fit": fit_params(settings, args) if settings else None,
        **_readout_params(args),
    }
    exemplars = _exemplars(args, samples)
    with stage_run("evaluation_reference", params, args.rule, parse_wildcards(args.wildcard)) as run:
        means = None
        if args.kind == "constant":
            train = SampleSet.load(args.train_samples)
            if (train.sizes.input, train.sizes.heatmap, train.sizes.voxels) != (
                samples.sizes.input,
                samples.sizes.heatmap,
                samples.sizes.voxels,
            ):
                raise InputError(f"{args.train_samples} and {args.samples} hold samples of different sizes")
            means = training_means(train, args.train_images, args.seed)
        evaluation = evaluate_network(
            ReferencePredictor(args.kind, means),
            samples,
            models,
            args.method,
            settings,
            batch_size=args.batch_size,
            examples=args.examples if args.method != "tasks" else 0,
            placement=args.placement,
            exemplars=exemplars,
        )
        summary = {
            "method": args.method,
            "reference": args.kind,
            "model": None,
            "stage": None,
            "trained_run_id": None,
            "placement": args.placement,
        }
        _write_evaluation(args, evaluation, summary, run, f"reference: {args.kind}")


def _name(key: str) -> str:
    """A row key as MLflow accepts in metric and tag names ('+' is not allowed)."""
    return key.replace("+", "-")


def table(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.evaluation import tables
    from pipeline.evaluation.figures import table_bars, table_curve

    spec = tables.TABLES[args.table]
    summaries, images = {}, {}
    for item in args.summary:
        key, path = parse_pair(item, "--summary", "ROW")
        if key not in {row.key for row in spec.rows}:
            raise InputError(f"--summary {item}: {args.table} has no row {key!r}")
        summaries[key], images[key] = tables.read_summary(path), tables.read_images(path)
    spec = spec.with_rows(summaries)  # the learned rows given (evaluation.rows); the references always
    frame, counts = tables.build(spec, images, seed=args.seed)
    orderings = tables.orderings(spec, frame, images, counts)
    verdicts = tables.verdict_counts(orderings)
    params = {
        "table": args.table,
        "rows": {_name(row.key): row.evaluation for row in spec.rows},
        "resamples": len(counts),
        "seed": args.seed,
    }
    with stage_run("evaluation_table", params, args.rule, parse_wildcards(args.wildcard)) as run:
        tags = {}
        for key, summary in summaries.items():
            tags[f"pipeline.row.{_name(key)}.evaluation_run_id"] = summary.get("evaluation_run_id") or "unknown"
            tags[f"pipeline.row.{_name(key)}.trained_run_id"] = summary.get("trained_run_id") or "none"
        run.set_tags(tags)
        with atomic_output(args.out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4g")
        if args.figure:
            (table_curve if spec.x else table_bars)(spec, frame, args.figure)
            run.log_artifact(args.figure)
        if args.orderings:
            with atomic_output(args.orderings) as tmp:
                orderings.to_csv(tmp, index=False, float_format="%.4g")
            run.log_artifact(args.orderings)
        metrics = {
            f"{_name(row['key'])}.{column}{suffix}": row[f"{column}{suffix}"]
            for row in frame.to_dict("records")
            for column in spec.columns
            for suffix in ("", "_low", "_high")
        }
        metrics |= {
            f"orderings_{kind}.{verdict}": count for kind, found in verdicts.items() for verdict, count in found.items()
        }
        run.log_metrics(metrics)
        run.log_artifact(args.out)
    paper, constant = verdicts["paper"], verdicts["constant"]
    log.info(
        "%s: %d rows on %d images; the paper's orderings: %s; learned rows against the constant: %s",
        args.table,
        len(frame),
        int(frame["images"].iloc[0]),
        ", ".join(f"{n} {v}" for v, n in paper.items()),
        ", ".join(f"{n} {v}" for v, n in constant.items()),
    )


def prior(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from pipeline.fitting.body_fit import PosePrior
    from pipeline.synthesis.motion import load_motions

    motions = load_motions(args.motions)
    poses = np.concatenate([motion.pose for motion in motions])
    params = {"motions": str(args.motions), "poses": len(poses), "components": args.components, "seed": args.seed}
    with stage_run("pose_prior", params, args.rule, parse_wildcards(args.wildcard)) as run:
        learnt = PosePrior.fit(poses, args.components, args.seed)
        learnt.save(args.out)
        costs = learnt(torch.as_tensor(poses[:, 3:], dtype=torch.float32)).numpy()
        run.log_metrics({"median_cost": float(np.median(costs)), "rest_pose_cost": float(learnt(torch.zeros(1, 69)))})
    log.info(
        "learnt a %d-component pose prior from %d poses of %d motions: %s",
        args.components,
        len(poses),
        len(motions),
        args.out,
    )


def page(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.evaluation.page import (
        HEADLINE_TABLE,
        headline_markdown,
        read_table,
        validation_markdown,
        with_headline,
        write_page,
    )
    from pipeline.evaluation.tables import TABLES

    tables = {}
    for item in args.table:
        name, path = parse_pair(item, "--table", "NAME")
        tables[name] = Path(path)
    if args.results:
        tables.update(
            {name: args.results / f"{name}.csv" for name in TABLES if (args.results / f"{name}.csv").exists()}
        )
    if not tables:
        raise InputError(f"no table to write: give --table NAME=PATH, or --results with tables in {args.results}")
    if args.readme and HEADLINE_TABLE not in tables:
        raise InputError(f"--readme {args.readme}: its summary is {HEADLINE_TABLE}, which no --table gives")
    with stage_run(
        "results_page", {"tables": {k: str(v) for k, v in tables.items()}}, args.rule, parse_wildcards(args.wildcard)
    ) as run:
        kept = args.out.read_text() if args.update and args.out.exists() else ""
        text = write_page(tables, args.out, args.title, args.measured, kept)
        readme = None
        if args.readme:
            try:
                headline = headline_markdown(*read_table(HEADLINE_TABLE, tables[HEADLINE_TABLE]))
                if args.results:
                    headline += "\n" + validation_markdown(args.results)
                if args.measured:
                    headline += f"\nMeasured {args.measured}.\n"
                readme = with_headline(args.readme.read_text(), headline.rstrip("\n") + "\n", args.readme)
            except OSError as error:
                raise InputError(f"{args.readme}: cannot read it ({error})") from error
        with atomic_output(args.out) as tmp:
            tmp.write_text(text)
        if readme is not None:
            with atomic_output(args.readme) as tmp:
                tmp.write_text(readme)
        run.log_artifact(args.out)
    log.info("wrote %s (%d tables)%s", args.out, len(tables), f" and {args.readme}'s summary" if args.readme else "")


def _add_evaluation_arguments(p: argparse.ArgumentParser) -> None:
    """What `network` and `reference` share: the test samples, body models, output folder,
    the fit's settings, device and tracking."""
    p.add_argument("--samples", required=True, type=Path, help="prepared test samples")
    p.add_argument(
        "--body-model",
        action="append",
        default=[],
        metavar="GENDER=PATH",
        help="the SMPL-format model of each gender the samples hold",
    )
    p.add_argument("--out", required=True, type=Path, help="folder for images.csv, summary.json, sheet.png")
    _add_readout_arguments(p)
    _add_fit_arguments(p)
    add_device_arguments(p)
    add_tracking_arguments(p)


def _add_readout_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.evaluation.choices import READOUTS

    p.add_argument(
        "--readout",
        required=True,
        choices=READOUTS,
        help="how the 3D joints are read from the joint volumes: peak: each joint at its volume's maximum "
        "(BodyNet's); exemplars: the mean of the training poses nearest to those peaks",
    )
    p.add_argument(
        "--mirror-test",
        action="store_true",
        help="a trained network reads each crop mirrored too, and its outputs are the mean of the two "
        "(the mirror's mapped back); reference rows are unchanged",
    )
    p.add_argument("--exemplars", type=Path, help="prepared training samples: the exemplar readout's poses")
    p.add_argument("--neighbours", type=int, help="training poses the exemplar readout averages")
    p.add_argument(
        "--truncation", type=float, help="the most a joint's distance counts in the match (heatmap pixels, depth bins)"
    )


def _add_fit_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.evaluation.choices import PLACEMENTS

    p.add_argument("--batch-size", type=int, required=True, help="images fitted together")
    add_fit_arguments(p)
    p.add_argument(
        "--placement",
        choices=PLACEMENTS,
        help="true_box: the fitted body moved and scaled into the true body's box before its error is "
        "taken (the paper's); crop: as fitted, from the crop and the true root depth",
    )
    p.add_argument("--examples", type=int, help="test images on the qualitative sheet (body methods)")


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    from pipeline.evaluation.choices import METHODS
    from pipeline.evaluation.tables import REFERENCES, TABLES

    parser, commands = command_parser("python -m pipeline.evaluation", __doc__)
    p = commands.add_parser("network", help="per-image measures of a trained BodyNet, with the body model fitted")
    p.add_argument("--model", required=True, type=Path, help="checkpoint of a stage (model.pt)")
    p.add_argument(
        "--method",
        choices=METHODS,
        help="default: voxels for voxel stages, shape_regression for its stage, tasks otherwise",
    )
    _add_evaluation_arguments(p)
    p.set_defaults(func=network)

    p = commands.add_parser(
        "reference", help="a reference predictor (constant or truth) measured and fitted as the voxel networks are"
    )
    p.add_argument(
        "--kind",
        required=True,
        choices=REFERENCES,
        help="constant: the training set's loss-minimising constant; oracle: the truth",
    )
    p.add_argument("--train-samples", type=Path, help="prepared training samples (the constant's)")
    p.add_argument("--train-images", type=int, required=True, help="training images the constant is the mean of")
    p.add_argument("--seed", type=int, required=True, help="draws those images")
    p.add_argument(
        "--method",
        choices=("voxels", "tasks"),
        default="voxels",
        help="voxels: measured and fitted as the voxel networks are; tasks: the tasks' measures alone "
        "(no fit, no body models)",
    )
    _add_evaluation_arguments(p)
    p.set_defaults(func=reference)

    p = commands.add_parser("table", help="one of the paper's tables from evaluation summaries")
    p.add_argument("--table", required=True, choices=list(TABLES))
    p.add_argument(
        "--summary",
        action="append",
        default=[],
        metavar="ROW=PATH",
        help="summary.json of each row's evaluation (repeatable): the reference rows and the learned rows to "
        "tabulate, every learned row or some",
    )
    p.add_argument("--out", required=True, type=Path, help="the table (CSV)")
    p.add_argument("--figure", type=Path, help="bar chart against the paper (PNG)")
    p.add_argument(
        "--orderings",
        type=Path,
        help="the paper's pairwise orderings and each learned row against the "
        "constant: our paired difference and whether it holds, is reversed or undecided (CSV)",
    )
    p.add_argument("--seed", type=int, required=True, help="draws the bootstrap resamples of the test images")
    add_tracking_arguments(p)
    p.set_defaults(func=table)

    p = commands.add_parser("prior", help="learn the body fit's pose prior (a Gaussian mixture) from motions")
    p.add_argument("--motions", required=True, type=Path, help="the training split's motions (.npz)")
    p.add_argument("--components", required=True, type=int, help="the mixture's Gaussians (SMPLify's: 8)")
    p.add_argument("--seed", type=int, required=True, help="starts expectation-maximisation")
    p.add_argument("--out", required=True, type=Path, help="the prior (.npz)")
    add_tracking_arguments(p)
    p.set_defaults(func=prior)

    p = commands.add_parser("page", help="the results page (Markdown) from the tables' CSVs and orderings")
    p.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a table's CSV (its orderings read from evaluation/NAME_orderings.csv beside it)",
    )
    p.add_argument(
        "--results", type=Path, help="instead of --table: every table whose CSV lies in this folder (NAME.csv)"
    )
    p.add_argument("--title", default="Results")
    p.add_argument(
        "--measured",
        help="where the results were measured, written with each table and under the README's summary: the "
        "commit, date and machine of the run (`at commit abc1234 on 2026-12-06, 2 CPU cores`)",
    )
    p.add_argument("--out", required=True, type=Path, help="the page (.md)")
    p.add_argument(
        "--update",
        action="store_true",
        help="keep the page's sections of the tables not given (a run of some tables updates only theirs)",
    )
    p.add_argument(
        "--readme",
        type=Path,
        help="also rewrite Table 4.2's summary in this file, between its generated-block markers",
    )
    add_tracking_arguments(p)
    p.set_defaults(func=page)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
