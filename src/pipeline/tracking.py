"""MLflow runs for pipeline stages.

Every stage that computes something opens one run with its parameters, metrics, artifacts
and the tags that say what produced it: the rule and its wildcards, the git commit, a hash
of the configuration, and the host and process that opened it. The store is
`MLFLOW_TRACKING_URI` when set (the workflow sets it from the config), else a SQLite
database at `mlflow/mlflow.db` in the project (`project_root`: the checkout, not the
working directory), given as an absolute path.

SQLite allows one writer at a time, and MLflow's schema creation is not safe to race: the
store and experiment are created once under a file lock (`ensure_store`, which the workflow
calls before any job starts), and every write to a SQLite store holds the same lock.

A run ends FINISHED, FAILED (the block raised) or KILLED (the job got SIGTERM or SIGINT). A
process killed outright (SIGKILL, a lost node) cannot end its run: the next invocation on the
same host marks the runs of its dead processes FAILED (`fail_abandoned_runs`).
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import logging
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext
from functools import cache
from pathlib import Path

from pipeline.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "bodynet"
STORE_DIR = Path("mlflow")
CONFIG_HASH_VARIABLE = "PIPELINE_CONFIG_HASH"
# The run of the pipeline invocation a job belongs to: its run nests under it.
PIPELINE_RUN_VARIABLE = "PIPELINE_RUN_ID"
PACKAGE_ROOT = Path(__file__).resolve().parent
# How long a tracking server may take to answer its first request before the command gives up.
SERVER_PROBE_SECONDS = 5.0


class TrackingServerUnreachable(InputError):
    """The tracking server (config `tracking.uri`) does not answer."""


def project_root() -> Path:
    """The project a command works in: the nearest folder holding a `Snakefile` from the
    working directory upward, else the checkout this package runs from (`src/pipeline/` two
    levels down), else the working directory (with a warning).

    The working directory comes first because one environment often serves several copies
    of the project (an editable install of one checkout, commands run in another copy, as
    DVC does in a copied project): each copy keeps its own store. A command started outside
    any project (from the home folder, /tmp) still finds the checkout of its code."""
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "Snakefile").is_file():
            return folder
    checkout = PACKAGE_ROOT.parent.parent
    if (checkout / "Snakefile").is_file():
        return checkout
    log.warning(
        "no Snakefile in %s or above it, nor a checkout around %s: the MLflow store goes to %s",
        cwd,
        PACKAGE_ROOT,
        cwd / STORE_DIR,
    )
    return cwd


def default_tracking_uri(root: str | Path = ".") -> str:
    """`sqlite:///<root>/mlflow/mlflow.db`, absolute. The workflow calls it with its working
    directory (where Snakemake's --directory puts the results) and exports the answer to its
    jobs; a command run on its own falls back to the project's (`tracking_uri`)."""
    return f"sqlite:///{(Path(root) / STORE_DIR / 'mlflow.db').resolve()}"


def tracking_uri() -> str:
    """The store a command logs into: MLFLOW_TRACKING_URI, else the project's own, wherever
    the command runs from (never a new store in whatever folder it was started in)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(project_root())


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


_answering_servers: set[str] = set()


def check_server(uri: str) -> None:
    """Raise TrackingServerUnreachable unless the HTTP(S) tracking server at `uri` answers
    within SERVER_PROBE_SECONDS (once per process; other stores pass).

    MLflow's own client retries a connection that fails with backoff
    (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=2,
    MLFLOW_HTTP_REQUEST_TIMEOUT=120 s a try, read at each request): about 4 minutes against a
    closed port, far longer against one that never answers. One plain request, without
    retries, tells first. Any HTTP answer counts, an error status included (a proxy or an
    authenticating front): MLflow's own calls, with their credentials and TLS settings
    (MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH), then report what is wrong.
    So the probe sends no credentials and does not verify the certificate: it only asks
    whether anything answers."""
    if not uri.startswith(("http://", "https://")) or uri in _answering_servers:
        return
    import ssl
    import urllib.error
    import urllib.request

    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_PROBE_SECONDS, context=unverified):
            pass
    except urllib.error.HTTPError:
        pass
    except (OSError, ValueError) as error:  # refused, timed out, reset, unknown host, or not a URL
        reason = getattr(error, "reason", error)
        raise TrackingServerUnreachable(f"tracking.uri: no MLflow server answers at {uri} ({reason})") from None
    _answering_servers.add(uri)


def ensure_store(uri: str | None = None, experiment: str | None = None, *, sweep: bool | None = None) -> str:
    """Create the store and the experiment if missing; return the experiment id.

    An existing SQLite store copied or moved from elsewhere is first made to keep its
    artifacts beside itself (`rebase_artifact_locations`). With `sweep` (by default: when no
    pipeline invocation has opened a run for this process, i.e. once per invocation) the runs
    of dead processes on this host are marked FAILED (`fail_abandoned_runs`)."""
    from mlflow.tracking import MlflowClient

    uri, experiment = uri or tracking_uri(), experiment or experiment_name()
    check_server(uri)
    if sweep is None:
        sweep = not os.environ.get(PIPELINE_RUN_VARIABLE)
    database = _sqlite_path(uri)
    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            location = _artifact_root(database) if database else None
            return client.create_experiment(experiment, artifact_location=location)
        if database is not None:
            rebase_artifact_locations(database, found.artifact_location)
        if sweep:
            fail_abandoned_runs(client, found.experiment_id)
        return found.experiment_id


def _artifact_root(database: Path) -> str:
    """The artifact location of a SQLite store's experiments: `artifacts/` beside it."""
    return (database.parent / "artifacts").as_uri()


# The columns of MLflow 3's schema that hold an artifact location derived from the experiment's.
_ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
)


