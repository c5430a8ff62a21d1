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
    assert {requirement_name(r) for r in project["dependencies"]} - ORCHESTRATION == {requirement_name(r) for r in pip}


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
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "usage: python -m pipeline.body_model" in result.stdout


# The package's layers, lowest first: a module imports only from its own subpackage and from
# layers below its own (`pipeline.<name>` is a subpackage or a top-level module).
LAYERS = (
    {"errors", "atomic", "seeding"},
    {"cli", "figures", "tracking"},
    {"clips", "body_model", "models"},
    {"synthesis", "fitting"},
    {"datasets", "flow", "sources"},
    {"training"},
    {"evaluation", "sparsity"},
)


def package_imports() -> dict[str, set[str]]:
    """{subpackage: the other subpackages it imports}, function-level imports included."""
    import ast

    package = ROOT / "src/pipeline"
    imports: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        own = path.relative_to(package).with_suffix("").parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "pipeline":
                names = [f"pipeline.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            parts = [name.split(".") for name in names]
            imports.setdefault(own, set()).update(
                p[1] for p in parts if p[0] == "pipeline" and len(p) > 1 and p[1] != own
            )
    return imports


def test_every_import_runs_down_the_layers():
    layer = {name: level for level, names in enumerate(LAYERS) for name in names}
    imports = package_imports()
    assert set(imports) <= set(layer), f"subpackages without a layer: {set(imports) - set(layer)}"
    upward = {(a, b) for a, targets in imports.items() for b in targets if layer[b] >= layer[a]}
    assert not upward, f"imports within or up the layers: {sorted(upward)}"
