"""The configuration's rules that its JSON schema (workflow/schemas/config.schema.yaml)
cannot state: constraints between keys. The workflow runs `check_config` on the validated
config before it plans a single job; each error names the key to change."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline.errors import InputError


class ConfigError(InputError):
    """A configuration whose keys contradict each other; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"Invalid config: {key}: {message}")
        self.key = key


def check_body_model(body: dict) -> None:
    anny = body["anny"]
    if anny["regressor_samples"] > anny["shape_samples"]:
        raise ConfigError("body_model.anny.regressor_samples", "cannot exceed shape_samples")
    if anny["num_betas"] >= anny["shape_samples"]:
        raise ConfigError("body_model.anny.num_betas", "must be below shape_samples")
    if anny["age_range"][0] >= anny["age_range"][1]:
        raise ConfigError("body_model.anny.age_range", "must be [min, max] with min < max")
    if body["source"] == "smpl":
        for gender in body["genders"]:
            if not body["smpl_files"][gender]:
                raise ConfigError(
                    f"body_model.smpl_files.{gender}", "must name an SMPL model file when body_model.source is 'smpl'"
                )


# Draws of a camera's distance as far below its mean as this many deviations still leave the
# camera outside the body (1 m from the pelvis).
DISTANCE_DEVIATIONS = 5


def check_camera_distance(key: str, distance: list[float]) -> None:
    mean, deviation = distance
    if mean - DISTANCE_DEVIATIONS * deviation < 1.0:
        bound = f"mean − {DISTANCE_DEVIATIONS}·deviation ≥ 1 m"
        raise ConfigError(key, f"must be [mean, deviation] with {bound}: nearer draws put the camera inside the body")


def check_range(key: str, values: list[float]) -> None:
    if values[0] > values[1]:
        raise ConfigError(key, "must be [low, high] with low ≤ high")


def check_synthesis(synthesis: dict, genders: list[str]) -> None:
    motions, backgrounds = synthesis["motions"], synthesis["backgrounds"]
    for split in synthesis["splits"]:
        if motions["source"] == "embedded" and not motions.get(split):
            raise ConfigError(f"synthesis.motions.{split}", "must list the split's motions")
        if motions["source"] == "file" and not motions["files"].get(split):
            raise ConfigError(f"synthesis.motions.files.{split}", "must name a motion file when source is 'file'")
        if backgrounds["source"] == "folder" and not backgrounds["folders"].get(split):
            raise ConfigError(f"synthesis.backgrounds.folders.{split}", "must name a folder when source is 'folder'")
        if split not in synthesis["light"]:
            raise ConfigError(f"synthesis.light.{split}", "must give the split's light ranges")
        for key in ("ambient", "from_above"):
            check_range(f"synthesis.light.{split}.{key}", synthesis["light"][split][key])
    for gender in synthesis["genders"]:
        if gender not in genders:
            raise ConfigError("synthesis.genders", f"{gender!r} is not among body_model.genders")
    check_camera_distance("synthesis.camera_distance", synthesis["camera_distance"])
    check_range("synthesis.motions.variation.speed", motions["variation"]["speed"])
    missing = [name for name in ("segm", "depth") if name not in synthesis["passes"]]
    if missing:
        raise ConfigError("synthesis.passes", f"must hold {' and '.join(missing)}: the networks' samples read them")


def embedded_motions(motions: dict, split: str) -> int | None:
    """How many motions split `split`'s motion file holds before any interpolation, where the
    config alone says so (embedded motions: those named, mirrored, their variants); None for a
    motion file, whose motions the config does not count."""
    if motions["source"] != "embedded":
        return None
    return len(motions.get(split) or []) * (2 if motions["mirror"] else 1) + motions["variants"].get(split, 0)


def check_interpolated(config: dict) -> None:
    """Interpolations between two of a split's motions (the synthesis' and the mesh study's
    transitions) need the split to hold two motions."""
    motions = config["synthesis"]["motions"]
    for section, counts in (
        ("synthesis.motions.interpolations", motions["interpolations"]),
        ("video_mesh.dataset.transitions", config["video_mesh"]["dataset"]["transitions"]),
    ):
        for split, count in counts.items():
            available = embedded_motions(motions, split)
            if count and available is not None and available < 2:
                raise ConfigError(
                    f"{section}.{split}",
                    f"interpolates between two of split {split!r}'s motions, which has {available} "
                    f"(synthesis.motions.{split}, mirrored or not, and synthesis.motions.variants.{split})",
                )


def check_data(config: dict) -> None:
    """The SURREAL release, when the clips are read from it: its folder, the splits the networks
    train and are measured on, and the SMPL models its shapes are parameters of."""
    data = config["data"]
    if data["source"] != "surreal":
        return
    if not data["surreal_root"]:
        raise ConfigError("data.surreal_root", "must name the SURREAL release's folder (the one holding cmu/)")
    samples = config["bodynet"]["samples"]
    for split in (samples["train_split"], samples["validation_split"]):
        folder = Path(data["surreal_root"]) / "cmu" / split
        if not folder.is_dir():
            raise ConfigError("data.surreal_root", f"{folder}: no such split folder in the release")
    if config["body_model"]["source"] != "smpl":
        raise ConfigError(
            "body_model.source", "must be 'smpl' with data.source 'surreal': the release's shapes are SMPL's parameters"
        )


