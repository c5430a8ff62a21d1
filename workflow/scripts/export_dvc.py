"""Write dvc.yaml from the Snakefile: one DVC stage per Snakemake job.

Each stage runs the job's own command (what `snakemake --printshellcmds` shows), depends on
the job's inputs and on the package sources its command imports, reads the config keys it
reads, and outputs the job's outputs. A rule's jobs that differ only by their wildcards are
written as one `foreach` stage (stages `<rule>@<key>`); the others stand alone (`<rule>-<key>`).
Each `foreach` stage is checked, as it is made, to give back every job's stage exactly.
`--check` fails when dvc.yaml is not what the Snakefile and config.yaml give now, so the two
descriptions cannot drift.

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
import re
import sys
from pathlib import Path

import yaml
from dvc_params import filled, guarded_digest, leaves
from workflow_jobs import ROOT, load_config, plan, rule_config_keys

HEADER = """\
# Generated from the Snakefile by workflow/scripts/export_dvc.py (`make dvc.yaml`): do not
# edit; a test fails when this file and the Snakefile or config.yaml disagree.
# One stage per Snakemake job (`dvc stage list`), running the same command, its config values
# read from config.yaml (`${key}`; values written in are checked against it first); a rule's
# jobs that differ only by their wildcards are one `foreach` stage, its stages `<rule>@<key>`:
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


def job_keys(
    config: dict, keys: list[str], rule_wildcards: dict[str, set[str]], wildcards: dict[str, str]
) -> list[str]:
    """The config keys a job reads: its rule's `keys`, less the entries of a section keyed by
    one wildcard's values other than the job's own (bodynet.iterations.<stage>), which come last."""
    own: list[str] = []

    def narrowed(key: str) -> list[str]:
        value = section(config, key)
        if not isinstance(value, dict):
            return [key]
        for wildcard, values in rule_wildcards.items():
            if len(values & value.keys()) > 1:
                own.extend(f"{key}.{name}" for name in value if name == wildcards.get(wildcard))
                return [part for name in value if name not in values for part in narrowed(f"{key}.{name}")]
        parts = {name: narrowed(f"{key}.{name}") for name in value}
        if all(part == [f"{key}.{name}"] for name, part in parts.items()):
            return [key]
        return [key for part in parts.values() for key in part]

    return sorted(part for key in keys for part in narrowed(key)) + own


def section(config: dict, key: str):
    """The config's value at dotted `key` (None where there is none)."""
    value = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def job_stage(job, rule_keys: list[str], config: dict, name: str, rule_wildcards: dict[str, set[str]]) -> dict:
    """The DVC stage `name` running `job`: its command with config values as `${key}`, after the
    check of the values it holds written in; its inputs and code; its config keys; its outputs."""
    keys = job_keys(config, rule_keys, rule_wildcards, job.wildcards)
    command, _ = templated(job.command, keys, config, job.wildcards)
    digest = guarded_digest(config, keys, command)
    if digest:
        command = f"python workflow/scripts/dvc_params.py {name} {digest} && {command}"
    log_folders = sorted({os.path.dirname(log) for log in job.logs})
    stage = {"cmd": f"mkdir -p {' '.join(log_folders)} && {command}" if log_folders else command}
    deps = job.inputs + (code_files(job.entry) if job.entry else [])
    if deps:
        stage["deps"] = deps
    if keys:
        stage["params"] = [{"config.yaml": keys}]
    metrics = [path for path in job.outputs if path.endswith(METRICS)]
    plots = [{path: PLOTS[name]} for path in job.outputs for name in PLOTS if path.endswith(name)]
    stage["outs"] = [path for path in job.outputs if path not in metrics and not path.endswith(tuple(PLOTS))]
    stage["outs"] += job.logs
    if metrics:
        stage["metrics"] = metrics
    if plots:
        stage["plots"] = plots
    return stage


def _generalised(text: str, wildcards: dict[str, str], joined: bool) -> str:
    """`text` with each wildcard's value, where it stands as a word or a path's part (or, where
    `joined`, a part of a name joined by underscores or of a dotted config key), as `${item.<wildcard>}`."""
    before, after = ("[/=_ ]", "[/._ ]") if joined else ("[/= ]", "[/. ]")
    if joined and re.fullmatch(r"[\w.]+", text):
        before = "[/=_. ]"
    for wildcard, value in sorted(wildcards.items(), key=lambda pair: -len(pair[1])):
        text = re.sub(rf"(?<!(?!{before}).){re.escape(value)}(?=$|{after})", "${item." + wildcard + "}", text)
    return text


def _template(value, wildcards: dict[str, str], name: str, joined: bool):
    """A stage's value (str, list or dict) with its wildcards' values, and its name's key, templated."""
    if isinstance(value, str):
        rule, _, key = name.partition("@")
        return _generalised(value.replace(name, f"{rule}@${{key}}"), wildcards, joined)
    if isinstance(value, list):
        return [_template(part, wildcards, name, joined) for part in value]
    return {_template(k, wildcards, name, joined): _template(v, wildcards, name, joined) for k, v in value.items()}


