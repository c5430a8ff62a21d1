import json
import multiprocessing
import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from conftest import ROOT
from pipeline import tracking


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One store for the tests that do not need a new one: creating one costs seconds."""
    uri = tracking.default_tracking_uri(tmp_path_factory.mktemp("project"))
    tracking.ensure_store(uri)
    return uri


@pytest.fixture
def tracking_env(shared_store, monkeypatch):
    """The module's store as the store of the runs a test logs in-process."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_store)
    return shared_store


def test_stage_run_is_read_back_with_its_tags(tmp_path, monkeypatch, tracking_env):
    monkeypatch.setenv(tracking.CONFIG_HASH_VARIABLE, "abc123")
    artifact = tmp_path / "metrics.json"
    artifact.write_text(json.dumps({"iou": 0.5}))
    with tracking.stage_run(
        "body_model",
        {"shape_samples": 60, "anny": {"age": [20, 70]}},
        rule="build_body_model",
        wildcards={"gender": "female"},
    ) as run:
        run.log_metrics({"loss": 2.0}, step=0)
        run.log_metrics({"loss": 1.0}, step=1)
        run.log_artifact(artifact)
    client = MlflowClient(tracking_env)
    found = client.get_run(run.run_id)
    assert found.info.status == "FINISHED"
    assert found.info.run_name == "build_body_model[gender=female]"
    assert found.data.params == {"shape_samples": "60", "anny.age": "[20, 70]"}
    assert found.data.metrics == {"loss": 1.0}
    assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [2.0, 1.0]
    tags = found.data.tags
    assert tags["pipeline.rule"] == "build_body_model"
    assert json.loads(tags["pipeline.wildcards"]) == {"gender": "female"}
    assert tags["pipeline.wildcard.gender"] == "female"
    assert tags["pipeline.config_hash"] == "abc123"
    # the commit of the code's own repository, wherever the job runs (tests run elsewhere)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags["mlflow.source.git.commit"] == (head or "unknown")
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["metrics.json"]


def test_system_metrics_sample_the_machine_while_a_stage_runs_and_once_at_its_end(tracking_env):
    import time

    import numpy as np

    with tracking.stage_run("training", {}) as run, tracking.system_metrics(run, every=0.1):
        busy = time.monotonic() + 0.5
        while time.monotonic() < busy:  # keep a core busy and hold 200 MB
            block = np.ones(25_000_000)
        run.log_metrics({"loss": float(block[0])}, step=1)  # the job's own metrics, from another thread
    client = MlflowClient(tracking_env)
    memory = client.get_metric_history(run.run_id, "system/process_memory_megabytes")
    assert len(memory) >= 4 and [m.step for m in memory] == list(range(len(memory)))
    assert max(m.value for m in memory) > 200
    cpu = [m.value for m in client.get_metric_history(run.run_id, "system/cpu_utilization_percentage")]
    assert len(cpu) == len(memory) and 0 < max(cpu) <= 100
    assert 0 < client.get_run(run.run_id).data.metrics["system/system_memory_usage_percentage"] < 100
    assert client.get_run(run.run_id).data.metrics["loss"] == 1.0


def test_a_failing_stage_marks_its_run_failed(tracking_env):
    with pytest.raises(RuntimeError):
        with tracking.stage_run("body_model", {}, rule="build_body_model") as run:
            raise RuntimeError("boom")
    assert MlflowClient(tracking_env).get_run(run.run_id).info.status == "FAILED"


def test_a_store_under_a_given_folder_is_an_absolute_sqlite_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking.default_tracking_uri(".") == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert tracking.default_tracking_uri(tmp_path / "a" / "..") == f"sqlite:///{tmp_path}/mlflow/mlflow.db"


def test_the_default_store_is_in_the_project_root(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.project_root() == ROOT
    assert tracking.tracking_uri() == f"sqlite:///{ROOT}/mlflow/mlflow.db"


def test_a_job_outside_the_workflow_tags_the_hash_of_the_config_it_reads(tmp_path, monkeypatch):
    monkeypatch.delenv(tracking.CONFIG_HASH_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.job_config_hash() == "unknown"
    (tmp_path / "config.yaml").write_text("seed: 3\nbodynet: {threads: 1}\n")
    assert tracking.job_config_hash() == tracking.config_hash({"bodynet": {"threads": 1}, "seed": 3})
    monkeypatch.setenv(tracking.CONFIG_HASH_VARIABLE, "abc123")
    assert tracking.job_config_hash() == "abc123"


def test_config_hash_ignores_key_order():
    assert tracking.config_hash({"a": 1, "b": {"c": 2}}) == tracking.config_hash({"b": {"c": 2}, "a": 1})
    assert tracking.config_hash({"a": 1}) != tracking.config_hash({"a": 2})


def _log_runs(uri: str, worker: int, count: int) -> None:
    os.environ["MLFLOW_TRACKING_URI"] = uri
    for index in range(count):
        with tracking.stage_run("worker", {"worker": worker}, wildcards={"i": str(index)}) as run:
            for step in range(20):
                run.log_metrics({"value": float(step)}, step=step)


def test_parallel_jobs_on_a_new_store_lose_nothing(tmp_path):
    """Jobs that start together race to create the store; every run must land whole."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_log_runs, args=(uri, w, 3)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) == 12
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(len(client.get_metric_history(run.info.run_id, "value")) == 20 for run in runs)


def test_a_commands_code_is_the_modules_it_can_import():
    from pipeline.tracking import PACKAGE_ROOT, code_version, module_sources

    flow = {str(path.relative_to(PACKAGE_ROOT)) for path in module_sources("pipeline.flow.__main__")}
    assert {"flow/__main__.py", "flow/score.py", "flow/methods.py", "tracking.py", "__init__.py"} <= flow
    assert "synthesis/renderer.py" not in flow and "training/loop.py" not in flow
    training = {str(path.relative_to(PACKAGE_ROOT)) for path in module_sources("pipeline.training.__main__")}
    assert "flow/storage.py" in training  # imported inside a function
    assert len(code_version("pipeline.flow.__main__")) == 16
    assert code_version("pipeline.flow.__main__") != code_version("pipeline.training.__main__")


def test_a_pipelines_jobs_nest_under_its_invocation_run(tmp_path, tracking_env, monkeypatch):
    # the variable absent now and after the test, whatever the test sets in between
    monkeypatch.setenv(tracking.PIPELINE_RUN_VARIABLE, "")
    monkeypatch.delenv(tracking.PIPELINE_RUN_VARIABLE)
    with tracking.stage_run("alone", {}) as run:
        alone = run.run_id
    parent = tracking.start_pipeline_run(tracking_env, "bodynet", {"seed": 1}, ["snakemake", "--cores", "2"])
    with tracking.stage_run("child", {"x": 1}, rule="a_rule") as run:
        child = run.run_id
    tracking.end_pipeline_run(tracking_env, "FINISHED")
    client = MlflowClient(tracking_env)
    invocation = client.get_run(parent)
    assert invocation.info.status == "FINISHED" and invocation.data.tags["pipeline.invocation"] == "true"
    assert invocation.data.tags["pipeline.command"] == "snakemake --cores 2"
    assert invocation.data.tags["pipeline.config_hash"] == tracking.config_hash({"seed": 1})
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent
    assert "mlflow.parentRunId" not in client.get_run(alone).data.tags
    assert tracking.PIPELINE_RUN_VARIABLE not in os.environ  # closed: later runs nest under nothing
    tracking.end_pipeline_run(tracking_env, "FAILED")  # none open: nothing to close
    assert client.get_run(parent).info.status == "FINISHED"
