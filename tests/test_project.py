"""The project's files agree with each other."""

import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import ROOT

# Orchestration tools the user's environment needs but the jobs' environment does not.
ORCHESTRATION = {"snakemake", "snakemake-executor-plugin-slurm", "dvc"}


def requirement_name(requirement: str) -> str:
    for separator in ("==", ">=", "<=", "~=", ">", "<"):
        requirement = requirement.split(separator)[0]
    return requirement.strip().lower()


def test_conda_env_lists_the_package_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs/pipeline.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert {requirement_name(r) for r in project["dependencies"]} - ORCHESTRATION == {
        requirement_name(r) for r in pip
    }


def test_every_rule_names_the_conda_env_log_and_benchmark():
    for rules in (ROOT / "workflow/rules").glob("*.smk"):
        blocks = re.split(r"^rule ", rules.read_text(), flags=re.MULTILINE)[1:]
        for block in blocks:
            name = block.split(":")[0]
            for directive in ("log:", "benchmark:", "conda:", "tracking("):
                assert directive in block, f"rule {name} in {rules.name} lacks {directive}"
            assert f'tracking("{name}")' in block, f"rule {name} tags its runs with another name"


@pytest.mark.parametrize("command", [["build"], ["plot"], ["summarize"], []])
def test_entry_points_have_help(command):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.body_model", *command, "--help"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0
    assert "usage: python -m pipeline.body_model" in result.stdout
