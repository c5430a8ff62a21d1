"""The workflow's jobs as Snakemake plans them, and the config keys each rule reads.

Used by trace_artifact.py (where an artifact came from) and by the tests that check every
rule's command against the package's parsers. Jobs come from Snakemake's own DAG of the
targets; config keys come from reading the rule files, so both follow the Snakefile without
a second description of the workflow.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = ROOT / "workflow" / "rules"

# Config sections that decide where a job logs, not what it computes.
CONTEXT_KEYS = ("tracking",)


@dataclass
class Job:
    """One job of the DAG: its rule, command and files (paths relative to the workdir)."""

    rule: str
    command: str
    outputs: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    @property
    def wildcards(self) -> dict[str, str]:
        """The job's wildcards, as its command hands them to its MLflow run."""
        words = shlex.split(self.command.split(" > ")[0])
        return dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--wildcard")

    @property
    def entry(self) -> str | None:
        """The package entry point the command runs: `python -m pipeline.<entry> ...`."""
        match = re.match(r"python -m (pipeline\.\w+)", self.command)
        return match.group(1) if match else None

    @property
    def name(self) -> str:
        """A unique stage name: the rule and its log file's path below logs/<rule>/."""
        log = Path(self.logs[0]) if self.logs else Path(self.outputs[0])
        parts = log.with_suffix("").parts
        tail = "-".join(parts[2:] if parts[:2] == ("logs", self.rule) else parts)
        name = self.rule if tail in ("", self.rule) else f"{self.rule}-{tail}"
        return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def plan(targets: list[str] = (), configfiles: list[str] = (), directory: str | None = None) -> list[Job]:
    """Every job Snakemake would run to make `targets` (default: the `all` rule) from
    nothing, each after the jobs making its inputs."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    workdir = Path(directory).resolve() if directory else ROOT
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            snakefile=ROOT / "Snakefile",
            workdir=workdir,
            # enough cores that each job gets the threads its config asks for
            resource_settings=ResourceSettings(cores=64),
            config_settings=ConfigSettings(configfiles=[workdir / name for name in configfiles]),
        )
        dag_api = workflow_api.dag(DAGSettings(targets=set(targets) or {"all"}, forceall=True))
        # What `snakemake --dag` does, keeping the jobs instead of printing them. Snakemake's
        # API has no public call that returns the planned jobs, so these three are its private
        # ones, as of the version constraints.txt pins; the tests that read the plan
        # (tests/unit/test_project.py, tests/workflow/test_lineage.py) are what an upgrade checks.
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        jobs = [
            Job(
                rule=job.rule.name,
                command=" ".join(job.shellcmd.split()),
                outputs=[str(path) for path in job.output],
                inputs=[str(path) for path in job.input],
                logs=[str(path) for path in job.log],
            )
            for job in workflow.dag.jobs
            if job.shellcmd
        ]
    return ordered(jobs)


def ordered(jobs: list[Job]) -> list[Job]:
    """Jobs sorted so that each follows the producers of its inputs (ties by name)."""
    producer = {output: job for job in jobs for output in job.outputs}
    done: dict[str, Job] = {}

    def visit(job: Job) -> None:
        if job.name in done:
            return
        for path in job.inputs:
            if path in producer:
                visit(producer[path])
        done[job.name] = job

    for job in sorted(jobs, key=lambda job: job.name):
        visit(job)
    return list(done.values())


# --- config keys read by each rule, from the rule files' text ------------------------

BLOCK_START = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:|^def\s+(\w+)\s*\(|^([A-Z_][A-Z0-9_]*)\s*=", re.M)
CONFIG_CHAIN = re.compile(r"config((?:\[\s*[\"'][\w-]+[\"']\s*\])+)")
CHAIN_KEY = re.compile(r"[\"']([\w-]+)[\"']")
NAME = re.compile(r"\b[A-Za-z_]\w*\b")
# `config["a"][key] for key in ("b", "c")`: the keys a.b and a.c, not all of a
CONFIG_LOOP = re.compile(r"config((?:\[\s*[\"'][\w-]+[\"']\s*\])+)\[(\w+)\]\s+for\s+\2\s+in\s+[(\[]([^)\]]*)[)\]]")


def _blocks() -> tuple[dict[str, str], dict[str, str]]:
    """({rule: text}, {helper function or constant: text}) of every rule file."""
    rules, helpers = {}, {}
    for path in sorted(RULE_FILES.rglob("*.smk")):  # the rule files and their helpers
        text = path.read_text()
        starts = list(BLOCK_START.finditer(text))
        for start, following in zip(starts, starts[1:] + [None]):
            body = text[start.start() : following.start() if following else len(text)]
            rule, function, constant = start.groups()
            if rule:
                rules[rule] = body
            else:
                helpers[function or constant] = body
    return rules, helpers


def _minimal(keys: set[str]) -> list[str]:
    """Keys without those a broader key already covers: {'a', 'a.b'} -> ['a']."""
    return sorted(key for key in keys if not any(key.startswith(other + ".") for other in keys))


def rule_config_keys() -> dict[str, list[str]]:
    """{rule: the config keys (dotted) the rule reads}, following the helpers it calls.

    A helper that reads a whole section (`synthesis = config["synthesis"]`) counts as
    reading all of it: the keys may be broader than what a rule uses, never narrower."""
    rules, helpers = _blocks()

    def keys_of(text: str, seen: set[str]) -> set[str]:
        keys = {
            ".".join(CHAIN_KEY.findall(chain) + [name])
            for chain, _, names in CONFIG_LOOP.findall(text)
            for name in CHAIN_KEY.findall(names)
        }
        text = CONFIG_LOOP.sub("", text)
        keys |= {".".join(CHAIN_KEY.findall(chain)) for chain in CONFIG_CHAIN.findall(text)}
        for name in set(NAME.findall(text)) & helpers.keys() - seen:
            seen.add(name)
            keys |= keys_of(helpers[name], seen)
        return keys

    result = {}
    for rule, text in rules.items():
        keys = {key for key in keys_of(text, set()) if key.split(".")[0] not in CONTEXT_KEYS}
        result[rule] = _minimal(keys)
    return result


def load_config(configfiles: list[str] = (), directory: str | None = None) -> dict:
    """config.yaml with the given config files layered over it, as Snakemake reads them."""
    base = Path(directory) if directory else ROOT
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for name in configfiles:
        _update(config, yaml.safe_load((base / name).read_text()) or {})
    return config


def _update(config: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _update(config[key], value)
        else:
            config[key] = value


def config_value(config: dict, key: str):
    value = config
    for part in key.split("."):
        value = value[part]
    return value