def rebase_artifact_locations(database: Path, recorded: str) -> bool:
    """Point a SQLite store that was copied or moved at the `artifacts/` folder beside it;
    True when it had to. `recorded` is the experiment's artifact location as stored.

    MLflow keeps absolute artifact locations only: a relative one is resolved against the
    working directory when the experiment is created (`resolve_uri_if_local` in
    `SqlAlchemyStore.create_experiment`), each run's artifact_uri is the experiment's location
    with `<run id>/artifacts` appended at `create_run`, and the local artifact repository
    reads a relative path against the working directory, not the database's folder; the
    store's API has no call that changes them. So a copied project would write into the old
    project's folder. The store itself is therefore rewritten when it is opened: every
    location under the recorded `.../artifacts` (the experiments', the runs', logged models'
    and model versions') gets the current store's folder as its prefix, in one transaction,
    under the store's lock. Only locations of this layout (a `file:` URI ending in
    `/artifacts`) move: an artifact store elsewhere (a server, a bucket) is left as it is."""
    current = _artifact_root(database)
    if recorded == current or not recorded.startswith("file:") or not recorded.endswith("/artifacts"):
        return False
    if _uri_path(recorded).resolve() == _uri_path(current).resolve():  # the same folder spelled otherwise
        return False
    with closing(sqlite3.connect(database, timeout=30)) as db, db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in _ARTIFACT_COLUMNS:
            if table in tables:
                db.execute(
                    f"UPDATE {table} SET {column} = :new || substr({column}, :cut) "
                    f"WHERE {column} = :old OR substr({column}, 1, :cut) = :old || '/'",
                    {"new": current, "old": recorded, "cut": len(recorded) + 1},
                )
    _forget_artifact_repositories(recorded)
    log.warning("MLflow store %s was moved: its artifact locations %s now point at %s", database, recorded, current)
    return True


def _uri_path(uri: str) -> Path:
    from urllib.parse import unquote, urlsplit

    return Path(unquote(urlsplit(uri).path))


def _forget_artifact_repositories(prefix: str) -> None:
    """Drop MLflow's in-process cache of artifact repositories (by run id, whatever the store)
    for locations under `prefix`: they would still write to the old folder. Best effort: the
    cache is MLflow's private detail."""
    from mlflow.tracking._tracking_service import utils

    cached = getattr(utils, "_artifact_repos_cache", None)
    if not isinstance(cached, dict):
        return
    for key, repository in list(cached.items()):
        if str(getattr(repository, "artifact_uri", "")).startswith(prefix):
            cached.pop(key, None)


