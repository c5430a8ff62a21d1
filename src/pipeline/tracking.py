"""MLflow runs for pipeline stages.

Every stage that computes something opens one run with its parameters, metrics, artifacts
and the tags that say what produced it: the rule and its wildcards, the git commit, and a
hash of the configuration. The store is `MLFLOW_TRACKING_URI` when set (the workflow sets
it from the config), else a SQLite database at `mlflow/mlflow.db` under the working
directory, given as an absolute path.

SQLite allows one writer at a time, and MLflow's schema creation is not safe to race: the
store and experiment are created once under a file lock (`ensure_store`, which the workflow
calls before any job starts), and every write to a SQLite store holds the same lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

DEFAULT_EXPERIMENT = "bodynet"
STORE_DIR = Path("mlflow")
CONFIG_HASH_VARIABLE = "PIPELINE_CONFIG_HASH"
# The run of the pipeline invocation a job belongs to: its run nests under it.
PIPELINE_RUN_VARIABLE = "PIPELINE_RUN_ID"


def default_tracking_uri(root: str | Path = ".") -> str:
    return f"sqlite:///{(Path(root) / STORE_DIR / 'mlflow.db').resolve()}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside a SQLite store (no-op for other stores)."""
    database = _sqlite_path(uri)
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_store(uri: str | None = None, experiment: str | None = None) -> str:
    """Create the store and the experiment if missing; return the experiment id."""
    from mlflow.tracking import MlflowClient

    uri, experiment = uri or tracking_uri(), experiment or experiment_name()
    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        database = _sqlite_path(uri)
        location = (database.parent / "artifacts").as_uri() if database else None
        return client.create_experiment(experiment, artifact_location=location)


