"""Where did this come from? The lineage of one artifact of the workflow.

For every job in the chain that makes the artifact (from the body models and clips down to
the artifact's own rule): the rule and wildcards, the command, the content hash of each
input and output, the config values the rule reads, and the MLflow run that produced it
(its id, when it ran, the git commit and code version it ran with, and whether that code
is the code here now). Above them: the artifact's hash and this checkout's git commit.

    python workflow/scripts/trace_artifact.py results/bodynet_table.csv
    python workflow/scripts/trace_artifact.py results/bodynet_table.csv --json > lineage.json
"""

import argparse
import hashlib
import json
import subprocess
import sys
from datetime import UTC
from functools import cache
from pathlib import Path

from workflow_jobs import ROOT, config_value, load_config, plan, rule_config_keys


@cache
def content_hash(path: Path) -> str | None:
    """sha256 of a file; of a folder, over its files' relative paths and hashes; None if absent."""
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    if path.is_dir():
        digest = hashlib.sha256()
        for member in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{member.relative_to(path)}\0{content_hash(member)}\0".encode())
        return digest.hexdigest()
    return None


def git_commit() -> dict:
    def git(*args):
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or "unknown", "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def producing_runs(uri: str, experiment: str) -> dict[tuple[str, str], object]:
    """{(rule, wildcards as JSON): the latest finished MLflow run of that job}."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    runs = {}
    for run in client.search_runs(
        [found.experiment_id],
        "attributes.status = 'FINISHED'",
        max_results=50_000,
        order_by=["attributes.start_time ASC"],
    ):
        tags = run.data.tags
        if "pipeline.rule" in tags:
            runs[(tags["pipeline.rule"], tags.get("pipeline.wildcards", "{}"))] = run
    return runs


def lineage(artifact: str, configfiles: list[str], directory: str | None) -> dict:
    from pipeline.tracking import code_version, default_tracking_uri

    workdir = Path(directory).resolve() if directory else ROOT
    config = load_config(configfiles, directory)
    jobs = plan([artifact], configfiles, directory)
    if not any(artifact in job.outputs for job in jobs):
        raise SystemExit(f"{artifact}: no rule of the workflow makes this file")
    keys = rule_config_keys()
    uri = config["tracking"]["uri"] or default_tracking_uri(workdir)
    runs = producing_runs(uri, config["tracking"]["experiment"])

    def hashes(paths):
        return {path: content_hash(workdir / path) for path in paths}

    steps = []
    for job in jobs:
        step = {
            "rule": job.rule,
            "wildcards": job.wildcards,
            "command": job.command,
            "config": {key: config_value(config, key) for key in keys.get(job.rule, [])},
            "inputs": hashes(job.inputs),
            "outputs": hashes(job.outputs),
            "mlflow_run": None,
        }
        run = runs.get((job.rule, json.dumps(job.wildcards, sort_keys=True)))
        if run is not None:
            tags = run.data.tags
            code = tags.get("pipeline.code_version")
            step["mlflow_run"] = {
                "run_id": run.info.run_id,
                "name": run.info.run_name,
                "start_time_ms": run.info.start_time,
                "git_commit": tags.get("mlflow.source.git.commit"),
                "code_version": code,
                "code_is_current": job.entry is not None and code == code_version(f"{job.entry}.__main__"),
                "config_hash": tags.get("pipeline.config_hash"),
            }
        steps.append(step)
    return {
        "artifact": artifact,
        "sha256": content_hash(workdir / artifact),
        "git": git_commit(),
        "config_files": ["config.yaml", *configfiles],
        "tracking_uri": uri,
        "steps": steps,
    }


def short(digest: str | None) -> str:
    return digest[:12] if digest else "(missing)"


def describe(record: dict) -> str:
    from datetime import datetime

    git = record["git"]
    lines = [
        f"{record['artifact']}  sha256 {short(record['sha256'])}",
        f"  code: git {git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}",
        f"  config: {' + '.join(record['config_files'])}",
        f"  runs: {record['tracking_uri']}",
        f"  made by {len(record['steps'])} jobs, first to last:",
    ]
    for number, step in enumerate(record["steps"], 1):
        wildcards = " ".join(f"{key}={value}" for key, value in step["wildcards"].items())
        lines += ["", f"{number}. {step['rule']} {wildcards}".rstrip(), f"   command: {step['command']}"]
        for key, value in step["config"].items():
            lines.append(f"   config {key} = {json.dumps(value)}")
        for kind in ("inputs", "outputs"):
            for path, digest in step[kind].items():
                lines.append(f"   {kind[:-1]:6} {short(digest)}  {path}")
        run = step["mlflow_run"]
        if run is None:
            lines.append("   MLflow: no finished run of this job in the store")
        else:
            when = datetime.fromtimestamp(run["start_time_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            code = "the code here" if run["code_is_current"] else "other code than here"
            lines.append(
                f"   MLflow: run {run['run_id']} ({run['name']}), {when}, git {str(run['git_commit'])[:12]}, "
                f"code {run['code_version']} ({code})"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", help="a file the workflow makes, relative to its working directory")
    parser.add_argument("--configfile", nargs="+", default=[], help="config files over config.yaml, as for snakemake")
    parser.add_argument("--directory", help="the workflow's working directory (default: the repository)")
    parser.add_argument("--json", action="store_true", help="print the lineage as JSON")
    args = parser.parse_args(argv)
    record = lineage(args.artifact, args.configfile, args.directory)
    print(json.dumps(record, indent=2) if args.json else describe(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
