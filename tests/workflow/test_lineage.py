"""Artifact lineage: DVC versioning what Snakemake makes (repro, push, pull, experiments),
and the trace of where an artifact came from."""

import hashlib
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import ROOT, copy_project, file_hashes, run, snakemake, write_config

sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
from workflow_jobs import plan  # noqa: E402

# the files a run writes for `dvc metrics show`
METRICS_FILES = ("summary.json", "metrics.json", "analysis.json")


def script(name: str, *args: str, cwd=ROOT, check: bool = True):
    return run([sys.executable, str(cwd / "workflow/scripts" / name), *args], cwd=cwd, check=check)


def under(path: str, folders) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in folders)


def test_dvc_versions_everything_the_default_target_makes():
    document = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    (stage,) = document["stages"].values()
    command = shlex.split(stage["cmd"])
    # Snakemake's default target, every option a flag: no target of its own
    assert command[0] == "snakemake" and all(word.startswith("-") or word.isalnum() for word in command[1:])
    assert stage["params"] == [{"config.yaml": None}]  # every value: Snakemake tells what it reaches
    assert {"Snakefile", "workflow/rules", "src/pipeline"} <= set(stage["deps"])
    outs = {name: options for out in stage["outs"] for name, options in out.items()}
    assert all(options["persist"] for options in outs.values())  # Snakemake, not DVC, decides what reruns
    jobs = plan()
    made = {path for job in jobs for path in job.outputs + job.logs}
    assert len(made) > 500 and all(under(path, outs) for path in made)
    assert all(under(folder, outs) for folder in document["metrics"])
    measures = {path for path in made if path.endswith(METRICS_FILES)}
    assert len(measures) > 50 and all(under(path, document["metrics"]) for path in measures)
    plots = {name for plot in document["plots"] for name in plot}
    histories = {path for path in made if re.fullmatch(r"results/bodynet/\w+/history.csv", path)}
    assert len(histories) >= 12 and plots == histories


@pytest.mark.slow
def test_dvc_versions_a_run_reruns_an_experiment_and_round_trips_through_the_remote(tiny_run, tmp_path):
    workdir, config_path = tiny_run
    first = tmp_path / "first"
    first.mkdir()
    copy_project(first)
    write_config(first / "config.yaml", yaml.safe_load(config_path.read_text()))
    for folder in ("results", "resources", "logs", ".snakemake/metadata"):
        shutil.copytree(workdir / folder, first / folder)
    run(["dvc", "commit", "--force", "--quiet"], cwd=first)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], cwd=first).stdout
    # each evaluation's measures as DVC metrics, each training stage's history as a plot
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], cwd=first).stdout)[""]["data"]
    voxels = metrics["results/evaluation/end_to_end_fvsv/summary.json"]["data"]
    summary = json.loads((first / "results/evaluation/end_to_end_fvsv/summary.json").read_text())
    assert voxels["measures"] == summary["measures"]
    assert "results/body_model/female/metrics.json" in metrics
    plots = json.loads(run(["dvc", "plots", "show", "--json"], cwd=first).stdout)["data"]
    assert "results/bodynet/voxels/history.csv" in plots
    assert "Running stage" not in run(["dvc", "repro"], cwd=first).stdout

    # push to the default remote (a folder beside the project), commit dvc.lock with the code;
    # a fresh clone of that commit pulls the artifacts with `make pull`
    run(["dvc", "push", "--quiet"], cwd=first)
    assert any((first / "dvc-remote").rglob("*"))
    shutil.copy2(ROOT / "Makefile", first / "Makefile")
    identity = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org"}
    identity |= {"GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org"}
    run(["git", "add", "-A"], cwd=first)
    run(["git", "commit", "-q", "-m", "A run's dvc.lock"], cwd=first, env=identity)
    second = tmp_path / "second"
    run(["git", "clone", "-q", str(first), str(second)], cwd=tmp_path)
    run(["dvc", "remote", "modify", "--local", "local", "url", str(first / "dvc-remote")], cwd=second)
    # the test's environment is installed already: make finds it up to date
    venv = Path(sys.executable).parent.parent
    make = ["make", f"VENV={venv}", "-o", f"{venv}/.installed"]
    run([*make, "pull"], cwd=second)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], cwd=second).stdout
    folders = ("results/**/*", "resources/**/*")
    pulled = file_hashes(second, folders)
    assert len(pulled) > 100 and pulled == file_hashes(first, folders)
    # Snakemake finds the pulled artifacts current (make pull marked them so once DVC checked them)
    assert "Nothing to be done" in snakemake(second, "-n", "--configfile", "config.yaml").stdout
    # pulled artifacts that another config made are not marked current
    # and Snakemake there, holding the run's records, reruns what a changed value reaches
    config = yaml.safe_load((second / "config.yaml").read_text())
    config["evaluation"]["fit"]["steps"] += 1
    write_config(second / "config.yaml", config)
    planned = snakemake(second, "-n", "--configfile", "config.yaml").stdout
    assert "evaluate_body_fit" in planned and "train_bodynet" not in planned and "render_clips" not in planned
    stale = run([*make, "pull"], cwd=second, check=False)
    assert stale.returncode != 0 and "not marking them current" in stale.stdout + stale.stderr
    # without dvc.lock there is nothing to pull, and make says so
    (second / "dvc.lock").unlink()
    missing = run([*make, "pull"], cwd=second, check=False)
    assert missing.returncode != 0 and "dvc.lock: not found" in missing.stdout + missing.stderr

    # an experiment with one value changed: DVC runs the stage, Snakemake reruns the jobs that
    # read the value and what follows from them (the jittered evaluations, their table, the
    # results page), nothing upstream
    jittered = ["results/evaluation/realtime/vnect_jittered/summary.json", "results/vnect_table.csv"]
    upstream = ["results/surreal/**/*", "results/bodynet/samples/**/*", "results/realtime/*/model.pt"]
    clips, before = file_hashes(first, upstream), file_hashes(first, jittered)
    jitter = yaml.safe_load((first / "config.yaml").read_text())["realtime"]["crop_jitter"] * 2
    run(["dvc", "exp", "run", "-S", f"config.yaml:realtime.crop_jitter={jitter}"], cwd=first)
    (log,) = (first / ".snakemake/log").glob("*.snakemake.log")  # the run the stage started
    ran = set(re.findall(r"^(?:local)?rule (\w+):", log.read_text(), re.M))
    assert ran == {"evaluate_vnect_jittered", "tabulate_evaluation", "results_page", "all"}
    assert file_hashes(first, upstream) == clips and file_hashes(first, jittered) != before
    locked = yaml.safe_load((first / "dvc.lock").read_text())["stages"]["pipeline"]["params"]["config.yaml"]
    assert locked["realtime"]["crop_jitter"] == jitter
    assert "Data and pipelines are up to date" in run(["dvc", "status"], cwd=first).stdout
    assert "Nothing to be done" in snakemake(first, "-n", "--configfile", "config.yaml").stdout


