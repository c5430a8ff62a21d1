"""The project's files agree with each other."""

import functools
import re
import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_the_conda_env_pins_the_versions_the_tests_run_with():
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pinned[requirement_name(name)] = version.strip()
    pinned["torch"] = re.search(r"^TORCH_VERSION \?= (\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    env = yaml.safe_load((ROOT / "envs/pipeline.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    for requirement in pip:
        name, _, version = requirement.partition("==")
        assert version == pinned[requirement_name(name)], f"envs/pipeline.yaml: {requirement}"


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


def entry_modules() -> list[str]:
    """Every module `python -m` runs: each package's __main__, and modules with a main guard."""
    package = ROOT / "src/pipeline"
    mains = [path for path in package.rglob("*.py") if 'if __name__ == "__main__":' in path.read_text()]
    return sorted(".".join(("pipeline", *path.relative_to(package).with_suffix("").parts)) for path in mains)


@pytest.mark.parametrize("module", entry_modules())
def test_every_entry_point_describes_itself(module):
    import importlib

    parser = importlib.import_module(module).build_parser()
    assert f"python -m {module.removesuffix('.__main__')}" in parser.format_help()


# The package's layers, lowest first: a module imports only from its own subpackage and from
# layers below its own (`pipeline.<name>` is a subpackage or a top-level module).
LAYERS = (
    {"errors", "atomic", "seeding"},
    {"cli", "config", "figures", "images", "listing", "meters", "tracking"},
    {"clips", "body_model", "models"},
    {"synthesis", "fitting"},
    {"datasets", "flow", "sources"},
    {"training"},
    {"evaluation", "sparsity"},
    {"actions", "realtime", "mosaic", "sim2real"},
    {"video_mesh"},  # the action clips' renderer, VNect's 1 Euro filter
    # the trained models on the user's own images and videos: BodyNet's, and the mesh-video
    # models' (`predict.video`), so above every study whose networks it runs
    {"predict"},
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


# How a job runs, not what it computes: the rules may pass them, the commands keep a default.
RUNTIME_OPTIONS = {"--device", "--threads", "--workers"}


def entry_parser(module: str):
    """The parser of `python -m <module>` (a package's __main__, or a module)."""
    import importlib

    try:
        return importlib.import_module(f"{module}.__main__").build_parser()
    except ModuleNotFoundError:
        return importlib.import_module(module).build_parser()


@functools.cache
def command_parsers() -> dict[tuple[str, str], tuple]:
    """{(module, command): (its parser, the argument lists the rules give it)} from every job
    of the default target as Snakemake plans it (in this process). A module without
    subcommands has the command ''."""
    import shlex

    sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
    from workflow_jobs import plan

    commands: dict[tuple[str, str], tuple] = {}
    for job in plan():
        words = shlex.split(job.command)
        for i, word in enumerate(words[:-1]):
            if word == "-m" and words[i + 1].startswith("pipeline."):
                module, rest = words[i + 1], words[i + 2 :]
                end = next((k for k, w in enumerate(rest) if w in {">", "&&", "|", ";"}), len(rest))
                parser = entry_parser(module)
                if parser.commands:
                    key, parser, argv = (module, rest[0]), parser.commands[rest[0]], rest[1:end]
                else:
                    key, argv = (module, ""), rest[:end]
                commands.setdefault(key, (parser, []))[1].append(argv)
    return commands


def test_the_package_trains_a_stage_as_the_workflow_does():
    """`stage_settings` (what benchmarks and studies train with) gives each stage the settings
    its workflow rule gives it, read back from the rule's command."""
    from pipeline.cli import settings_from
    from pipeline.training.loop import TrainSettings, stage_settings

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    parser, runs = command_parsers()[("pipeline.training", "train")]
    checked = set()
    for argv in runs:
        args = parser.parse_args(argv)
        if args.out != Path("results/bodynet") / args.stage:  # input variants and studies: their own schedules
            continue
        from_rule = settings_from(TrainSettings, args, checkpoint_every=args.eval_every)
        assert stage_settings(config["bodynet"], args.stage, config["seed"]) == from_rule, args.stage
        checked.add(args.stage)
    assert {"pose2d", "pose3d", "voxels", "end_to_end_fvsv"} <= checked


def test_options_the_config_always_sets_have_no_default_of_their_own():
    """Every rule's command parses, and an option that every run of a command is given (from
    the config) has no default that could disagree with the config: the config is its one
    source. An option only some runs are given keeps its default (BodyNet's RMSprop, its
    inputs), which those runs override."""
    commands = command_parsers()
    assert len(commands) >= 15
    restated = []
    for (module, command), (sub, runs) in sorted(commands.items()):
        for argv in runs:
            sub.parse_args(argv)  # exits (fails the test) on an option a rule lacks or misspells
        for option_strings, default in sub.single_value_options:
            if set(option_strings) & RUNTIME_OPTIONS:
                continue
            if all(set(option_strings) & set(argv) for argv in runs) and default is not None:
                restated.append(f"{module} {command} {option_strings[0]} (default {default!r})")
    assert not restated, "options the config always sets but with a default of their own: " + "; ".join(restated)


def test_every_config_key_is_described_once_in_the_schema_and_laid_out_in_the_docs():
    import importlib.util

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    undescribed = []

    def walk(node: dict, where: str) -> None:
        for name, child in node.get("properties", {}).items():
            if not child.get("description", "").strip():
                undescribed.append(where + name)
            walk(child, f"{where}{name}.")

    walk(schema, "")
    for name, definition in schema["$defs"].items():
        walk(definition, f"$defs.{name}.")
    assert not undescribed, f"keys the schema does not describe: {undescribed}"
    assert not [line for line in (ROOT / "config.yaml").read_text().splitlines()[4:] if "#" in line], (
        "config.yaml describes keys itself: their descriptions belong in the schema"
    )
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "workflow/scripts/config_reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    assert reference.main(["--check"]) == 0, "docs/config.md is out of date: run `make docs/config.md`"
    page = (ROOT / "docs/config.md").read_text()
    assert '| `evaluation.fit.matching` | `"every_step"` | every_step: the surface\'s nearest' in page


def test_the_readme_table_is_the_one_on_the_generated_results_page():
    """Both are written from the same run's CSVs by `python -m pipeline.evaluation page
    --readme`: a figure in the README that the results page lacks was typed by hand."""
    from pipeline.evaluation.page import README_BEGIN, README_END

    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_BEGIN) + len(README_BEGIN) : readme.index(README_END)]
    results = (ROOT / "docs/results.md").read_text()
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| row")]
    assert len(rows) >= 4
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert all(f"| {cell} |" in results for cell in cells if cell), row