def _process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None when unknown."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def process_tags() -> dict[str, str]:
    """Tags naming the process that opens a run: host, pid, when the process started (tells a
    recycled pid) and its pid namespace (a container's pids are not the host's)."""
    tags = {"pipeline.host": socket.gethostname(), "pipeline.pid": str(os.getpid())}
    if (started := _process_started(os.getpid())) is not None:
        tags["pipeline.process_started"] = f"{started:.2f}"
    if namespace := _pid_namespace():
        tags["pipeline.pid_namespace"] = namespace
    return tags


def _process_gone(pid: int, started: str | None) -> bool:
    """Whether the process that tagged a run is no more: no such pid, a zombie, or a pid now
    held by a process that started at another time."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return started is not None and abs(process.create_time() - float(started)) > 1.0
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, OSError, ValueError):  # not ours to see: assume it lives
        return False


def _abandoned_here(tags: dict[str, str], me: dict[str, str]) -> bool:
    """Whether a RUNNING run's tags name a dead process of this host (and pid namespace)."""
    pid = tags.get("pipeline.pid", "")
    if tags.get("pipeline.host") != me["pipeline.host"] or not pid.isdigit():
        return False
    namespace = tags.get("pipeline.pid_namespace")
    if namespace and namespace != me.get("pipeline.pid_namespace", namespace):
        return False
    return _process_gone(int(pid), tags.get("pipeline.process_started"))


def fail_abandoned_runs(client, experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs of `experiment_id` whose process (tagged by
    `process_tags`) is dead on this host, tagging `pipeline.end_reason`; return their ids.
    Runs of other hosts (cluster nodes), of live processes, or without these tags are left
    alone. One search of RUNNING runs; the caller holds the store lock."""
    me = process_tags()
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=10_000)
    failed = []
    for run in running:
        tags = run.data.tags
        if not _abandoned_here(tags, me):
            continue
        reason = (
            f"process {tags['pipeline.pid']} on {tags['pipeline.host']} no longer runs; "
            f"marked FAILED by process {me['pipeline.pid']}"
        )
        client.set_tag(run.info.run_id, "pipeline.end_reason", reason)
        client.set_terminated(run.info.run_id, status="FAILED")
        log.warning("MLflow run %s (%s) was left RUNNING: %s", run.info.run_id, run.info.run_name, reason)
        failed.append(run.info.run_id)
    return failed


def config_hash(config: dict) -> str:
    """A short hash of a configuration's canonical JSON form."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def job_shell_prefix(python_folder: str | None, src: str, uri: str, experiment: str, config: dict) -> str:
    """What a workflow job's shell runs before its command: bash's strict mode (a failing
    command fails the job), the `python` of `python_folder` first on PATH (None: the job's
    environment provides it), the package of `src` importable, and the MLflow store,
    experiment and configuration hash its run is filed under, each quoted whole. (Braces
    doubled: the workflow formats the command once more.)"""
    path = f"PATH={shlex.quote(python_folder)}:$PATH " if python_folder else ""
    return (
        "set -euo pipefail; "
        f"export {path}PYTHONPATH={shlex.quote(src)}${{{{PYTHONPATH:+:$PYTHONPATH}}}} "
        f"MLFLOW_TRACKING_URI={shlex.quote(uri)} "
        f"MLFLOW_EXPERIMENT_NAME={shlex.quote(experiment)} "
        f"{CONFIG_HASH_VARIABLE}={config_hash(config)}; "
    )


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
        **process_tags(),
    }
    tags.update({f"pipeline.wildcard.{key}": value for key, value in wildcards.items()})
    if parent := os.environ.get(PIPELINE_RUN_VARIABLE):
        tags["mlflow.parentRunId"] = parent
    return tags


_pipeline_runs: list[str] = []  # opened by this process, not inherited from another


