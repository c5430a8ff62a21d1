"""The body fit's settings as command-line options, shared by every command that fits a
body (the evaluation, predict): one spelling of each option, one way to read them back."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import InputError
from pipeline.fitting.choices import MATCHINGS, OBJECTIVES

if TYPE_CHECKING:
    from pipeline.fitting.body_fit import FitSettings

# option (its dest) → FitSettings field
FIELDS = {
    "joint_steps": "joint_steps",
    "fit_steps": "steps",
    "max_vertices": "max_vertices",
    "objective": "objective",
    "matching": "matching",
}


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """--joint-steps, --fit-steps, --max-vertices, --objective, --matching and --pose-prior,
    none with a default of its own (see `fit_settings`)."""
    parser.add_argument("--joint-steps", type=int, help="fit iterations on the joints alone")
    parser.add_argument("--fit-steps", type=int, help="fit iterations on the whole objective")
    parser.add_argument("--max-vertices", type=int, help="vertices used for correspondences")
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        help="mean: weighted means, the joints as heavy as the surface; sum: Eq. 4.6's sums over the "
        "surfaces plus 5 × the joints' (the thesis's)",
    )
    parser.add_argument(
        "--matching",
        choices=MATCHINGS,
        help="every_step: the surface's nearest neighbours found anew at each step, the translation free; "
        "once: found once after the joint fit, the translation held (BodyNet's fitting code)",
    )
    parser.add_argument(
        "--pose-prior",
        type=Path,
        help="a learnt pose prior (results/fitting/pose_prior.npz) as the pose's cost; "
        "without it, the squared joint angles",
    )


def fit_settings(args: argparse.Namespace, required: bool) -> FitSettings:
    """The FitSettings the options name. `required`: each must be given (a workflow job,
    whose config holds them); else an option left out takes the value of the project's
    config.yaml (`evaluation.fit`), where the fit's settings are stated."""
    missing = [key for key in FIELDS if getattr(args, key) is None]
    if required and missing:
        raise InputError(f"fitting the body needs {', '.join(_option(key) for key in missing)}")
    from pipeline.fitting.body_fit import FitSettings, PosePrior  # torch: for the commands that fit

    given = {field: getattr(args, key) for key, field in FIELDS.items() if getattr(args, key) is not None}
    if missing:
        project = project_fit_section([_option(key) for key in missing])
        given |= {FIELDS[key]: project[FIELDS[key]] for key in missing}
    return FitSettings(**given, learnt_prior=PosePrior.load(args.pose_prior) if args.pose_prior else None)


def section_fit_settings(fit: dict, **extra: object) -> FitSettings:
    """The FitSettings of a config's `evaluation.fit` section (`extra`: the fields it does not
    hold, such as a learnt prior)."""
    from pipeline.fitting.body_fit import FitSettings

    return FitSettings(**{field: fit[field] for field in FIELDS.values()}, **extra)


def _option(key: str) -> str:
    return f"--{key.replace('_', '-')}"


def project_fit_section(options: list[str]) -> dict:
    """config.yaml's `evaluation.fit` section, from the project this package runs from, for
    the `options` a command was not given."""
    import yaml

    from pipeline.tracking import project_root

    path = project_root() / "config.yaml"
    try:
        return yaml.safe_load(path.read_text())["evaluation"]["fit"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise InputError(f"{path}: cannot read evaluation.fit ({error}); give {', '.join(options)} instead") from error


def fit_params(settings: FitSettings, args: argparse.Namespace) -> dict:
    """The fit's settings as run parameters, the learnt prior by its file."""
    params = {key: value for key, value in vars(settings).items() if key != "learnt_prior"}
    return params | {"learnt_prior": str(args.pose_prior) if args.pose_prior else None}