def _field(items: dict[str, dict], name: str, values: list[str]) -> str | None:
    """The item field holding `values` (one per job): one that holds them already, else a new
    one called `name` (numbered where that is taken); None where `name` is not a name."""
    for field in items[next(iter(items))]:
        if [item[field] for item in items.values()] == values:
            return field
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        return None
    field, number = name, 1
    while field in items[next(iter(items))]:
        number += 1
        field = f"{name}_{number}"
    for item, value in zip(items.values(), values):
        item[field] = value
    return field


def _field_name(part: str, before: str) -> str:
    """A name for an item field holding the jobs' differing values of `part` (cmd, deps, outs, ...),
    after the word `before` in a command."""
    if part != "cmd":
        return {"deps": "input", "outs": "output"}.get(part, part.rstrip("s"))
    if before.startswith("--"):
        return before[2:].replace("-", "_")
    return {"-p": "log_folder", ">": "log"}.get(before, "digest" if before.endswith("@${key}") else "value")


def _foreach(rule: str, jobs: dict[str, tuple], joined: bool) -> dict | None:
    items = {key: dict(job.wildcards) for key, (job, _) in jobs.items()}
    stages = [stage for _, stage in jobs.values()]
    templates = [_template(stage, job.wildcards, f"{rule}@{key}", joined) for key, (job, stage) in jobs.items()]
    if any(template.keys() != templates[0].keys() for template in templates):
        return None
    do = {}
    for part in templates[0]:
        if part == "cmd":
            columns = [template["cmd"].split(" ") for template in templates]
            originals = [stage["cmd"].split(" ") for stage in stages]
        elif part == "params":
            columns = [template["params"][0]["config.yaml"] for template in templates]
            originals = [stage["params"][0]["config.yaml"] for stage in stages]
        else:
            columns, originals = [template[part] for template in templates], [stage[part] for stage in stages]
        if len({len(column) for column in columns}) != 1:
            return None
        merged = []
        for i, words in enumerate(zip(*columns)):
            if all(word == words[0] for word in words):
                merged.append(words[0])
                continue
            values = [original[i] for original in originals]
            if all(value == values[0] for value in values):
                merged.append(values[0])
                continue
            if not all(isinstance(value, str) for value in values):
                return None
            field = _field(items, _field_name(part, columns[0][i - 1] if i else ""), values)
            if field is None:
                return None
            merged.append("${item." + field + "}")
        do[part] = " ".join(merged) if part == "cmd" else [{"config.yaml": merged}] if part == "params" else merged
    if any(filled(do, key, items[key]) != stage for key, (_, stage) in jobs.items()):
        return None
    return {"foreach": items, "do": do}


def foreach_stage(rule: str, jobs: dict[str, tuple]) -> dict | None:
    """One DVC `foreach` stage running every job of `rule` ({key: (job, stage)}), the stages
    `<rule>@<key>`: its `do` the jobs' common stage with `${item.<wildcard>}` where their
    wildcards stand and `${item.<field>}` where a value differs otherwise (an option's value,
    such as a config key that follows the wildcard, or a path of one); None where the jobs'
    stages differ in shape (options or files some have and others not)."""
    return _foreach(rule, jobs, joined=True) or _foreach(rule, jobs, joined=False)


def _shape(stage: dict) -> tuple:
    """What jobs of one rule must share to be one `foreach` stage: their command's options
    and the number of their files."""
    words = stage["cmd"].split(" ")
    return (
        len(words),
        tuple(word for word in words if word.startswith("--")),
        *((part, len(value)) for part, value in stage.items() if part not in ("cmd", "params")),
        len(stage.get("params", [{}])[0].get("config.yaml", [])),
    )


def stages(targets: list[str], configfiles: list[str], directory: str | None) -> dict:
    """The stages of dvc.yaml: the most jobs of each rule whose stages differ only by their
    wildcards and option values as one `foreach` stage named after the rule, stages
    `<rule>@<key>`; every other job a stage of its own, `<rule>-<key>`."""
    keys = rule_config_keys()
    config = load_config(configfiles, directory)
    by_rule: dict[str, list] = {}
    for job in plan(targets, configfiles, directory):
        by_rule.setdefault(job.rule, []).append(job)
    result = {}
    for rule, jobs in by_rule.items():
        grouped, alike = None, []
        rule_wildcards: dict[str, set[str]] = {}
        for job in jobs:
            for wildcard, value in job.wildcards.items():
                rule_wildcards.setdefault(wildcard, set()).add(value)
        if len(jobs) > 1:
            named = {job.name.removeprefix(rule).removeprefix("-"): job for job in jobs}
            shapes: dict[tuple, dict] = {}
            for key, job in named.items():
                stage = job_stage(job, keys.get(rule, []), config, f"{rule}@{key}", rule_wildcards)
                shapes.setdefault(_shape(stage), {})[key] = (job, stage)
            alike = max(shapes.values(), key=len)
            grouped = foreach_stage(rule, alike) if len(alike) > 1 else None
        if grouped:
            result[rule] = grouped
        for job in jobs:
            if grouped and any(job is other for other, _ in alike.values()):
                continue
            if job.name in result:
                raise SystemExit(f"two jobs map to the DVC stage name {job.name!r}")
            result[job.name] = job_stage(job, keys.get(rule, []), config, job.name, rule_wildcards)
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