def start_pipeline_run(uri: str, experiment: str, config: dict, command: list[str]) -> str:
    """Open the run of one pipeline invocation (creating the store and experiment if
    missing, and failing the runs its host's dead processes left RUNNING) and hand its id to
    the jobs it starts (they inherit this process's environment): every job's run nests
    under it, so the store shows one expandable line per invocation."""
    from mlflow.tracking import MlflowClient

    experiment_id = ensure_store(uri, experiment, sweep=True)
    commit, dirty = git_state()
    tags = {
        "pipeline.invocation": "true",
        "pipeline.command": " ".join(command),
        "pipeline.config_hash": config_hash(config),
        "pipeline.git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
        "mlflow.source.name": "snakemake",
        **process_tags(),
    }
    client = MlflowClient(tracking_uri=uri)
    with store_lock(uri):
        run_id = client.create_run(experiment_id, run_name="pipeline", tags=tags).info.run_id
    os.environ[PIPELINE_RUN_VARIABLE] = run_id
    _pipeline_runs.append(run_id)
    return run_id


def end_pipeline_run(uri: str, status: str) -> None:
    """Close the invocation's run (FINISHED, FAILED or KILLED) that `start_pipeline_run`
    opened in this process; nothing when it opened none."""
    from mlflow.tracking import MlflowClient

    if _pipeline_runs:
        with store_lock(uri):
            MlflowClient(tracking_uri=uri).set_terminated(_pipeline_runs.pop(), status=status)
        os.environ.pop(PIPELINE_RUN_VARIABLE, None)


class StageInterrupted(SystemExit):
    """A stage stopped by SIGTERM or SIGINT (Snakemake interrupted, a cluster's scancel).

    A SystemExit, so that `except Exception` in a stage does not swallow it and, uncaught,
    it ends the process quietly with the shell's status for the signal, 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


ENDING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _EndingSignals:
    """While installed (main thread only: Python delivers signals there), the first SIGTERM or
    SIGINT raises StageInterrupted; once the run is being closed (`closing`), further signals
    are only recorded, so that the run's end is written whole."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.closing = False

    def handle(self, signum: int, frame) -> None:
        first = self.received is None
        self.received = self.received or signum
        if first and not self.closing:
            raise StageInterrupted(signum)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        # a signal the process ignores (SIGINT of a background job) stays ignored
        wanted = [signum for signum in ENDING_SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
        previous = {signum: signal.signal(signum, self.handle) for signum in wanted}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextmanager
def _brief_http_requests() -> Iterator[None]:
    """MLflow's HTTP requests without retries and with a short timeout (read at each request),
    for closing a run after a signal: a dead server must not hold the stopping job for minutes."""
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _close_run(run: StageRun, status: str) -> None:
    """Write the buffered metrics and end the run with `status`."""
    try:
        run.flush()
    finally:
        with store_lock(run.uri):
            run.client.set_terminated(run.run_id, status=status)


def _close_run_after(run: StageRun, error: BaseException) -> None:
    """End the run of a block that raised `error`: KILLED for a signal or an interrupt, else
    FAILED. A failure to reach the store is logged, not raised: `error` is what the caller
    must see (a run left RUNNING is failed by the next invocation)."""
    interrupted = isinstance(error, (StageInterrupted, KeyboardInterrupt))
    if isinstance(error, StageInterrupted):
        log.warning("stopped by %s: MLflow run %s ends KILLED", signal.Signals(error.signum).name, run.run_id)
    try:
        with _brief_http_requests() if interrupted else nullcontext():
            _close_run(run, "KILLED" if interrupted else "FAILED")
    except Exception as failure:  # reported: the block's own error is the one to raise
        log.warning("could not end MLflow run %s: %s", run.run_id, failure)


@contextmanager
def stage_run(
    stage: str,
    params: dict,
    rule: str | None = None,
    wildcards: dict[str, str] | None = None,
) -> Iterator[StageRun]:
    """Open a run named after the rule and its wildcards; it ends FAILED if the block raises,
    KILLED if the process gets SIGTERM or SIGINT meanwhile (then StageInterrupted is raised
    in the block, so that `atomic_output` and other cleanups run, and propagates)."""
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
    signals = _EndingSignals()
    with signals.installed():
        try:
            run.log_params(params)
            yield run
        except BaseException as error:
            signals.closing = True
            _close_run_after(run, error)
            raise
        signals.closing = True
        _close_run(run, "FINISHED")
    if signals.received is not None:  # arrived while the finished run was being closed
        raise StageInterrupted(signals.received)


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
