"""Write dvc.yaml from the Snakefile: one DVC stage per Snakemake job.

Each stage runs the job's own command (what `snakemake --printshellcmds` shows), depends on
the job's inputs and on the package sources its command imports, reads the config keys its
rule reads, and outputs the job's outputs. `--check` fails when dvc.yaml is not what the
Snakefile and config.yaml give now, so the two descriptions cannot drift.

The commands read config.yaml through DVC's templating: an option whose value is one config
value (`--fit-steps 4` from evaluation.fit.steps) is written `--fit-steps ${evaluation.fit.steps}`,
so `dvc exp run -S config.yaml:evaluation.fit.steps=50` runs the stages that read it with 50.
The values a command holds written in (lists, flags, values computed from several keys) are
guarded: the stage first checks them against config.yaml (workflow/scripts/dvc_params.py) and
stops, naming the key, where they differ, rather than run with the old value.

    python workflow/scripts/export_dvc.py            # rewrite dvc.yaml
    python workflow/scripts/export_dvc.py --check    # exit 1 if it is out of date
"""

import argparse
import difflib
import os
import sys
from pathlib import Path

import yaml
from dvc_params import guarded_digest, leaves
from workflow_jobs import ROOT, load_config, plan, rule_config_keys

HEADER = """\
# Generated from the Snakefile by workflow/scripts/export_dvc.py (`make dvc.yaml`): do not
# edit; a test fails when this file and the Snakefile or config.yaml disagree.
# One stage per Snakemake job, running the same command, its config values read from
# config.yaml (`${key}`; values written in are checked against it first):
#   dvc exp run -S config.yaml:evaluation.fit.steps=50   rerun what reads the key, with its new value
#   dvc repro                     rebuild what changed (`dvc repro tabulate_evaluation-bodynet_table`)
#   dvc dag                       draw the graph
#   dvc push / dvc pull           artifacts to and from the remote (.dvc/config: `local`)
"""


# Outputs DVC shows as metrics (`dvc metrics show/diff`: the measures of each evaluation, the
# body models' and the sparsity analyses' figures) and as plots (`dvc plots show/diff`).
METRICS = ("summary.json", "metrics.json", "analysis.json")
PLOTS = {"history.csv": {"x": "iteration"}}


class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def code_files(entry: str) -> list[str]:
    """The sources `python -m <entry>` imports, as paths under src/; a subpackage whose
    every module is among them is named by its folder."""
    from pipeline.tracking import PACKAGE_ROOT, module_sources

    files = {path.relative_to(PACKAGE_ROOT.parent) for path in module_sources(f"{entry}.__main__")}
    for package in sorted({path.parent for path in files if len(path.parts) > 2}):
        members = {path.relative_to(PACKAGE_ROOT.parent) for path in (PACKAGE_ROOT.parent / package).rglob("*.py")}
        if members <= files:
            files = (files - members) | {package}
    return [f"src/{path}" for path in sorted(files)]


def _reads(option: str, leaf: str, wildcards: dict[str, str]) -> bool:
    """Whether `--option` names config key `leaf`: its last parts joined by underscores
    (`--seed`: seed, `--fit-steps`: evaluation.fit.steps), or the section above a key named
    by the job's wildcard (`--iterations` of stage voxels: bodynet.iterations.voxels)."""
    name, parts = option.replace("-", "_"), leaf.split(".")
    if len(parts) > 1 and parts[-1] in wildcards.values() and name == parts[-2]:
        return True
    return any(name == "_".join(parts[-k:]) for k in range(1, len(parts) + 1))


def templated(command: str, keys: list[str], config: dict, wildcards: dict[str, str]) -> tuple[str, set[str]]:
    """The command with each option's value that is one of `keys`' scalar values, and only
    that key's among them, written `${key}`; and the keys so written."""
    scalars = {
        leaf: str(value)
        for key in keys
        for leaf, value in leaves(config, key).items()
        if isinstance(value, (int, float, str)) and not isinstance(value, bool)
    }
    words = command.split(" ")
    written = set()
    for i in range(len(words) - 1):
        option, value = words[i], words[i + 1]
        ends = i + 2 == len(words) or words[i + 2].startswith("--") or words[i + 2] in (">", "&&")
        if not (option.startswith("--") and ends):
            continue
        named = [leaf for leaf, text in scalars.items() if text == value and _reads(option[2:], leaf, wildcards)]
        if len(named) == 1:
            words[i + 1] = "${" + named[0] + "}"
            written.add(named[0])
    return " ".join(words), written


def stages(targets: list[str], configfiles: list[str], directory: str | None) -> dict:
    keys = rule_config_keys()
    config = load_config(configfiles, directory)
    result = {}
    for job in plan(targets, configfiles, directory):
        command, written = templated(job.command, keys.get(job.rule, []), config, job.wildcards)
        digest = guarded_digest(config, keys.get(job.rule, []), written)
        if digest:
            command = f"python workflow/scripts/dvc_params.py {job.name} {digest} && {command}"
        log_folders = sorted({os.path.dirname(log) for log in job.logs})
        stage = {"cmd": f"mkdir -p {' '.join(log_folders)} && {command}" if log_folders else command}
        deps = job.inputs + (code_files(job.entry) if job.entry else [])
        if deps:
            stage["deps"] = deps
        if keys.get(job.rule):
            stage["params"] = [{"config.yaml": keys[job.rule]}]
        metrics = [path for path in job.outputs if path.endswith(METRICS)]
        plots = [{path: PLOTS[name]} for path in job.outputs for name in PLOTS if path.endswith(name)]
        stage["outs"] = [path for path in job.outputs if path not in metrics and not path.endswith(tuple(PLOTS))]
        stage["outs"] += job.logs
        if metrics:
            stage["metrics"] = metrics
        if plots:
            stage["plots"] = plots
        if job.name in result:
            raise SystemExit(f"two jobs map to the DVC stage name {job.name!r}")
        result[job.name] = stage
    return result


def render(stages: dict) -> str:
    return (
        HEADER
        + "\n"
        + yaml.dump({"vars": ["config.yaml"], "stages": stages}, Dumper=Dumper, sort_keys=False, width=100)
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="Snakemake targets (default: the `all` rule)")
    parser.add_argument("--configfile", nargs="+", default=[], help="config files over config.yaml, as for snakemake")
    parser.add_argument("--directory", help="the workflow's working directory (default: the repository)")
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write (default: dvc.yaml in the working directory)"
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)

    out = args.out or Path(args.directory or ROOT) / "dvc.yaml"
    text = render(stages(args.targets, args.configfile, args.directory))
    if args.check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(out), "from the Snakefile", lineterm=""
            )
            print("\n".join(list(diff)[:60]), file=sys.stderr)
            print(f"{out} is out of date: run `make dvc.yaml`", file=sys.stderr)
            return 1
        return 0
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
