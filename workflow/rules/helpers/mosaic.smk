# Helpers of the rules in workflow/rules/mosaic.smk alone: which pose classifier a folder names,
# its inputs and its options.

MOSAIC_SOURCE = "real|mosaic|surreal|unblended|random|random_unblended"  # pipeline.mosaic.dataset.SOURCES
# the sources that are mosaic sets, and their folders under results/mosaic
MOSAIC_FOLDERS = {"mosaic": "blended", "unblended": "unblended", "random": "random", "random_unblended": "random_unblended"}
# mosaic/<sources>/<head>[_k<K> | _<percent>pc]: evaluation folders of pipeline.evaluation.tables' rows
POSE_CLASSIFIER = rf"({MOSAIC_SOURCE})(\+({MOSAIC_SOURCE}))*/(classification|regression)(_k[0-9]+|_[0-9]+pc)?"


def mosaic_pool():
    """The images the mosaics are cut from: the training crops, or LSP made a pool."""
    return bodynet_samples("train_split") if config["mosaic"]["pool"] == "training" else "results/mosaic/pool/lsp"


def mosaic_options(wildcards):
    """A mosaic set's options: the engine's settings, its views (the real crops' own, or the
    thinned poses' random ones) and the blend."""
    engine = {k: v for k, v in config["mosaic"].items() if k in ("pool_images", "count", "size", "sigma", "alpha", "beta")}
    random = wildcards.mosaics.startswith("random")
    views = f"--views random --spacing {quoted(config['mosaic']['spacing'])}" if random else "--views own"
    blend = "--no-blend" if wildcards.mosaics.endswith("unblended") else "--blend"
    return f"{cli_options(engine)} {views} {blend}"


def pose_classifier(wildcards):
    """(sources, head, classes, percent) of a train_pose_classifier job: the config's K and all
    the mosaics' poses unless its folder names others."""
    sources, run = wildcards.run.split("/")
    head, _, variant = run.partition("_")
    classes, percent = config["mosaic"]["classifier"]["classes"], 100
    if variant.startswith("k"):
        classes = int(variant[1:])
    elif variant:
        percent = int(variant.removesuffix("pc"))
    return sources, head, classes, percent


def surreal_samples():
    """The 'surreal' images: the training split rendered again for SURREAL's clothing study."""
    outfits = config["mosaic"]["surreal_outfits"]
    return data_study_samples(f"outfits/{outfits}", "train_split")


def pose_classifier_inputs(wildcards):
    sources = pose_classifier(wildcards)[0].split("+")
    inputs = {
        "mosaics": f"results/mosaic/{MOSAIC_FOLDERS['mosaic']}",
        "real": bodynet_samples("train_split"),
        "validation": bodynet_samples("validation_split"),
    }
    if "surreal" in sources:
        inputs["surreal"] = surreal_samples()
    for name in sources:
        if name != "mosaic" and name in MOSAIC_FOLDERS:
            inputs[name] = f"results/mosaic/{MOSAIC_FOLDERS[name]}"
    return inputs


def pose_classifier_options(wildcards, input):
    sources, head, classes, percent = pose_classifier(wildcards)
    network = {key: value for key, value in config["mosaic"]["classifier"].items() if key != "classes"}
    optional = ("surreal", "unblended", "random", "random_unblended")
    given = " ".join(f"--{name.replace('_', '-')} {quoted(input[name])}" for name in optional if name in input.keys())
    return f"--sources {quoted(sources)} --head {head} --classes {classes} --percent {percent} {cli_options(network)} {given}"
