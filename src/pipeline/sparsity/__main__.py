"""Sparsity stage: inactive filters of trained BodyNets, the networks pruned, and the table.

    python -m pipeline.sparsity analyse --model results/bodynet/pose2d/model.pt \\
        --train results/bodynet/samples/train --val results/bodynet/samples/test \\
        --out results/sparsity/bodynet/pose2d
    python -m pipeline.sparsity table --analysis pose2d=results/sparsity/bodynet/pose2d/analysis.json \\
        ... --out results/sparsity_table.csv --figure results/sparsity/layers.png

`analyse` writes analysis.json (per layer: filters inactive by BatchNorm scale and by
activation, removed; per subnetwork: parameters, multiply-accumulates, CPU latency and its
validation measure before and after) and pruned.pt, the checkpoint with those filters
removed, which the evaluation and later stages load in place of the original. `table`
writes Mehta et al.'s Table D.1 for every analysis given, and the per-layer plot.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

from pipeline.cli import command_parser, parse_pair, run_command, settings_from
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.sparsity")


def analyse(args: argparse.Namespace) -> None:
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.models.checkpoint import build_model, load_checkpoint, save_checkpoint
    from pipeline.sparsity.analyse import SparsitySettings
    from pipeline.sparsity.analyse import analyse as analyse_model
    from pipeline.training.samples import SampleSet
    from pipeline.training.stages import stage as make_stage

    checkpoint = load_checkpoint(args.model)
    if checkpoint.get("pruned"):
        raise InputError(f"{args.model}: already pruned; analyse the network it was pruned from")
    config = BodyNetConfig(**checkpoint["config"])
    train_set, val_set = SampleSet.load(args.train), SampleSet.load(args.val)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from(SparsitySettings, args)
    held = list(checkpoint["state"])
    stage_name = checkpoint.get("stage", "")
    trains = list(make_stage(stage_name).trains) if stage_name else held
    trained_run = checkpoint.get("run_id", "unknown")
    params = {"model": str(args.model), "train": str(args.train), "val": str(args.val), **asdict(settings)}
    with stage_run("sparsity", params, args.rule, parse_wildcards(args.wildcard)) as run:
        run.set_tags({"pipeline.analysed_run_id": trained_run})
        model = build_model(config, [args.model])
        analysis = analyse_model(model, held, train_set, val_set, settings)
        args.out.mkdir(parents=True, exist_ok=True)
        pruned = {
            **checkpoint,
            "state": {name: getattr(model, name).state_dict() for name in held},
            "pruned": True,
            "pruned_from": str(args.model),
            "sparsity_run_id": run.run_id,
        }
        pruned.pop("optimiser", None)
        save_checkpoint(args.out / "pruned.pt", pruned)
        record = {
            "model": str(args.model),
            "stage": stage_name,
            "trains": trains,
            "train": checkpoint.get("train", {}),
            "trained_run_id": trained_run,
            "sparsity_run_id": run.run_id,
            "settings": asdict(settings),
            "networks": analysis.networks.to_dict("records"),
            "layers": analysis.layers.to_dict("records"),
        }
        with atomic_output(args.out / "analysis.json") as tmp:
            tmp.write_text(json.dumps(record, indent=1) + "\n")
        for row in analysis.networks.to_dict("records"):
            name = row["network"]
            run.log_metrics(
                {
                    f"{name}.inactive_gamma_percent": 100.0 * row["inactive_gamma"] / row["filters"],
                    f"{name}.inactive_activation_percent": 100.0 * row["inactive_activation"] / row["filters"],
                    f"{name}.removed_percent": 100.0 * row["removed"] / row["filters"],
                    f"{name}.parameters_after": row["parameters_after"],
                    f"{name}.macs_after": row["macs_after"],
                    f"{name}.speedup": row["latency_ms_before"] / row["latency_ms_after"],
                    f"{name}.{row['measure']}_before": row["before"],
                    f"{name}.{row['measure']}_after": row["after"],
                    f"{name}.output_change": row["output_change"],
                }
            )
            log.info(
                "%s: %d of %d filters removed (γ %d, activation %d), %s %.4g → %.4g, output change %.2g, %.2f× faster",
                name,
                row["removed"],
                row["filters"],
                row["inactive_gamma"],
                row["inactive_activation"],
                row["measure"],
                row["before"],
                row["after"],
                row["output_change"],
                row["latency_ms_before"] / row["latency_ms_after"],
            )
        run.log_artifact(args.out / "analysis.json")


def table(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.sparsity import table as tables
    from pipeline.sparsity.figures import layer_plot

    analyses = {}
    for item in args.analysis:
        key, path = parse_pair(item, "--analysis")
        analyses[key] = tables.read_analysis(path)
    with stage_run("sparsity_table", {"analyses": len(analyses)}, args.rule, parse_wildcards(args.wildcard)) as run:
        frame = tables.build(analyses)
        with atomic_output(args.out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4g")
        layer_plot(tables.layer_profile(analyses), frame, args.figure)
        for key, analysis in analyses.items():
            run.set_tags(
                {
                    f"pipeline.row.{key.replace('/', '.')}.sparsity_run_id": analysis["sparsity_run_id"],
                    f"pipeline.row.{key.replace('/', '.')}.trained_run_id": analysis["trained_run_id"],
                }
            )
        for row in frame.to_dict("records"):
            prefix = f"{row['key'].replace('/', '.')}.{row['network']}"
            run.log_metrics({f"{prefix}.pruned_percent": row["pruned_percent"], f"{prefix}.speedup": row["speedup"]})
        run.log_artifact(args.out)
        run.log_artifact(args.figure)
        log.info("%d rows\n%s", len(frame), frame.drop(columns=["layers_pruned_percent"]).to_string(index=False))


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.sparsity", __doc__)

    p = commands.add_parser("analyse", help="inactive filters of one checkpoint, and the checkpoint without them")
    p.add_argument("--model", required=True, type=Path, help="a trained BodyNet checkpoint")
    p.add_argument("--train", required=True, type=Path, help="training samples (the activations are taken on them)")
    p.add_argument("--val", required=True, type=Path, help="validation samples (measures before and after)")
    p.add_argument("--out", required=True, type=Path, help="folder for analysis.json and pruned.pt")
    p.add_argument("--gamma-threshold", type=float, required=True, help="inactive below this BatchNorm |γ|")
    p.add_argument(
        "--activation-threshold",
        type=float,
        required=True,
        help="inactive when the rectified output never exceeds this",
    )
    p.add_argument("--activation-samples", type=int, required=True, help="training images to run (0: all)")
    p.add_argument("--latency-batch", type=int, required=True, help="images per timed forward pass")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    add_tracking_arguments(p)
    p.set_defaults(func=analyse)

    p = commands.add_parser("table", help="Mehta et al.'s Table D.1 for the analyses given, and the per-layer plot")
    p.add_argument("--analysis", action="append", required=True, metavar="KEY=PATH", help="analysis.json (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="the table (CSV)")
    p.add_argument("--figure", required=True, type=Path, help="the per-layer plot (PNG)")
    add_tracking_arguments(p)
    p.set_defaults(func=table)

    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
