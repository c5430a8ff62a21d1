# Helpers of the rules in workflow/rules/actions.smk alone: their inputs, options and outputs.


def action_dataset_options(split):
    """The render options of a split's action clips: actions.dataset, its performances per
    split, and the people and outfits the main clips draw from."""
    dataset = dict(config["actions"]["dataset"])
    performances = dataset.pop("performances")
    if split not in performances:
        raise WorkflowError(f"config.yaml: actions.dataset.performances has no entry for split {split!r}")
    people = {key: config["synthesis"][key] for key in ("shapes", "outfits")}
    return f"{cli_options(dataset)} --performances {performances[split]} {cli_options(people)}"


def action_flow_methods():
    """The flow methods the action networks read (actions.ltc.inputs but RGB)."""
    return [name for name in config["actions"]["ltc"]["inputs"] if name != "rgb"]


def ltc_networks():
    """The LTC table's networks: every input at every extent, and their late fusions."""
    ltc = config["actions"]["ltc"]
    if "rgb" not in ltc["inputs"] or ltc["fusion_flow"] not in ltc["inputs"]:
        raise WorkflowError(str(ConfigError("actions.ltc.fusion_flow", "fuses rgb with a flow: both must be in actions.ltc.inputs")))
    return [f"{name}_{extent}" for extent in ltc["extents"] for name in [*ltc["inputs"], "fusion"]]


def ltc_input_and_extent(wildcards):
    """(input, extent name) of a train_ltc job: `<input>_<extent>` in the LTC study, the view
    study's own for its rows."""
    if wildcards.study == "views":
        views = config["actions"]["ltc"]["views"]
        return views["input"], views["extent"]
    name, _, extent = wildcards.row.rpartition("_")
    if name not in config["actions"]["ltc"]["inputs"] or extent not in config["actions"]["ltc"]["extents"]:
        raise WorkflowError(f"results/actions/ltc/{wildcards.row}: not <input>_<extent> of actions.ltc")
    return name, extent


def ltc_inputs(wildcards):
    source, _ = ltc_input_and_extent(wildcards)
    files = {
        "train_manifest": "results/actions/train.csv",
        "test_manifest": "results/actions/test.csv",
        "train_clips": "results/actions/cmu/train",
        "test_clips": "results/actions/cmu/test",
    }
    if source != "rgb":
        files |= {split: f"results/actions/flow/{split}/{source}" for split in ("train", "test")}
    return files


def ltc_options(wildcards):
    """A train_ltc job's options: its input and extent, actions.ltc's training settings, and for
    a view-study row its losses."""
    ltc = config["actions"]["ltc"]
    source, extent = ltc_input_and_extent(wildcards)
    flows = {}
    if source != "rgb":
        flows = {f"{split}_flow": f"results/actions/flow/{split}/{source}" for split in ("train", "test")}
    keys = ("frame_size", "flow_scale", "crop", "width", "dropout", "iterations", "batch_size", "optimiser")
    keys += ("learning_rate", "momentum", "weight_decay", "lr_drop", "test_stride", "eval_every")
    similarity = {key: ltc["views"][key] for key in ("similarity_weight", "margin")}
    options = cli_options({"input": source} | flows | {"extent": ltc["extents"][extent]} | {key: ltc[key] for key in keys})
    options += f" {cli_options(similarity)}"
    if wildcards.study == "views":
        options += f" --losses {quoted(wildcards.row)}"
    return options


def view_test_flow():
    """The test flow the view study's networks read ([] for RGB)."""
    source = config["actions"]["ltc"]["views"]["input"]
    return [] if source == "rgb" else [f"results/actions/flow/test/{source}"]