def check_bodynet(bodynet: dict, splits: list[str]) -> None:
    if bodynet["input_size"] != 4 * bodynet["heatmap_size"]:
        raise ConfigError("bodynet.input_size", "must be 4 × bodynet.heatmap_size (the hourglass stem's stride)")
    if bodynet["voxel_size"] % bodynet["heatmap_size"]:
        raise ConfigError("bodynet.voxel_size", "must be a multiple of bodynet.heatmap_size")
    if bodynet["heatmap_size"] % 2 ** bodynet["hourglass"]["depth"]:
        raise ConfigError("bodynet.hourglass.depth", "halves heatmap_size that many times: it must divide evenly")
    samples = bodynet["samples"]
    for key in ("train_split", "validation_split"):
        if samples[key] not in splits:
            raise ConfigError(f"bodynet.samples.{key}", f"{samples[key]!r} is not among synthesis.splits")
    if samples["train_split"] == samples["validation_split"]:
        raise ConfigError("bodynet.samples.validation_split", "must differ from train_split")


def check_config(config: dict) -> None:
    """Raise a ConfigError naming the first key that contradicts another in `config` (a
    configuration the schema has already validated)."""
    splits = config["synthesis"]["splits"]
    check_body_model(config["body_model"])
    check_data(config)
    check_synthesis(config["synthesis"], config["body_model"]["genders"])
    check_bodynet(config["bodynet"], splits)
    check_interpolated(config)
    check_camera_distance("actions.dataset.camera_distance", config["actions"]["dataset"]["camera_distance"])
    check_range("actions.dataset.speed", config["actions"]["dataset"]["speed"])
    for key, split in (
        ("flow.split", config["flow"]["split"]),
        ("flow.as_input.test_split", config["flow"]["as_input"]["test_split"]),
    ):
        if split not in splits:
            raise ConfigError(key, f"{split!r} is not among synthesis.splits")


def _parts(schema: dict, node: dict) -> list[dict]:
    """`node` and the schemas it combines (allOf, anyOf, oneOf), local `$ref`s followed."""
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
    combined = [part for key in ("allOf", "anyOf", "oneOf") for part in node.get(key, [])]
    return [node, *(found for part in combined for found in _parts(schema, part))]


def _child(schema: dict, node: dict, key: str | int) -> dict:
    """The schema of `node`'s entry `key` (a property, an additional property or an item); {}
    where the schema says nothing."""
    for part in _parts(schema, node):
        if isinstance(key, int) and key < len(part.get("prefixItems", [])):
            return part["prefixItems"][key]
        if isinstance(key, int) and isinstance(part.get("items"), dict):
            return part["items"]
        if key in part.get("properties", {}):
            return part["properties"][key]
        if not isinstance(key, int) and isinstance(part.get("additionalProperties"), dict):
            return part["additionalProperties"]
    return {}


JSON_TYPES = {type(None): {"null"}, bool: {"boolean"}, int: {"integer", "number"}, float: {"number"}, str: {"string"}}


def _allows(schema: dict, node: dict, value) -> bool:
    """Whether the schema's `node` names `value`'s JSON type among its types."""
    kinds = JSON_TYPES[type(value)]
    for part in _parts(schema, node):
        types = part.get("type", [])
        if kinds & ({types} if isinstance(types, str) else set(types)):
            return True
    return False


def _typed(value, schema: dict, node: dict):
    """`value` (as YAML's base loader gives it: strings, lists, dicts) with each string read
    again as YAML where the schema allows what it reads as, and not the string itself."""
    import yaml

    if isinstance(value, dict):
        return {key: _typed(item, schema, _child(schema, node, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item, schema, _child(schema, node, index)) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    try:
        read = yaml.safe_load(value)
    except yaml.YAMLError:
        return value  # the schema's check names the key
    if isinstance(read, (list, dict)) or type(read) not in JSON_TYPES:
        return value
    return read if not isinstance(read, str) and _allows(schema, node, read) else value


def typed_overrides(config: dict, overrides: Mapping, schema: dict) -> None:
    """Give the values nested in command-line overrides the types a config file would give them.

    Snakemake reads `--config bodynet='{batch_size: 3, hourglass: {stacks: 2}}'` with YAML's
    base loader, which keeps every value inside a section or list a string ('3'); it types only
    a top-level value itself. Each such string is read again as YAML (3, 0.5, true, null) where
    the schema allows what it reads as, and set in `config`, which already holds the override
    merged into its section; elsewhere it stays the string written ('123' for a name)."""
    for key, value in overrides.items():
        if isinstance(value, (dict, list)) and key in config:
            node = _child(schema, schema, key)
            typed = _typed(value, schema, node)
            config[key] = _merged(config[key], typed) if isinstance(typed, dict) else typed


def _merged(section, typed: dict):
    if not isinstance(section, dict):
        return typed
    return section | {
        key: _merged(section.get(key), value) if isinstance(value, dict) else value for key, value in typed.items()
    }
