"""Write docs/config.md from the config schema: every key, its value in config.yaml and what it
means. The schema describes each key once; this page only lays it out. `--check` fails when
the page is not what the schema and config.yaml give now.

    python workflow/scripts/config_reference.py            # rewrite docs/config.md
    python workflow/scripts/config_reference.py --check    # exit 1 if it is out of date
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"

HEADER = """\
# Configuration

Generated from `workflow/schemas/config.schema.yaml` and `config.yaml` by
`workflow/scripts/config_reference.py` (`make docs/config.md`): do not edit; a test fails when
this page and the schema disagree. Every key is checked against the schema before anything
runs. `workflow/configs/paper.yaml` overrides these values at the paper's scale (and
`paper_smoke.yaml`, on top of it, cuts that to a handful of clips and iterations).

Changing values for one run: put them in a file of your own (`--configfile mine.yaml`, layered
over config.yaml), or give them on the command line, a section at a time, in YAML:

    snakemake --cores 2 --config seed=3 bodynet='{batch_size: 3, hourglass: {stacks: 2}}'

A section given so is merged into config.yaml's (the keys it does not name keep their values),
and its values mean what the same YAML means in a file: `3` is a number, `[4, 6]` a list of
numbers, `null` nothing, and a key whose values are names keeps `'123'` a name. Snakemake's
command line refuses a dotted key (`bodynet.batch_size=3`: "Config entry must start with a
valid identifier"); write the section instead.

| key | default | meaning |
|---|---|---|
"""


def resolve(node: dict, schema: dict) -> dict:
    """A schema node with its `$ref` (to `#/$defs/...`) merged in, its own keys winning."""
    while "$ref" in node:
        target = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def rows(node: dict, value, schema: dict, key: str = "") -> list[tuple[str, str, str]]:
    """(key, value as config.yaml gives it, description) of `node` and of every key below it."""
    node = resolve(node, schema)
    found = []
    if key:
        shown = "" if "properties" in node else f"`{json.dumps(value, ensure_ascii=False)}`"
        found.append((key, shown, " ".join(node.get("description", "").split())))
    for name, child in node.get("properties", {}).items():
        child_value = value.get(name) if isinstance(value, dict) else None
        if isinstance(value, dict) and name not in value:
            continue  # a key the schema allows (another split, another optimiser) that the config leaves out
        found += rows(child, child_value, schema, f"{key}.{name}" if key else name)
    return found


def render(schema: dict, config: dict) -> str:
    escape = str.maketrans({"|": r"\|"})
    lines = [f"| `{key}` | {value} | {text.translate(escape)} |" for key, value, text in rows(schema, config, schema)]
    return HEADER + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="the config whose values are shown")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/config.md", help="the page to write")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    text = render(yaml.safe_load(SCHEMA.read_text()), yaml.safe_load(args.config.read_text()))
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run `make docs/config.md`", file=sys.stderr)
            return 1
        return 0
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
