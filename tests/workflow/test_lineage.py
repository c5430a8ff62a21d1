"""Artifact lineage: dvc.yaml from the Snakefile, DVC's repro/push/pull, and the trace of
where an artifact came from."""

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import ROOT, copy_project, file_hashes, run, snakemake, write_config

sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
from dvc_params import expanded  # noqa: E402


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
    document = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages = expanded(document)
    assert len(document["stages"]) < len(stages) / 2  # a rule's jobs share one `foreach` stage
    dry = snakemake(ROOT, "-n", "-p", "--forceall", "results/body_model/female/metrics.json")
    printed = (dry.stdout + dry.stderr).splitlines()
    command = next(line[line.index("python -m") :] for line in printed if "python -m pipeline.body_model build" in line)
    build = stages["build_body_model@female"]
    assert build["params"] == [{"config.yaml": ["body_model.anny", "seed"]}]
    # the command, with the config's values as DVC fills them in from config.yaml
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    filled = re.sub(r"\$\{([\w.]+)\}", lambda match: str(config_value(config, match[1])), build["cmd"])
    # after the check of the values it holds written in (here the age range, a list)
    prefix = "mkdir -p logs/build_body_model && python workflow/scripts/dvc_params.py build_body_model@female "
    assert filled.startswith(prefix)
    digest, _, rest = filled.removeprefix(prefix).partition(" && ")
    assert re.fullmatch(r"[0-9a-f]{12}", digest) and rest == command
    assert "--seed ${seed}" in build["cmd"] and "--num-betas ${body_model.anny.num_betas}" in build["cmd"]
    assert "src/pipeline/body_model" in build["deps"] and "src/pipeline/tracking.py" in build["deps"]
    assert not any(dep.startswith("src/pipeline/flow") for dep in build["deps"])
    render = stages["render_clips@train_run0"]
    assert "resources/body_models/anny/smpl_female.pkl" in render["deps"]
    assert render["outs"][:2] == ["results/surreal/cmu/train/run0", "results/surreal/train_run0.csv"]
    assert "bodynet" not in render["params"][0]["config.yaml"]
    # a job reads its own entry of a section keyed by its wildcard, not its siblings'
    voxels = stages["train_bodynet@voxels"]
    assert "--iterations ${bodynet.iterations.voxels} " in voxels["cmd"]
    assert "bodynet.iterations.voxels" in voxels["params"][0]["config.yaml"]
    assert "bodynet.iterations.pose2d" not in voxels["params"][0]["config.yaml"]
    table = stages["tabulate_evaluation-bodynet_table"]
    assert "results/evaluation/end_to_end_fvsv/summary.json" in table["deps"]
    assert {"results/bodynet_table.csv", "logs/tabulate_evaluation/bodynet_table.log"} <= set(table["outs"])
    # the tracking store changes no result, so no stage reads it
    assert not any(
        key.startswith("tracking")
        for stage in stages.values()
        for key in stage.get("params", [{}])[0].get("config.yaml", [])
    )


def test_every_stage_passes_its_check_on_the_config_it_was_made_from(monkeypatch):
    import dvc_params

    monkeypatch.chdir(ROOT)
    checked = 0
    for name, stage in expanded(yaml.safe_load((ROOT / "dvc.yaml").read_text())).items():
        guard = re.search(r"dvc_params\.py (\S+) (\S+) && ", stage["cmd"])
        if guard:
            assert guard[1] == name
            assert dvc_params.main([name, guard[2]]) == 0, name
            checked += 1
    assert checked > 100
    # a job's check covers only what its command shows: an evaluation reads the fit's section,
    # but the pose prior's component count is the prior's job's; a render holds its passes
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    stages = expanded(yaml.safe_load((ROOT / "dvc.yaml").read_text()))
    fit, render = stages["evaluate_body_fit@end_to_end_fvsv"], stages["render_clips@train_run0"]
    assert "evaluation.fit" in fit["params"][0]["config.yaml"]
    assert "evaluation.fit.prior_components" not in dvc_params.guarded(config, ["evaluation.fit"], fit["cmd"])
    assert "synthesis.passes" in dvc_params.guarded(config, render["params"][0]["config.yaml"], render["cmd"])


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
    nodes = dict(re.findall(r"(node\d+)\[\"?([\w@-]+)\"?\]", graph))
    edges = {(nodes[a], nodes[b]) for a, b in re.findall(r"(node\d+)-->(node\d+)", graph)}
    assert ("build_body_model@female", "render_clips@train_run0") in edges
    assert ("train_bodynet@voxels_fvsv", "train_bodynet-end_to_end_fvsv") in edges
    assert ("evaluate_body_fit@end_to_end_fvsv", "tabulate_evaluation-bodynet_table") in edges


