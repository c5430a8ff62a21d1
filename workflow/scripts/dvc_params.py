"""Check, before a DVC stage runs, that the config values its command holds written in are
still config.yaml's.

dvc.yaml (workflow/scripts/export_dvc.py) writes each option whose value is one config key's as
`${key}`, which DVC fills in from config.yaml at every run. The other values a command holds
(lists, flags, values computed from several keys) were written in when dvc.yaml was made; each
stage's command starts with this check, so that a change to one of them (`dvc exp run -S ...`,
an edit) stops the stage with the keys named instead of running it with the old value.

    python workflow/scripts/dvc_params.py <stage> <digest>
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml

TEMPLATED = re.compile(r"\$\{([^}]+)\}")


def leaves(config: dict, key: str) -> dict:
    """{dotted key: value} of every value under `key` that is not a section (a list is one value)."""
    value = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        return {leaf: item for name, sub in value.items() for leaf, item in leaves(config, f"{key}.{name}").items()}
    return {key: value}


def visible(leaf: str, value, command: str) -> bool:
    """Whether `command` shows config value `value` of key `leaf`: a flag named after it (a
    boolean), or its text (a list's items joined by spaces) standing as a word or a path's part."""
    if isinstance(value, bool):
        name = leaf.rsplit(".", 1)[-1].replace("_", "-")
        return bool(re.search(rf"(?:^| )--(?:no-)?{re.escape(name)}(?= |$)", command))
    if value is None or isinstance(value, dict) or value == []:
        return False
    text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return bool(re.search(rf"(?<![^/=_ ]){re.escape(text)}(?=$|[/._ ])", command))


def guarded(config: dict, keys: list[str], command: str) -> dict:
    """The values under `keys` that `command` holds written in: those it shows, but for those it
    reads as `${key}`. A value it does not show (a key of its rule that this job does not use)
    cannot go stale in it."""
    written = set(TEMPLATED.findall(command))
    return {
        leaf: value
        for key in keys
        for leaf, value in leaves(config, key).items()
        if leaf not in written and visible(leaf, value, command)
    }


def digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def guarded_digest(config: dict, keys: list[str], command: str) -> str | None:
    """The digest a stage's check compares, or None where its command holds no value written in."""
    values = guarded(config, keys, command)
    return digest(values) if values else None


def changed_keys(values: dict, lock: Path, stage: str, config_name: str) -> list[str]:
    """The written-in keys whose values differ from those the stage last ran with (dvc.lock),
    or all of them where it has not run."""
    locked = (yaml.safe_load(lock.read_text()) if lock.exists() else {}).get("stages", {}).get(stage, {})
    params = locked.get("params", {}).get(config_name)
    if not params:
        return sorted(values)
    before = {}
    for key, value in params.items():
        before |= leaves(_nested(key, value), key)
    return sorted(key for key in values if key not in before or before[key] != values[key])


def _nested(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def filled(value, key: str, item: dict[str, str]):
    """A `foreach` stage's value (str, list or dict) for one of its stages: `${key}` and `${item.<field>}` filled in."""
    if isinstance(value, str):
        value = value.replace("${key}", key)
        return re.sub(r"\$\{item\.(\w+)\}", lambda match: item[match[1]], value)
    if isinstance(value, list):
        return [filled(part, key, item) for part in value]
    return {filled(k, key, item): filled(v, key, item) for k, v in value.items()}


def expanded(document: dict) -> dict:
    """{stage name: stage} of a dvc.yaml's stages, each `foreach` stage's jobs as `<rule>@<key>`
    with `${key}` and `${item.<field>}` filled in (the config's `${...}` left as they are)."""
    result = {}
    for name, stage in document["stages"].items():
        if "foreach" not in stage:
            result[name] = stage
            continue
        for key, item in stage["foreach"].items():
            result[f"{name}@{key}"] = filled(stage["do"], key, item)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", help="the stage's name in dvc.yaml")
    parser.add_argument("digest", help="the digest of its written-in values when dvc.yaml was made")
    parser.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    args = parser.parse_args(argv)

    stage = expanded(yaml.safe_load(args.dvc_yaml.read_text()))[args.stage]
    keys = [key for params in stage.get("params", []) for key in params.get(args.config.name, [])]
    # the job's own command, after the log folders are made and this check has run
    command = re.sub(r"^.*?dvc_params\.py \S+ \S+ && ", "", stage["cmd"])
    values = guarded(yaml.safe_load(args.config.read_text()), keys, command)
    if digest(values) != args.digest:
        changed = changed_keys(values, args.dvc_yaml.with_suffix(".lock"), args.stage, args.config.name)
        print(
            f"{args.config}: {', '.join(changed)}: stage {args.stage}'s command holds the old value written in; "
            "run `make dvc.yaml` (python workflow/scripts/export_dvc.py), then dvc repro or dvc exp run",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
