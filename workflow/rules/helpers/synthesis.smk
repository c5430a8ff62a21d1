# Helpers of the rules in workflow/rules/synthesis.smk alone: their inputs, options and outputs.


def motion_file(wildcards):
    """The split's motion file (synthesis.motions.files), an input of the job reading it; none
    for the embedded motions."""
    motions = config["synthesis"]["motions"]
    return [motions["files"][wildcards.split]] if motions["source"] == "file" else []


def motion_options(wildcards):
    motions = config["synthesis"]["motions"]
    if motions["source"] == "file":
        return f"--source file --file {quoted(*motion_file(wildcards))}"
    return f"--source embedded --names {quoted(*motions[wildcards.split])}"


def variant_options(wildcards):
    """New motions made of the split's own, variants and interpolations: how many, how made,
    seeded by the config's seed."""
    motions = config["synthesis"]["motions"]
    count = motions["variants"].get(wildcards.split, 0)
    interpolated = motions["interpolations"].get(wildcards.split, 0)
    options = [f"--variants {count} {cli_options(motions['variation'])}"] if count else []
    if interpolated:
        options.append(f"--interpolations {interpolated} --interpolation-step {motions['interpolation_step']}")
    return " ".join(options + [f"--seed {config['seed']}"]) if options else ""


def background_folder(wildcards):
    """The split's folder of photographs (synthesis.backgrounds.folders), an input of the job
    reading it; none for the embedded photographs."""
    backgrounds = config["synthesis"]["backgrounds"]
    return [backgrounds["folders"][wildcards.split]] if backgrounds["source"] == "folder" else []


def background_options(wildcards):
    if folder := background_folder(wildcards):
        return f"--source folder --folder {quoted(*folder)}"
    return "--source package"


def background_contents(wildcards):
    return [folder_contents(folder) for folder in background_folder(wildcards)]


def synthesis_outputs():
    rendered = [split for split in SPLITS if not from_release(split)]
    return expand("results/surreal/{split}_run{run}.csv", split=rendered, run=RUNS) + expand(
        "results/synthesis/{figure}_{split}.png", figure=("contact_sheet", "clips"), split=rendered
    )
