import copy
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from source_files import serve_files

ROOT = Path(__file__).resolve().parents[1]

# The smallest settings that still exercise every step of the body-model build.
TINY_ANNY = {
    "shape_samples": 60,
    "regressor_samples": 40,
    "age_range": [20, 70],
    "num_betas": 10,
    "eval_shapes": 4,
    "eval_poses": 2,
    "pose_sigma": 0.35,
}


TINY_SYNTHESIS = {
    "splits": ["train", "test", "shifted"],
    "genders": ["female"],
    "clip_length": 6,
    "shapes": 2,
    "outfits": 2,
    "workers": 1,
    "voxels": {"resolution": 16, "frames": "middle"},
}


# BodyNet's whole schedule, a few iterations per stage.
TINY_BODYNET = {
    "input_size": 32,
    "heatmap_size": 8,
    "voxel_size": 16,
    "hourglass": {"stacks": 1, "features": 8, "modules": 1, "depth": 3},
    "batch_size": 2,
    "end_to_end_batch_size": 2,
    "iterations": {
        "pose2d": 4,
        "segm": 4,
        "pose3d": 4,
        "voxels": 4,
        "voxels_fv": 2,
        "voxels_fvsv": 2,
        "end_to_end": 2,
        "shape_regression": 2,
        "depth": 2,
        "part_voxels": 2,
        "part_voxels_fvsv": 2,
        "input_variants": 2,
    },
    "eval_every": 2,
    "eval_samples": 4,
    "threads": 1,
    "device": "cpu",
}


TINY_SPARSITY = {
    "activation_samples": 8,
    "latency_batch": 2,
    "stages": ["pose2d", "end_to_end_fvsv"],
    "study": {
        "stage": "pose2d",
        "iterations": 2,
        "optimisers": {"adam": 1e-3},  # SGD's and L2's settings: tests/unit/test_sparsity.py
        "decays": ["decoupled"],
        "strengths": [1e-3],
    },
}


TINY_EVALUATION = {
    "batch_size": 4,
    "examples": 2,
    "reference_train_images": 16,
    # a row or a few of each study that trains a network per row: each of its rules runs,
    # each kind of input (several inputs, rendered and estimated flow) is read
    "rows": {
        "bodynet_table": ["smplify", "end_to_end_fvsv"],  # a fit of the 2D pose, and BodyNet's chain end to end
        "bodynet_inputs": ["segm+pose3d"],
        "pose3d_inputs": ["pose2d+segm"],
        "motion_inputs": ["rgb", "flow_estimated", "flow+pose2d_rendered"],
        "surreal_data_study": ["clips_10pc", "clips_100pc"],  # a share trained here, all clips: the stages
        "surreal_clothing_study": ["outfits_1"],  # the training split rendered again
        "surreal_compression_study": ["mp4_on_lossless"],  # the test split rendered again, lossless
        "bodynet_part_voxels": ["part_voxels_fvsv"],  # its stage trains part_voxels first
    },
    "fit": {
        "joint_steps": 4,
        "steps": 4,
        "max_vertices": 200,
        "objective": "mean",
        "matching": "every_step",
        "pose_prior": "mixture",
        "prior_components": 2,
    },
}


TINY_ACTIONS = {
    "dataset": {
        "actions": ["walk", "jump"],
        "performances": {"train": 2, "test": 1},
        "frames": 10,
        "width": 48,
        "height": 36,
    },
    "ltc": {
        "inputs": ["rgb", "rendered", "farneback"],
        "fusion_flow": "farneback",
        "extents": {"short": 4, "long": 8},
        "frame_size": [32, 24],
        "crop": 24,
        "iterations": 2,
        "batch_size": 2,
        "eval_every": 1,
        "threads": 1,
        "views": {"rows": ["a_v1", "s_v1_v2+a_v1", "c_v1_v2+a_v1_v2"], "input": "rendered", "extent": "short"},
    },
}


def tiny_config(**overrides) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["body_model"]["genders"] = ["female"]
    config["body_model"]["anny"] = copy.deepcopy(TINY_ANNY)  # callers may change what they get
    config["synthesis"].update(copy.deepcopy(TINY_SYNTHESIS))
    config["synthesis"]["motions"].update(
        {
            "train": ["kick"],
            "test": ["spin"],
            "shifted": ["spin"],
            "min_seconds": 0,
            "mirror": False,
            "variants": {"train": 1, "test": 0, "shifted": 0},
        }
    )
    config["bodynet"].update(copy.deepcopy(TINY_BODYNET))
    config["evaluation"].update(copy.deepcopy(TINY_EVALUATION))
    config["sparsity"].update(copy.deepcopy(TINY_SPARSITY))
    config["flow"]["clips"] = 1
    config["flow"]["methods"] = ["rendered", "farneback", "dis_medium", "tvl1"]  # each kind of method once
    config["flow"]["as_input"]["iterations"] = 2
    for section, values in copy.deepcopy(TINY_ACTIONS).items():
        for key, value in values.items():
            config["actions"][section][key] = value if key != "views" else config["actions"][section][key] | value
    return set_keys(config, overrides)


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
    for name in ("Snakefile", "config.yaml", "dvc.yaml", ".dvcignore", "pyproject.toml"):
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
    config = write_config(workdir / "tiny.yaml", tiny_config())
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir, config


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

    settings = BuildSettings(
        gender="female",
        shape_samples=TINY_ANNY["shape_samples"],
        regressor_samples=TINY_ANNY["regressor_samples"],
        eval_shapes=TINY_ANNY["eval_shapes"],
        eval_poses=TINY_ANNY["eval_poses"],
    )
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