def config_hash(config: dict) -> str:
    """A short hash of a configuration's canonical JSON form."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


PACKAGE_ROOT = Path(__file__).resolve().parent


@cache
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the repository holding this package's code, wherever the job runs;
    ('unknown', False) for an installed copy outside a repository."""
    git = ["git", "-C", str(PACKAGE_ROOT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())


def _module_file(name: str) -> Path | None:
    """The source file of a `pipeline` module or package, or None."""
    parts = name.split(".")[1:]
    candidate = PACKAGE_ROOT.joinpath(*parts)
    if candidate.with_suffix(".py").is_file():
        return candidate.with_suffix(".py")
    if (candidate / "__init__.py").is_file():
        return candidate / "__init__.py"
    return None


@cache
def _imported(path: Path) -> tuple[str, ...]:
    """The `pipeline` modules a source file names in its imports (inside functions too)."""
    import ast

    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.startswith("pipeline")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return tuple(names)


def module_sources(entry: str) -> list[Path]:
    """Every `pipeline` source file that running module `entry` can import (imports inside
    functions included), with the packages' `__init__.py` on the way: its code."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        parents = [".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)]
        for module in [name, *parents]:
            path = _module_file(module)
            if path is not None and path not in seen:
                seen.add(path)
                todo += _imported(path)
    return sorted(seen)


@cache
def code_version(entry: str) -> str:
    """A hash of the code module `entry` runs (`module_sources`): it changes exactly when
    that code does."""
    digest = hashlib.sha256()
    for path in module_sources(entry):
        digest.update(str(path.relative_to(PACKAGE_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _entry_module() -> str | None:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None and spec.name.startswith("pipeline.") else None


def _flatten(values: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class StageRun:
    """An open MLflow run; metrics are buffered and written in batches."""

    FLUSH_SECONDS = 10.0

    def __init__(self, client, run_id: str, uri: str) -> None:
        self.client, self.run_id, self.uri = client, run_id, uri
        self._pending: list = []
        self._last_flush = time.monotonic()
        self._metrics_lock = threading.Lock()  # the job's loop and its system sampler both log

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        entries = [Param(k, str(v)[:6000]) for k, v in _flatten(params).items()]
        with store_lock(self.uri):
            for start in range(0, len(entries), 100):
                self.client.log_batch(self.run_id, params=entries[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        with self._metrics_lock:
            self._pending += [Metric(k, float(v), now, step) for k, v in _flatten(metrics).items()]
        if time.monotonic() - self._last_flush > self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._metrics_lock:
            pending, self._pending, self._last_flush = self._pending, [], time.monotonic()
        with store_lock(self.uri):
            for start in range(0, len(pending), 500):
                self.client.log_batch(self.run_id, metrics=pending[start : start + 500])

    def set_tags(self, tags: dict[str, object]) -> None:
        from mlflow.entities import RunTag

        with store_lock(self.uri):
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        with store_lock(self.uri):
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def tag_evaluated(self, trained_run_id: str) -> None:
        """Tag this run with the run that trained what it measures and, where that run
        registered its network, the model version (`<name>/<version>`)."""
        from mlflow.exceptions import MlflowException

        tags = {"pipeline.evaluated_run_id": trained_run_id}
        try:
            trained = self.client.get_run(trained_run_id).data.tags
        except MlflowException:  # trained outside this store
            trained = {}
        if version := trained.get("pipeline.model_version"):
            tags["pipeline.evaluated_model_version"] = version
        self.set_tags(tags)

    def log_model(self, module, example, outputs, registered_name: str) -> str:
        """A torch `module` as this run's MLflow model (artifact `model`), its signature that
        of `example` → `outputs` (numpy arrays) and `example` its input example, registered as
        a new version of `registered_name`: `mlflow.pytorch.load_model("models:/<name>/<version>")`
        gives the module back. Returns the version."""
        import tempfile

        import mlflow.pytorch
        import torch
        from mlflow.exceptions import MlflowException
        from mlflow.models import infer_signature
        from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model"
            # pickled, not traced (pt2): the networks take options and return their outputs per
            # stack by name, which a traced graph does not keep
            mlflow.pytorch.save_model(
                module,
                path,
                signature=infer_signature(example, outputs),
                input_example=example,
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
                serialization_format="pickle",
            )
            with store_lock(self.uri):
                self.client.log_artifacts(self.run_id, str(path), "model")
                try:
                    self.client.create_registered_model(registered_name)
                except MlflowException as error:
                    if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                        raise
                version = self.client.create_model_version(
                    registered_name, f"runs:/{self.run_id}/model", run_id=self.run_id
                )
        self.set_tags({"pipeline.model_version": f"{registered_name}/{version.version}"})
        return version.version


@contextmanager
def system_metrics(run: StageRun, every: float = 10.0) -> Iterator[None]:
    """Sample the machine while the block runs, every `every` seconds and once at its end
    (step = sample), under MLflow's names for system metrics: system/cpu_utilization_percentage
    (the whole machine's, since the sample before), system/system_memory_usage_megabytes and
    _percentage, system/process_memory_megabytes (this job's resident memory) and, where CUDA
    runs, system/gpu_0_memory_usage_megabytes (what torch holds)."""
    import psutil

    process = psutil.Process()
    psutil.cpu_percent(None)  # the first reading only starts the interval
    stop = threading.Event()
    samples = itertools.count()

    def sample() -> None:
        memory = psutil.virtual_memory()
        metrics = {
            "system/cpu_utilization_percentage": psutil.cpu_percent(None),
            "system/system_memory_usage_megabytes": (memory.total - memory.available) / 2**20,
            "system/system_memory_usage_percentage": memory.percent,
            "system/process_memory_megabytes": process.memory_info().rss / 2**20,
        }
        torch = sys.modules.get("torch")  # never imported for this
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            metrics["system/gpu_0_memory_usage_megabytes"] = torch.cuda.max_memory_reserved() / 2**20
        run.log_metrics(metrics, step=next(samples))

    def sampler() -> None:
        while not stop.wait(every):
            sample()

    thread = threading.Thread(target=sampler, name="system-metrics", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sample()


def job_config_hash() -> str:
    """The hash of the configuration a job runs under: the workflow's, which it exports; for a
    job run outside the workflow (a DVC stage), that of ./config.yaml, the file DVC's stages
    read their parameters from; else 'unknown'."""
    if exported := os.environ.get(CONFIG_HASH_VARIABLE):
        return exported
    import yaml

    try:
        return config_hash(yaml.safe_load(Path("config.yaml").read_text()))
    except (OSError, yaml.YAMLError):
        return "unknown"


def run_tags(stage: str, rule: str | None, wildcards: dict[str, str]) -> dict[str, str]:
    commit, dirty = git_state()
    tags = {
        "pipeline.stage": stage,
        "pipeline.rule": rule or stage,
        "pipeline.wildcards": json.dumps(wildcards, sort_keys=True),
        "pipeline.config_hash": job_config_hash(),
        "pipeline.git_dirty": str(dirty).lower(),
        "pipeline.code_version": code_version(entry) if (entry := _entry_module()) else "unknown",
        "mlflow.source.git.commit": commit,
        "mlflow.source.name": f"pipeline.{stage}",
    }
    tags.update({f"pipeline.wildcard.{key}": value for key, value in wildcards.items()})
    if parent := os.environ.get(PIPELINE_RUN_VARIABLE):
        tags["mlflow.parentRunId"] = parent
    return tags


_pipeline_runs: list[str] = []  # opened by this process, not inherited from another


def start_pipeline_run(uri: str, experiment: str, config: dict, command: list[str]) -> str:
    """Open the run of one pipeline invocation (creating the store and experiment if
    missing) and hand its id to the jobs it starts (they inherit this process's
    environment): every job's run nests under it, so the store shows one expandable line
    per invocation."""
    import socket

    from mlflow.tracking import MlflowClient

    experiment_id = ensure_store(uri, experiment)
    commit, dirty = git_state()
    tags = {
        "pipeline.invocation": "true",
        "pipeline.command": " ".join(command),
        "pipeline.host": socket.gethostname(),
        "pipeline.config_hash": config_hash(config),
        "pipeline.git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
        "mlflow.source.name": "snakemake",
    }
    client = MlflowClient(tracking_uri=uri)
    with store_lock(uri):
        run_id = client.create_run(experiment_id, run_name="pipeline", tags=tags).info.run_id
    os.environ[PIPELINE_RUN_VARIABLE] = run_id
    _pipeline_runs.append(run_id)
    return run_id


def end_pipeline_run(uri: str, status: str) -> None:
    """Close the invocation's run (FINISHED or FAILED) that `start_pipeline_run` opened in
    this process; nothing when it opened none."""
    from mlflow.tracking import MlflowClient

    if _pipeline_runs:
        with store_lock(uri):
            MlflowClient(tracking_uri=uri).set_terminated(_pipeline_runs.pop(), status=status)
        os.environ.pop(PIPELINE_RUN_VARIABLE, None)


@contextmanager
def stage_run(
    stage: str,
    params: dict,
    rule: str | None = None,
    wildcards: dict[str, str] | None = None,
) -> Iterator[StageRun]:
    """Open a run named after the rule and its wildcards; it ends FAILED if the block raises."""
    from mlflow.tracking import MlflowClient

    wildcards = wildcards or {}
    uri = tracking_uri()
    experiment_id = ensure_store(uri)
    client = MlflowClient(tracking_uri=uri)
    suffix = ",".join(f"{k}={v}" for k, v in sorted(wildcards.items()))
    name = f"{rule or stage}[{suffix}]" if suffix else (rule or stage)
    with store_lock(uri):
        run_id = client.create_run(experiment_id, run_name=name, tags=run_tags(stage, rule, wildcards)).info.run_id
    run = StageRun(client, run_id, uri)
    run.log_params(params)
    try:
        yield run
    except BaseException:
        run.flush()
        with store_lock(uri):
            client.set_terminated(run_id, status="FAILED")
        raise
    run.flush()
    with store_lock(uri):
        client.set_terminated(run_id, status="FINISHED")


def add_tracking_arguments(parser) -> None:
    """`--rule` and `--wildcard KEY=VALUE`: what the run is tagged with."""
    group = parser.add_argument_group("tracking")
    group.add_argument("--rule", help="name of the workflow rule running this (run name and tag)")
    group.add_argument(
        "--wildcard",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a wildcard of the rule's job (repeatable; tagged on the run)",
    )


def parse_wildcards(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise ValueError(f"--wildcard expects KEY=VALUE, got {value!r}")
        pairs[key] = item
    return pairs
