"""MLflow tracking under hostile conditions: killed jobs, dead processes, unreachable servers,
moved projects and commands run from elsewhere."""

import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import ROOT
from pipeline import tracking
from pipeline.atomic import atomic_output
from pipeline.errors import InputError

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class PreviousHandlerCalled(Exception):
    """Raised by the handler a test installs before a stage runs (the process's own)."""


def previous_handler(signum, frame):
    raise PreviousHandlerCalled(signum)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One store (in <project>/mlflow) for the tests of this file: creating one costs seconds."""
    project = tmp_path_factory.mktemp("project")
    uri = tracking.default_tracking_uri(project)
    tracking.ensure_store(uri)
    return project, uri


@pytest.fixture
def store(shared_store, monkeypatch):
    """The shared store as the jobs' store, outside any pipeline invocation."""
    project, uri = shared_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv(tracking.PIPELINE_RUN_VARIABLE, "")
    monkeypatch.delenv(tracking.PIPELINE_RUN_VARIABLE)
    return project, uri


@pytest.fixture
def previous_handlers():
    """SIGTERM and SIGINT raise PreviousHandlerCalled while the test runs (so that a stage that
    does not handle them fails the test instead of ending pytest)."""
    saved = {signum: signal.signal(signum, previous_handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def raise_now(signum):
    signal.raise_signal(signum)


def send_from_a_timer(signum):
    threading.Timer(0.2, os.kill, (os.getpid(), signum)).start()
    time.sleep(5)  # interrupted by the signal


@pytest.mark.parametrize(
    "signum, send", [(signal.SIGTERM, raise_now), (signal.SIGINT, send_from_a_timer)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signalled_stage_ends_its_run_killed_and_leaves_no_partial_output(
    store, previous_handlers, tmp_path, signum, send
):
    output = tmp_path / "out" / "result.json"
    started = time.monotonic()
    with pytest.raises(BaseException) as caught:
        with tracking.stage_run("hostile", {"n": 1}, rule="a_rule") as run:
            with atomic_output(output) as partial:
                partial.write_text("{half")
                send(signum)
    assert time.monotonic() - started < 4
    assert not isinstance(caught.value, PreviousHandlerCalled)  # the stage's own handler took it
    assert MlflowClient(store[1]).get_run(run.run_id).info.status == "KILLED"
    assert list(output.parent.iterdir()) == []  # the temporary is gone, nothing half-written
    # the handlers the process had are back
    assert signal.getsignal(signal.SIGTERM) is previous_handler
    assert signal.getsignal(signal.SIGINT) is previous_handler


def test_a_signal_while_a_finished_run_is_written_lets_it_finish_then_stops(store, previous_handlers, monkeypatch):
    flush = tracking.StageRun.flush

    def flush_then_get_signalled(run):
        signal.raise_signal(signal.SIGTERM)
        flush(run)

    monkeypatch.setattr(tracking.StageRun, "flush", flush_then_get_signalled)
    with pytest.raises(BaseException) as caught:
        with tracking.stage_run("closing", {}) as run:
            pass
    assert isinstance(caught.value, SystemExit) and caught.value.code == 128 + signal.SIGTERM
    assert MlflowClient(store[1]).get_run(run.run_id).info.status == "FINISHED"
    assert signal.getsignal(signal.SIGTERM) is previous_handler


def test_a_stage_in_a_worker_thread_leaves_the_signal_handlers_alone(store, previous_handlers):
    outcome = {}

    def work():
        try:
            with tracking.stage_run("threaded", {}) as run:
                outcome["run"] = run.run_id
        except BaseException as error:  # reported to the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(30)
    assert "error" not in outcome
    assert MlflowClient(store[1]).get_run(outcome["run"]).info.status == "FINISHED"
    assert signal.getsignal(signal.SIGTERM) is previous_handler


def dead_pid() -> int:
    """A pid no process has now."""
    for pid in range(int(Path("/proc/sys/kernel/pid_max").read_text()) - 1, 1, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise RuntimeError("every pid is taken")


def test_runs_carry_the_host_and_process_that_opened_them(store):
    with tracking.stage_run("tagged", {}) as run:
        pass
    tags = MlflowClient(store[1]).get_run(run.run_id).data.tags
    assert tags["pipeline.host"] == socket.gethostname()
    assert tags["pipeline.pid"] == str(os.getpid())


def test_the_next_start_fails_the_runs_of_dead_processes_on_this_host_only(store, monkeypatch):
    _, uri = store
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.experiment_name()).experiment_id
    host, alive = socket.gethostname(), os.getpid()

    def running(**tags):
        return client.create_run(experiment, tags={key.replace("_", "."): str(v) for key, v in tags.items()})

    dead = running(pipeline_host=host, pipeline_pid=dead_pid()).info.run_id  # SIGKILLed
    live = running(pipeline_host=host, pipeline_pid=alive).info.run_id  # still working
    elsewhere = running(pipeline_host="node-17.cluster", pipeline_pid=dead_pid()).info.run_id  # another host
    untagged = client.create_run(experiment).info.run_id  # opened by something else: left alone
    parent = tracking.start_pipeline_run(uri, tracking.experiment_name(), {"seed": 1}, ["snakemake"])
    tracking.end_pipeline_run(uri, "FINISHED")
    assert client.get_run(parent).data.tags["pipeline.pid"] == str(alive)
    assert client.get_run(dead).info.status == "FAILED"
    assert "no longer runs" in client.get_run(dead).data.tags["pipeline.end_reason"]
    assert client.get_run(dead).info.end_time is not None
    assert client.get_run(live).info.status == "RUNNING"
    assert client.get_run(elsewhere).info.status == "RUNNING"
    assert client.get_run(untagged).info.status == "RUNNING"
    for run_id in (live, elsewhere, untagged):
        client.set_terminated(run_id)


def test_a_recycled_pid_does_not_keep_a_dead_run_running(store):
    """After a reboot or wrap-around the pid may belong to another process: the start time tells."""
    _, uri = store
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.experiment_name()).experiment_id
    tags = {"pipeline.host": socket.gethostname(), "pipeline.pid": str(os.getpid())}
    recycled = client.create_run(experiment, tags=tags | {"pipeline.process_started": "1000.0"}).info.run_id
    tracking.ensure_store(uri, sweep=True)
    assert client.get_run(recycled).info.status == "FAILED"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_server():
    """http://127.0.0.1:<port> of a server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop, held = threading.Event(), []

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


@pytest.fixture
def quick_probe(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracking, "SERVER_PROBE_SECONDS", 1.0, raising=False)


@pytest.fixture
def answering_server():
    """http://127.0.0.1:<port> of a server that answers /health and nothing else (404)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_server_that_answers_passes_the_check_even_with_an_error_status(quick_probe, answering_server):
    tracking.check_server(answering_server)
    tracking.check_server(f"{answering_server}/behind/a/prefix")  # 404: something answers


def assert_names_the_server(error: Exception, uri: str) -> None:
    message = str(error)
    assert "tracking.uri" in message and uri in message and "\n" not in message


def test_a_closed_tracking_port_fails_a_stage_at_once(quick_probe, monkeypatch):
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        with tracking.stage_run("unreachable", {}):
            pass
    assert time.monotonic() - started < 3
    assert_names_the_server(caught.value, uri)


def test_a_server_that_never_answers_fails_the_pipeline_start_within_seconds(quick_probe, silent_server):
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        tracking.start_pipeline_run(silent_server, "bodynet", {}, ["snakemake"])
    assert time.monotonic() - started < 4
    assert_names_the_server(caught.value, silent_server)


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*") if path.is_file()}


def test_a_copied_project_logs_its_artifacts_into_its_own_store(store, tmp_path, monkeypatch):
    old_project, old_uri = store
    artifact = tmp_path / "note.txt"
    artifact.write_text("written before the copy")
    with tracking.stage_run("before", {}) as run:
        run.log_artifact(artifact)
    before = run.run_id
    new_project = tmp_path / "moved"
    shutil.copytree(old_project, new_project)
    old_files = files_under(old_project)
    new_uri = tracking.default_tracking_uri(new_project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_uri)
    artifact.write_text("written after the copy")
    with tracking.stage_run("after", {}) as run:
        run.log_artifact(artifact)
    after = run.run_id
    assert files_under(old_project) == old_files  # nothing new in the old project
    new_artifacts = new_project / "mlflow" / "artifacts"
    assert (new_artifacts / after / "artifacts" / "note.txt").read_text() == "written after the copy"
    client = MlflowClient(new_uri)
    experiment = client.get_experiment_by_name(tracking.experiment_name())
    assert experiment.artifact_location == new_artifacts.as_uri()
    assert client.get_run(before).info.artifact_uri == f"{new_artifacts.as_uri()}/{before}/artifacts"
    assert [item.path for item in client.list_artifacts(before)] == ["note.txt"]
    # a run made before the copy writes into the new project too (here, in the process that made it)
    client.log_artifact(before, str(artifact), "later")
    assert (new_artifacts / before / "artifacts" / "later" / "note.txt").read_text() == "written after the copy"
    assert files_under(old_project) == old_files
    # the old project's store still points at its own folder
    assert MlflowClient(old_uri).get_run(before).info.artifact_uri.startswith(f"{old_project.as_uri()}/")


def test_the_default_store_is_the_checkouts_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{ROOT}/mlflow/mlflow.db"
    assert not (tmp_path / "mlflow").exists()


def make_project(folder: Path) -> Path:
    """A project folder (its Snakefile) with a results folder two levels deep, returned."""
    (folder / "results" / "deep").mkdir(parents=True)
    (folder / "Snakefile").write_text("")
    return folder / "results" / "deep"


def test_a_command_in_another_copy_of_the_project_uses_that_copys_store(tmp_path, monkeypatch):
    """One environment (this checkout's package) serving a copied project keeps the copy's runs in the copy."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(make_project(tmp_path / "copy"))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/copy/mlflow/mlflow.db"


def test_an_installed_copy_outside_any_project_stores_in_the_working_directory_and_says_so(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    installed = tmp_path / "site-packages" / "lib" / "pipeline"
    installed.mkdir(parents=True)
    monkeypatch.setattr(tracking, "PACKAGE_ROOT", installed)
    monkeypatch.chdir(make_project(tmp_path / "project"))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/project/mlflow/mlflow.db"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with caplog.at_level("WARNING", logger="pipeline.tracking"):
        assert tracking.tracking_uri() == f"sqlite:///{elsewhere}/mlflow/mlflow.db"
    assert any("Snakefile" in record.getMessage() for record in caplog.records)
