"""The configuration's rules that its JSON schema (workflow/schemas/config.schema.yaml)
cannot state: constraints between keys. The workflow runs `check_config` on the validated
config before it plans a single job; each error names the key to change."""

from __future__ import annotations

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
            low, high = synthesis["light"][split][key]
            if low > high:
                raise ConfigError(f"synthesis.light.{split}.{key}", "must be [low, high] with low ≤ high")
    for gender in synthesis["genders"]:
        if gender not in genders:
            raise ConfigError("synthesis.genders", f"{gender!r} is not among body_model.genders")
    missing = [name for name in ("segm", "depth") if name not in synthesis["passes"]]
    if missing:
        raise ConfigError("synthesis.passes", f"must hold {' and '.join(missing)}: the networks' samples read them")


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
    for key, split in (
        ("flow.split", config["flow"]["split"]),
        ("flow.as_input.test_split", config["flow"]["as_input"]["test_split"]),
    ):
        if split not in splits:
            raise ConfigError(key, f"{split!r} is not among synthesis.splits")
