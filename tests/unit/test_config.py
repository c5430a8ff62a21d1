"""The configuration's constraints between keys (`pipeline.config`), each error naming its key."""

import copy

import pytest
import yaml

from conftest import ROOT, set_keys
from pipeline.config import ConfigError, check_config

DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def changed(overrides: dict) -> dict:
    return set_keys(copy.deepcopy(DEFAULT), overrides)


def test_the_default_config_holds_together():
    check_config(DEFAULT)


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"body_model.anny.regressor_samples": 2000}, "body_model.anny.regressor_samples", "cannot exceed"),
        ({"body_model.anny.num_betas": 1000}, "body_model.anny.num_betas", "must be below shape_samples"),
        ({"body_model.anny.age_range": [50, 30]}, "body_model.anny.age_range", "min < max"),
        ({"body_model.source": "smpl"}, "body_model.smpl_files.female", "must name an SMPL model file"),
        ({"synthesis.motions.train": []}, "synthesis.motions.train", "must list the split's motions"),
        ({"synthesis.motions.source": "file"}, "synthesis.motions.files.train", "must name a motion file"),
        ({"synthesis.backgrounds.source": "folder"}, "synthesis.backgrounds.folders.train", "must name a folder"),
        ({"synthesis.splits": ["train", "test", "val"]}, "synthesis.motions.val", "must list"),
        ({"synthesis.light.shifted.ambient": [0.9, 0.1]}, "synthesis.light.shifted.ambient", "[low, high]"),
        ({"synthesis.camera_distance": [2.0, 1.0]}, "synthesis.camera_distance", "mean − 5·deviation ≥ 1 m"),
        ({"actions.dataset.camera_distance": [3.0, 0.5]}, "actions.dataset.camera_distance", "inside the body"),
        ({"synthesis.motions.variation.speed": [1.4, 0.7]}, "synthesis.motions.variation.speed", "[low, high]"),
        ({"actions.dataset.speed": [1.2, 0.8]}, "actions.dataset.speed", "[low, high]"),
        ({"synthesis.genders": ["female", "child"]}, "synthesis.genders", "'child' is not among body_model.genders"),
        ({"synthesis.passes": ["segm", "gtflow"]}, "synthesis.passes", "must hold depth"),
        (
            {"synthesis.motions.test": ["kick"], "synthesis.motions.mirror": False},
            "video_mesh.dataset.transitions.test",
            "split 'test''s motions, which has 1",
        ),
        (
            {"synthesis.motions.interpolations.shifted": 2, "synthesis.motions.shifted": ["kick"]}
            | {"synthesis.motions.mirror": False},
            "synthesis.motions.interpolations.shifted",
            "which has 1",
        ),
        ({"bodynet.input_size": 64}, "bodynet.input_size", "must be 4 × bodynet.heatmap_size"),
        ({"bodynet.voxel_size": 48}, "bodynet.voxel_size", "a multiple of bodynet.heatmap_size"),
        ({"bodynet.hourglass.depth": 6}, "bodynet.hourglass.depth", "must divide evenly"),
        ({"bodynet.samples.validation_split": "train"}, "bodynet.samples.validation_split", "must differ"),
        ({"bodynet.samples.validation_split": "val"}, "bodynet.samples.validation_split", "'val' is not among"),
        ({"data.source": "surreal"}, "data.surreal_root", "must name the SURREAL release's folder"),
        ({"data.source": "surreal", "data.surreal_root": "/nowhere"}, "data.surreal_root", "no such split folder"),
        ({"flow.split": "val"}, "flow.split", "'val' is not among synthesis.splits"),
        ({"flow.as_input.test_split": "val"}, "flow.as_input.test_split", "'val' is not among synthesis.splits"),
    ],
)
def test_contradicting_keys_are_named(overrides, key, message):
    with pytest.raises(ConfigError, match=f"Invalid config: {key}: ") as error:
        check_config(changed(overrides))
    assert message in str(error.value) and error.value.key == key