def test_settings_the_config_always_sets_have_no_default_of_their_own():
    """A field of a settings dataclass that its config section holds has no default that could
    disagree with the config: the config is its one source (the option test above, for the
    dataclasses the commands fill)."""
    from dataclasses import MISSING, fields

    from pipeline.actions.dataset import ActionSettings
    from pipeline.actions.train import LTCSettings
    from pipeline.body_model.build import BuildSettings
    from pipeline.datasets.surreal import SampleSizes
    from pipeline.evaluation.exemplars import ExemplarSettings
    from pipeline.fitting.body_fit import FitSettings
    from pipeline.models.bodynet import BodyNetConfig, HourglassConfig
    from pipeline.models.selecsls import SelecSLSConfig
    from pipeline.mosaic.classify import ClassifierSettings
    from pipeline.mosaic.engine import MosaicSettings
    from pipeline.realtime.train import VNectSettings
    from pipeline.sim2real.dataset import Sim2RealData
    from pipeline.sim2real.network import TemporalConfig
    from pipeline.sim2real.occlude import OcclusionSettings
    from pipeline.sim2real.train import Sim2RealTrainSettings
    from pipeline.sparsity.analyse import SparsitySettings
    from pipeline.synthesis.generate import SynthesisSettings
    from pipeline.synthesis.handheld import HandheldSettings
    from pipeline.training.loop import TrainSettings
    from pipeline.video_mesh.data import MeshClipSettings
    from pipeline.video_mesh.network import MeshNetworkConfig
    from pipeline.video_mesh.train import MeshTrainSettings

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    bodynet = config["bodynet"]
    sections = {  # each dataclass: the config's settings it is made from, under the fields' names
        TrainSettings: {"seed": 0, **bodynet, **bodynet["augmentation"]},
        BodyNetConfig: bodynet,
        HourglassConfig: bodynet["hourglass"],
        SampleSizes: {name: bodynet[f"{name}_size"] for name in ("input", "heatmap")} | {"voxels": 0},
        SynthesisSettings: {"seed": 0, **config["synthesis"]},
        SparsitySettings: config["sparsity"],
        LTCSettings: {"seed": 0, **config["actions"]["ltc"], **config["actions"]["ltc"]["views"]},
        BuildSettings: {"seed": 0, **config["body_model"]["anny"]},
        ActionSettings: {"seed": 0, **config["actions"]["dataset"]},
        FitSettings: config["evaluation"]["fit"],
        ExemplarSettings: config["evaluation"]["pose3d_readout"],
        SelecSLSConfig: bodynet["selecsls"],
        VNectSettings: {"seed": 0, **config["realtime"]["vnect"]},
        MosaicSettings: config["mosaic"],
        ClassifierSettings: {"seed": 0, **config["mosaic"]["classifier"]},
        MeshClipSettings: {"seed": 0, **config["video_mesh"]["dataset"]},
        MeshNetworkConfig: config["video_mesh"]["network"],
        MeshTrainSettings: {"seed": 0, **config["video_mesh"]["train"], **config["video_mesh"]["train"]["video"]},
        Sim2RealData: {"seed": 0, "construction": "full", **config["sim2real"]["dataset"]},
        HandheldSettings: config["sim2real"]["dataset"]["camera"],
        OcclusionSettings: config["sim2real"]["dataset"]["occlusion"],
        TemporalConfig: {"channels": 18, **config["sim2real"]["network"]},
        Sim2RealTrainSettings: {"seed": 0, **config["sim2real"]["train"]},
    }
    restated = [
        f"{settings.__name__}.{field.name} (default {field.default!r})"
        for settings, section in sections.items()
        for field in fields(settings)
        if field.name in section and (field.default is not MISSING or field.default_factory is not MISSING)
    ]
    assert not restated, "fields the config sets but with a default of their own: " + "; ".join(restated)


