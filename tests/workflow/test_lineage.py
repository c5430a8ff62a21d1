"""Artifact lineage: dvc.yaml from the Snakefile, DVC's repro/push/pull, and the trace of
where an artifact came from."""

import hashlib
import json
import re
import shutil
import sys

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import ROOT, copy_project, file_hashes, run, snakemake, write_config


def script(name: str, *args: str, cwd=ROOT, check: bool = True):
    return run([sys.executable, str(cwd / "workflow/scripts" / name), *args], cwd=cwd, check=check)


def config_value(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def test_dvc_yaml_is_what_the_snakefile_gives():
    result = script("export_dvc.py", "--check", check=False)
    assert result.returncode == 0, result.stderr


def test_dvc_stages_run_the_jobs_commands_with_their_code_and_config():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    dry = snakemake(ROOT, "-n", "-p", "--forceall", "results/body_model/female/metrics.json")
    printed = (dry.stdout + dry.stderr).splitlines()
    command = next(line[line.index("python -m") :] for line in printed if "python -m pipeline.body_model build" in line)
    build = stages["build_body_model-female"]
    assert build["params"] == [{"config.yaml": ["body_model.anny", "seed"]}]
    # the command, with the config's values as DVC fills them in from config.yaml
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    filled = re.sub(r"\$\{([\w.]+)\}", lambda match: str(config_value(config, match[1])), build["cmd"])
    # after the check of the values it holds written in (here the age range, a list)
    prefix = "mkdir -p logs/build_body_model && python workflow/scripts/dvc_params.py build_body_model-female "
    assert filled.startswith(prefix)
    digest, _, rest = filled.removeprefix(prefix).partition(" && ")
    assert re.fullmatch(r"[0-9a-f]{12}", digest) and rest == command
    assert "--seed ${seed}" in build["cmd"] and "--num-betas ${body_model.anny.num_betas}" in build["cmd"]
    assert "src/pipeline/body_model" in build["deps"] and "src/pipeline/tracking.py" in build["deps"]
    assert not any(dep.startswith("src/pipeline/flow") for dep in build["deps"])
    render = stages["render_clips-train_run0"]
    assert "resources/body_models/anny/smpl_female.pkl" in render["deps"]
    assert render["outs"][:2] == ["results/surreal/cmu/train/run0", "results/surreal/train_run0.csv"]
    assert "bodynet" not in render["params"][0]["config.yaml"]
    table = stages["tabulate_evaluation-bodynet_table"]
    assert "results/evaluation/end_to_end_fvsv/summary.json" in table["deps"]
    assert {"results/bodynet_table.csv", "logs/tabulate_evaluation/bodynet_table.log"} <= set(table["outs"])
    # the tracking store and the cluster's resources change no result, so no stage reads them
    assert not any(
        key.startswith(("tracking", "cluster"))
        for stage in stages.values()
        for key in stage.get("params", [{}])[0].get("config.yaml", [])
    )


def test_dvc_yaml_out_of_date_with_the_config_is_caught(tmp_path):
    project = copy_project(tmp_path)
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["synthesis"]["passes"].remove("normal")
    write_config(project / "config.yaml", config)
    result = script("export_dvc.py", "--check", cwd=project, check=False)
    assert result.returncode == 1
    assert "dvc.yaml is out of date" in result.stderr and "--passes segm depth" in result.stderr
    # a value DVC reads from config.yaml itself leaves dvc.yaml as it is
    config["synthesis"]["clip_length"] = 40
    write_config(project / "config.yaml", config)
    script("export_dvc.py", cwd=project)
    assert "--clip-length ${synthesis.clip_length}" in (project / "dvc.yaml").read_text()
    assert script("export_dvc.py", "--check", cwd=project, check=False).returncode == 0


def test_dvc_dag_draws_the_stages_and_their_edges():
    graph = run(["dvc", "dag", "--mermaid"], cwd=ROOT).stdout
    nodes = dict(re.findall(r"(node\d+)\[\"?([\w-]+)\"?\]", graph))
    edges = {(nodes[a], nodes[b]) for a, b in re.findall(r"(node\d+)-->(node\d+)", graph)}
    assert ("build_body_model-female", "render_clips-train_run0") in edges
    assert ("train_bodynet-voxels_fvsv", "train_bodynet-end_to_end_fvsv") in edges
    assert ("evaluate_body_fit-end_to_end_fvsv", "tabulate_evaluation-bodynet_table") in edges


def dvc_project(destination, tiny_run, target: str):
    """A copy of the project on the tiny config, its dvc.yaml made for `target`."""
    workdir, config_path = tiny_run
    destination.mkdir()
    project = copy_project(destination)
    config = yaml.safe_load(config_path.read_text())
    write_config(project / "config.yaml", config)
    script("export_dvc.py", target, cwd=project)
    return project


@pytest.mark.slow
def test_dvc_reproduces_the_table_and_round_trips_through_the_remote(tiny_run, tmp_path):
    workdir, _ = tiny_run
    first = dvc_project(tmp_path / "first", tiny_run, "results/bodynet_table.csv")
    for folder in ("results", "resources", "logs"):
        shutil.copytree(workdir / folder, first / folder)
    run(["dvc", "commit", "--force", "--quiet"], cwd=first)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], cwd=first).stdout
    # each evaluation's measures as DVC metrics, each stage's training history as a plot
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], cwd=first).stdout)[""]["data"]
    voxels = metrics["results/evaluation/end_to_end_fvsv/summary.json"]["data"]
    assert (
        voxels["measures"]
        == json.loads((first / "results/evaluation/end_to_end_fvsv/summary.json").read_text())["measures"]
    )
    plots = json.loads(run(["dvc", "plots", "show", "--json"], cwd=first).stdout)["data"]
    assert "results/bodynet/voxels/history.csv" in plots

    table = (first / "results/bodynet_table.csv").read_bytes()
    assert "Running stage" not in run(["dvc", "repro"], cwd=first).stdout
    forced = run(["dvc", "repro", "--force", "--single-item", "tabulate_evaluation-bodynet_table"], cwd=first)
    assert forced.stdout.count("Running stage") == 1
    assert (first / "results/bodynet_table.csv").read_bytes() == table  # the same command, the same bytes
    client = MlflowClient(f"sqlite:///{first}/mlflow/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("bodynet").experiment_id])
    assert [r.data.tags["pipeline.rule"] for r in runs] == ["tabulate_evaluation"]

    # push to the default remote (a folder beside the project); pull into a second copy
    run(["dvc", "push", "--quiet"], cwd=first)
    assert any((first / "dvc-remote").rglob("*"))
    second = dvc_project(tmp_path / "second", tiny_run, "results/bodynet_table.csv")
    shutil.copy2(first / "dvc.lock", second / "dvc.lock")
    run(["dvc", "remote", "modify", "--local", "local", "url", str(first / "dvc-remote")], cwd=second)
    run(["dvc", "pull", "--quiet"], cwd=second)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], cwd=second).stdout
    folders = ("results/**/*", "resources/**/*")
    pulled = file_hashes(second, folders)
    assert len(pulled) > 100 and pulled == {k: v for k, v in file_hashes(first, folders).items() if k in pulled}

    # A checkout sets every mtime to now, in no particular order, and Snakemake compares
    # mtimes: `make pull` marks the pulled outputs current once DVC has checked them.
    config = ["--configfile", "config.yaml"]
    snakemake(second, "--touch", "--cores", "1", "results/bodynet_table.csv", *config)
    assert "Nothing to be done" in snakemake(second, "-n", "results/bodynet_table.csv", *config).stdout

    # one config key changed, as `dvc exp run -S` changes it, dvc.yaml left as it is: DVC sees
    # exactly the stages whose rule reads it, and runs them with the new value
    config = yaml.safe_load((first / "config.yaml").read_text())
    config["evaluation"]["fit"]["steps"] = 5
    write_config(first / "config.yaml", config)
    assert script("export_dvc.py", "results/bodynet_table.csv", "--check", cwd=first, check=False).returncode == 0
    status = yaml.safe_load(run(["dvc", "status", "--json"], cwd=first).stdout)
    assert status and {name.split("-")[0] for name in status} == {"evaluate_body_fit", "evaluate_reference"}
    dry = run(["dvc", "repro", "--dry", "--single-item", "evaluate_body_fit-end_to_end_fvsv"], cwd=first).stdout
    assert "--fit-steps 5 " in dry and "${" not in dry
    # a value a command holds written in: the stage stops, naming it, and runs nothing
    config["evaluation"]["reference_train_images"] += 1
    write_config(first / "config.yaml", config)
    fit = (first / "results/evaluation/end_to_end_fvsv/summary.json").read_bytes()
    stopped = run(["dvc", "repro", "--single-item", "evaluate_body_fit-end_to_end_fvsv"], cwd=first, check=False)
    assert stopped.returncode != 0
    assert "config.yaml: evaluation.reference_train_images: stage" in stopped.stdout + stopped.stderr
    assert "make dvc.yaml" in stopped.stdout + stopped.stderr
    run(["dvc", "checkout", "--quiet", "evaluate_body_fit-end_to_end_fvsv"], cwd=first)
    assert (first / "results/evaluation/end_to_end_fvsv/summary.json").read_bytes() == fit


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
