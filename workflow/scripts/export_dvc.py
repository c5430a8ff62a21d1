"""Write dvc.yaml from the Snakefile: one DVC stage per Snakemake job.

Each stage runs the job's own command (what `snakemake --printshellcmds` shows), depends on
the job's inputs and on the package sources its command imports, reads the config keys its
rule reads, and outputs the job's outputs. `--check` fails when dvc.yaml is not what the
Snakefile and config.yaml give now, so the two descriptions cannot drift.

    python workflow/scripts/export_dvc.py            # rewrite dvc.yaml
    python workflow/scripts/export_dvc.py --check    # exit 1 if it is out of date
"""

import argparse
import difflib
import os
import sys
from pathlib import Path

import yaml
from workflow_jobs import ROOT, plan, rule_config_keys

HEADER = """\
# Generated from the Snakefile by workflow/scripts/export_dvc.py (`make dvc.yaml`): do not
# edit; a test fails when this file and the Snakefile or config.yaml disagree.
# One stage per Snakemake job, running the same command:
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


def stages(targets: list[str], configfiles: list[str], directory: str | None) -> dict:
    keys = rule_config_keys()
    result = {}
    for job in plan(targets, configfiles, directory):
        log_folders = sorted({os.path.dirname(log) for log in job.logs})
        stage = {"cmd": f"mkdir -p {' '.join(log_folders)} && {job.command}" if log_folders else job.command}
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
    return HEADER + "\n" + yaml.dump({"stages": stages}, Dumper=Dumper, sort_keys=False, width=100)


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
