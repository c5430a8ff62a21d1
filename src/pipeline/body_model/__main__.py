"""Body-model stage: build the free SMPL-format model from anny, draw a model, summarise.

python -m pipeline.body_model build --gender female --out smpl_female.pkl --metrics m.json
python -m pipeline.body_model plot --model smpl_female.pkl --out figure.png
python -m pipeline.body_model summarize --metrics m1.json m2.json --out summary.csv
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.cli import command_parser, run_command, settings_from
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.body_model")


def build(args: argparse.Namespace) -> None:
    import numpy as np

    from pipeline.atomic import write_json
    from pipeline.body_model.anny_rig import AnnyRig
    from pipeline.body_model.build import BuildSettings, build_body_model
    from pipeline.body_model.model import write_model_file

    settings = settings_from(BuildSettings, args)
    if settings.regressor_samples > settings.shape_samples:
        raise SystemExit("--regressor-samples cannot exceed --shape-samples")
    with stage_run("body_model", vars(settings), args.rule, parse_wildcards(args.wildcard)) as run:
        rig = AnnyRig.load()
        arrays, metrics = build_body_model(rig, settings)
        # anny's pose correctives are zero; float32 halves the file with no loss.
        arrays["posedirs"] = arrays["posedirs"].astype(np.float32)
        write_model_file(args.out, arrays)
        write_json(args.metrics, metrics)
        run.log_metrics(metrics)
        run.log_artifact(args.metrics)
        for name, value in metrics.items():
            log.info("%s = %.4g", name, value)


def plot(args: argparse.Namespace) -> None:
    import torch

    from pipeline.body_model.figure import plot_body_model
    from pipeline.body_model.model import BodyModel

    model = BodyModel.from_file(args.model)
    with torch.no_grad():
        rest = model(torch.zeros(1, model.num_betas), torch.zeros(1, 72))
    vertices, joints = rest.vertices[0].numpy(), rest.joints[0].numpy()
    height = float(vertices[:, 1].max() - vertices[:, 1].min())
    stats = {
        "num_vertices": model.num_vertices,
        "num_faces": len(model.faces),
        "num_betas": model.num_betas,
        "template_height_m": height,
    }
    title = args.title or Path(args.model).stem
    title += f": {model.num_vertices} vertices, {len(model.faces)} faces, height {height:.2f} m"
    params = {"model": str(args.model)}
    with stage_run("body_model_figure", params, args.rule, parse_wildcards(args.wildcard)) as run:
        plot_body_model(vertices, model.faces, model.bodynet_parts, joints, title, args.out)
        run.log_metrics(stats)
        run.log_artifact(args.out)


def summarize(args: argparse.Namespace) -> None:
    import pandas as pd

    from pipeline.atomic import atomic_output

    rows = []
    for path in args.metrics:
        metrics = json.loads(Path(path).read_text())
        rows.append({"model": Path(path).parent.name, **metrics})
    table = pd.DataFrame(rows)
    with stage_run("body_model_summary", {"inputs": args.metrics}, args.rule) as run:
        with atomic_output(args.out) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        run.log_artifact(args.out)
    print(table.to_string(index=False))


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.body_model", __doc__)

    p = commands.add_parser("build", help="build an SMPL-format model from anny")
    p.add_argument("--gender", required=True, choices=["female", "male", "neutral"])
    p.add_argument("--out", required=True, type=Path, help="model file to write (.pkl)")
    p.add_argument("--metrics", required=True, type=Path, help="JSON file for the measured figures")
    p.add_argument("--shape-samples", type=int, required=True, help="bodies for the shape PCA")
    p.add_argument("--regressor-samples", type=int, required=True, help="bodies for the joint regressor")
    p.add_argument("--eval-shapes", type=int, required=True, help="held-out bodies for the measurements")
    p.add_argument("--eval-poses", type=int, required=True, help="random poses per held-out body")
    p.add_argument("--pose-sigma", type=float, required=True, help="std (rad) of each pose parameter")
    p.add_argument("--age-range", type=float, nargs=2, required=True, metavar=("MIN", "MAX"))
    p.add_argument("--num-betas", type=int, required=True, help="shape coefficients kept")
    p.add_argument("--seed", type=int, required=True)
    add_tracking_arguments(p)
    p.set_defaults(func=build)

    p = commands.add_parser("plot", help="front and side views of a model, parts coloured")
    p.add_argument("--model", required=True, type=Path, help="SMPL-format model (.pkl or .npz)")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p.add_argument("--title", help="figure title (default: the model's file name)")
    add_tracking_arguments(p)
    p.set_defaults(func=plot)

    p = commands.add_parser("summarize", help="one CSV row per built model's metrics")
    p.add_argument("--metrics", required=True, nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    add_tracking_arguments(p)
    p.set_defaults(func=summarize)

    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