def source_trees():
    """(path, parsed module) of every file of the package."""
    import ast

    for path in sorted((ROOT / "src" / "pipeline").rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_every_third_party_import_is_a_declared_dependency():
    """What the package imports from outside itself and the standard library is installed by
    a dependency pyproject.toml names (a module's distribution, e.g. cv2 → opencv)."""
    import ast
    from importlib.metadata import packages_distributions

    declared = {
        requirement_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    distributions = packages_distributions()
    undeclared = set()
    for path, tree in source_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"pipeline"}:
                found = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
                if not found & declared:
                    undeclared.add(f"{top} ({path.relative_to(ROOT)}: {sorted(found) or 'not installed'})")
    assert not undeclared, "imported but not a dependency: " + "; ".join(sorted(undeclared))


def test_no_error_is_swallowed_whole():
    """No handler catches every error (bare, Exception, BaseException) only to pass: an error
    the code did not foresee surfaces."""
    import ast

    swallowed = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in source_trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.ExceptHandler)
        and (node.type is None or (isinstance(node.type, ast.Name) and node.type.id in {"Exception", "BaseException"}))
        and all(isinstance(statement, ast.Pass) for statement in node.body)
    ]
    assert not swallowed, f"errors swallowed at {', '.join(swallowed)}"


def test_the_readme_maps_every_stage_to_code_that_exists():
    """The README's stage table names every rule file, and each rule file, package and doc it
    names exists."""
    lines = (ROOT / "README.md").read_text().split("\n## ")[0].splitlines()
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| ") and not line.startswith("| stage")]
    assert len(rows) >= 10
    rule_files, missing = set(), []
    for _, rules, packages, docs, _ in rows:
        rule_files |= set(re.findall(r"`(\w+\.smk)`", rules))
        for package in re.findall(r"`(pipeline(?:\.\w+)*)`", packages):
            path = ROOT / "src" / package.replace(".", "/")
            if not (path.is_dir() or path.with_suffix(".py").is_file()):
                missing.append(package)
        missing += [doc for doc in re.findall(r"\]\(([^)#]+)", docs) if not (ROOT / doc).is_file()]
    missing += sorted(name for name in rule_files if not (ROOT / "workflow/rules" / name).is_file())
    assert not missing, f"the stage table names what does not exist: {missing}"
    on_disk = {path.name for path in (ROOT / "workflow/rules").glob("*.smk")} - {"common.smk"}
    assert rule_files == on_disk, f"rule files the stage table lacks: {sorted(on_disk - rule_files)}"


def test_the_tiny_config_is_a_valid_config():
    """workflow/configs/tiny.yaml over config.yaml passes the schema and the checks the
    workflow runs (here, in seconds, not first in the workflow tier)."""
    import jsonschema

    from conftest import tiny_config
    from pipeline.config import check_config

    config = tiny_config()
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    jsonschema.validate(config, schema)
    check_config(config)
