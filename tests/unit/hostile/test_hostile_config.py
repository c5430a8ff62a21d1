"""Overrides given on Snakemake's command line (`--config section='{key: value}'`) mean what
the same YAML means in a config file, whatever the values."""

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.config import typed_overrides

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def leaves(section, prefix=()):
    """(path, value) of every scalar or list of scalars under `section`."""
    for key, value in section.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


LEAVES = [(path, value) for path, value in leaves(DEFAULT) if len(path) > 1]


def like(value):
    """A strategy for values of `value`'s kind (the same type, a list of the same length)."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-(10**6), 10**6)
    if isinstance(value, float):
        return st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: x != 0 and abs(x) > 1e-6)
    if isinstance(value, str):
        return st.sampled_from(["123", "1e-3", "true", "null", "[1, 2]", "walk", "a b: c"])
    if isinstance(value, list) and value and all(isinstance(item, (int, float)) for item in value):
        return st.tuples(*(like(item) for item in value)).map(list)
    return st.just(value)


def snakemake_reads(section: str, text: str) -> dict:
    """The config Snakemake builds from config.yaml and `--config <section>=<text>`."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    overrides = parse_config([f"{section}={text}"])
    config = copy.deepcopy(DEFAULT)
    update_config(config, overrides)
    typed_overrides(config, overrides, SCHEMA)
    return config


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LEAVES).flatmap(lambda leaf: st.tuples(st.just(leaf[0]), like(leaf[1]))))
def test_a_nested_override_keeps_the_type_a_config_file_gives_it(leaf):
    path, value = leaf
    nested = value
    for key in reversed(path[1:]):
        nested = {key: nested}
    config = snakemake_reads(path[0], yaml.safe_dump(nested, default_flow_style=True).strip())
    got = config
    for key in path:
        got = got[key]
    # Snakemake's reading keeps no quotes: 'null' and null are the same string to it, and a key
    # that may be null (a checksum) reads it as null, as a config file's bare null
    assume(not (value == "null" and got is None))
    assert got == value and type(got) is type(value)
    assert {k: v for k, v in config[path[0]].items() if k != path[1]} == {
        k: v for k, v in DEFAULT[path[0]].items() if k != path[1]
    }


@pytest.mark.parametrize(
    ("section", "text", "key", "expected"),
    [
        ("bodynet", "{batch_size: 3, hourglass: {stacks: 2}}", ("bodynet", "batch_size"), 3),
        ("bodynet", "{batch_size: 3, hourglass: {stacks: 2}}", ("bodynet", "hourglass", "stacks"), 2),
        ("synthesis", "{camera_distance: [4, 5.5]}", ("synthesis", "camera_distance"), [4, 5.5]),
        ("tracking", "{experiment: '123', uri: null}", ("tracking", "experiment"), "123"),
        ("tracking", "{experiment: '123', uri: null}", ("tracking", "uri"), None),
        ("synthesis", "{motions: {mirror: false}}", ("synthesis", "motions", "mirror"), False),
    ],
)
def test_overrides_are_typed_by_the_schema(section, text, key, expected):
    got = snakemake_reads(section, text)
    for part in key:
        got = got[part]
    assert got == expected and type(got) is type(expected)