def test_the_release_config_reads_a_release_and_asks_for_smpl(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "cmu" / split / "run0").mkdir(parents=True)
    config = copy.deepcopy(DEFAULT)
    overlay = yaml.safe_load((ROOT / "workflow/configs/surreal.yaml").read_text())
    for key, value in overlay.items():
        config[key] = merged(config[key], value)
    # the overlay leaves the user's files and folder to be named
    with pytest.raises(ConfigError, match="Invalid config: body_model.smpl_files.female: must name"):
        check_config(config)
    config["body_model"]["smpl_files"] |= {"female": "f.pkl", "male": "m.pkl"}
    with pytest.raises(ConfigError, match="Invalid config: data.surreal_root: must name"):
        check_config(config)
    config["data"]["surreal_root"] = str(tmp_path)
    check_config(config)
    with pytest.raises(ConfigError, match="Invalid config: body_model.source: must be 'smpl'"):
        check_config(set_keys(config, {"body_model.source": "anny"}))


def merged(base, overlay):
    """`overlay` laid on `base` key by key, as Snakemake merges --configfile files."""
    if not isinstance(overlay, dict):
        return overlay
    return {**base, **{key: merged(base.get(key), value) for key, value in overlay.items()}}


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"seed": "abc"}, ["seed"]),
        ({"body_model.source": "scan"}, ["body_model", "source"]),
        ({"bodynet.device": "gpu"}, ["bodynet", "device"]),
        ({"flow.methods": ["brox"]}, ["flow", "methods", 0]),
        ({"evaluation.fit.steps": -1}, ["evaluation", "fit", "steps"]),
        ({"bodynet.stage_threads": {"pose4d": 2}}, ["bodynet", "stage_threads"]),
        ({"bodynet.stage_threads": {"pose3d": 0}}, ["bodynet", "stage_threads", "pose3d"]),
        ({"evaluation.fit.matching": "sometimes"}, ["evaluation", "fit", "matching"]),
        # a camera on the pelvis (or behind it) renders no person: the mean distance must be positive
        ({"synthesis.camera_distance": [0, 0]}, ["synthesis", "camera_distance", 0]),
        ({"synthesis.camera_distance": [-8.0, 1.0]}, ["synthesis", "camera_distance", 0]),
        ({"synthesis.camera_distance": [8.0, -1.0]}, ["synthesis", "camera_distance", 1]),
    ],
)
def test_the_schema_rejects_a_bad_value_where_it_lies(overrides, path):
    import jsonschema

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    jsonschema.validate(DEFAULT, schema)
    with pytest.raises(jsonschema.ValidationError) as error:
        jsonschema.validate(changed(overrides), schema)
    assert list(error.value.absolute_path) == path


def test_the_schemas_named_lists_are_the_packages():
    """The lists the schema defines once, for the config and the rules' wildcards, are the ones
    the package knows: its flow methods, its training stages."""
    from pipeline.flow.methods import METHODS
    from pipeline.training.schedule import STAGES

    definitions = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["$defs"]
    assert tuple(definitions["flow_method"]["enum"]) == METHODS
    assert set(definitions["stage"]["enum"]) == set(STAGES)


def test_settings_come_from_the_options_of_their_fields_names():
    import argparse
    from dataclasses import dataclass

    import pytest

    from pipeline.cli import settings_from

    @dataclass(frozen=True)
    class Settings:
        iterations: int
        views: tuple
        size: int
        momentum: float = 0.9

    args = argparse.Namespace(iterations=3, views=[0, 45], crop=64, unrelated="x")
    settings = settings_from(Settings, args, size=args.crop)
    assert settings == Settings(iterations=3, views=(0, 45), size=64, momentum=0.9)
    with pytest.raises(TypeError, match="has no field crop"):
        settings_from(Settings, args, crop=64)
    with pytest.raises(TypeError):  # a field without a default that no option names
        settings_from(Settings, argparse.Namespace(iterations=3, views=[]))