def stage_name(project, rule: str, key: str) -> str:
    """A job's DVC stage: `<rule>@<key>` where it shares its rule's `foreach` stage, else `<rule>-<key>`."""
    names = expanded(yaml.safe_load((project / "dvc.yaml").read_text()))
    return next(name for name in (f"{rule}@{key}", f"{rule}-{key}") if name in names)


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
    table_stage = stage_name(first, "tabulate_evaluation", "bodynet_table")
    forced = run(["dvc", "repro", "--force", "--single-item", table_stage], cwd=first)
    assert forced.stdout.count("Running stage") == 1
    assert (first / "results/bodynet_table.csv").read_bytes() == table  # the same command, the same bytes
    client = MlflowClient(f"sqlite:///{first}/mlflow/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("bodynet").experiment_id])
    assert [r.data.tags["pipeline.rule"] for r in runs] == ["tabulate_evaluation"]

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
    assert len(pulled) > 100 and pulled == {k: v for k, v in file_hashes(first, folders).items() if k in pulled}
    # Snakemake finds the pulled artifacts current (make pull marked them so once DVC checked them)
    config = ["--configfile", "config.yaml"]
    assert "Nothing to be done" in snakemake(second, "-n", "results/bodynet_table.csv", *config).stdout
    # without dvc.lock there is nothing to pull, and make says so
    (second / "dvc.lock").unlink()
    missing = run([*make, "pull"], cwd=second, check=False)
    assert missing.returncode != 0 and "dvc.lock: not found" in missing.stdout + missing.stderr

    # one config key changed, as `dvc exp run -S` changes it, dvc.yaml left as it is: DVC sees
    # exactly the stages that read it, and runs them with the new value
    config = yaml.safe_load((first / "config.yaml").read_text())
    config["bodynet"]["iterations"]["voxels"] += 1
    write_config(first / "config.yaml", config)
    status = yaml.safe_load(run(["dvc", "status", "--json"], cwd=first).stdout)
    assert set(status) == {stage_name(first, "train_bodynet", "voxels")}
    config["bodynet"]["iterations"]["voxels"] -= 1
    config["evaluation"]["fit"]["steps"] = 5
    write_config(first / "config.yaml", config)
    assert script("export_dvc.py", "results/bodynet_table.csv", "--check", cwd=first, check=False).returncode == 0
    status = yaml.safe_load(run(["dvc", "status", "--json"], cwd=first).stdout)
    assert status and {re.split("[@-]", name)[0] for name in status} == {"evaluate_body_fit", "evaluate_reference"}
    fit_stage = stage_name(first, "evaluate_body_fit", "end_to_end_fvsv")
    dry = run(["dvc", "repro", "--dry", "--single-item", fit_stage], cwd=first).stdout
    assert "--fit-steps 5 " in dry and "${" not in dry
    # a value a command holds written in (a list): the stage stops, naming it, and runs nothing
    config["synthesis"]["passes"].remove("normal")
    write_config(first / "config.yaml", config)
    render_stage = stage_name(first, "render_clips", "train_run0")
    manifest = (first / "results/surreal/train_run0.csv").read_bytes()
    stopped = run(["dvc", "repro", "--single-item", render_stage], cwd=first, check=False)
    assert stopped.returncode != 0
    assert "config.yaml: synthesis.passes: stage" in stopped.stdout + stopped.stderr
    assert "make dvc.yaml" in stopped.stdout + stopped.stderr
    run(["dvc", "checkout", "--quiet", render_stage], cwd=first)
    assert (first / "results/surreal/train_run0.csv").read_bytes() == manifest


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