@pytest.mark.slow
def test_trace_names_every_step_its_inputs_config_and_runs(tiny_run):
    workdir, config = tiny_run
    result = script(
        "trace_artifact.py",
        "results/bodynet_table.csv",
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--json",
    )
    record = json.loads(result.stdout)
    assert record["artifact"] == "results/bodynet_table.csv"
    assert record["sha256"] == hashlib.sha256((workdir / "results/bodynet_table.csv").read_bytes()).hexdigest()
    head = run(["git", "rev-parse", "HEAD"], cwd=ROOT).stdout.strip()
    assert record["git"]["commit"] == head

    steps = record["steps"]
    rules = [step["rule"] for step in steps]
    assert rules[-1] == "tabulate_evaluation" and "results/bodynet_table.csv" in steps[-1]["outputs"]
    assert {
        "build_body_model",
        "prepare_motions",
        "render_clips",
        "prepare_bodynet_samples",
        "train_bodynet",
        "evaluate_body_fit",
    } <= set(rules)
    assert "extract_flow" not in rules and "train_sparsity_study" not in rules  # not on this artifact's chain
    # each step after the steps making its inputs
    made = set()
    for step in steps:
        assert all(path in made for path in step["inputs"] if path.startswith("results/bodynet/"))
        made |= set(step["outputs"])

    render = next(step for step in steps if step["rule"] == "render_clips" and step["wildcards"]["split"] == "train")
    assert render["config"]["synthesis"]["clip_length"] == 6 and render["config"]["seed"] == 0
    motions = workdir / "resources/motions/train.npz"
    assert render["inputs"]["resources/motions/train.npz"] == hashlib.sha256(motions.read_bytes()).hexdigest()

    client = MlflowClient(f"sqlite:///{workdir}/mlflow/mlflow.db")
    for step in steps:
        run_record = step["mlflow_run"]
        assert run_record is not None, step["rule"]
        found = client.get_run(run_record["run_id"])
        assert found.data.tags["pipeline.rule"] == step["rule"]
        assert json.loads(found.data.tags["pipeline.wildcards"]) == step["wildcards"]
        assert run_record["git_commit"] == head

    text = script(
        "trace_artifact.py", "results/bodynet_table.csv", "--directory", str(workdir), "--configfile", str(config)
    ).stdout
    assert text.startswith(f"results/bodynet_table.csv  sha256 {record['sha256'][:12]}")
    assert f"{len(steps)}. tabulate_evaluation table=bodynet_table" in text

    missing = script(
        "trace_artifact.py",
        "results/nothing.csv",
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        check=False,
    )
    assert missing.returncode != 0 and "results/nothing.csv" in missing.stderr
