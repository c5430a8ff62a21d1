"""DVC sees the body-model stages and reproduces them."""

import pytest
import yaml
from conftest import ROOT, TINY_ANNY, copy_project, run


def test_dag_lists_the_body_model_stages():
    result = run(["dvc", "dag", "--md"], cwd=ROOT)
    for stage in ("build_body_model@female", "plot_body_model@neutral", "summarize_body_models"):
        assert stage in result.stdout


def test_stages_call_the_same_entry_points_as_the_rules():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    rules = (ROOT / "workflow/rules/body_model.smk").read_text()
    for name, stage in stages.items():
        command = stage.get("do", stage)["cmd"]
        assert f"--rule {name}" in command
        entry = " ".join(command.split()[:4])  # python -m pipeline.body_model <verb>
        assert f'"{entry} ' in rules, f"rule {name} does not run {entry}"


@pytest.mark.slow
def test_repro_builds_then_skips(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = copy_project(tmp_path)
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["body_model"]["genders"] = ["female"]
    config["body_model"]["anny"] = dict(TINY_ANNY)
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    run(["dvc", "repro", "plot_body_model@female"], cwd=project)
    assert (project / "resources/body_models/anny/smpl_female.pkl").exists()
    assert (project / "results/body_model/female/figure.png").exists()
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert {"build_body_model@female", "plot_body_model@female"} <= set(lock["stages"])
    assert (project / "mlflow/mlflow.db").exists()

    again = run(["dvc", "repro", "plot_body_model@female"], cwd=project)
    assert "didn't change, skipping" in again.stdout
    assert "Running stage" not in again.stdout

    config["body_model"]["anny"]["eval_poses"] = 1
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    status = run(["dvc", "status", "build_body_model@female"], cwd=project)
    assert "body_model.anny" in status.stdout  # the changed params are what DVC reports
