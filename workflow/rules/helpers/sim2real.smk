# Helpers of the rules in workflow/rules/sim2real.smk alone.


def sim2real_prepare_options():
    """sim2real.dataset as options: the crop, the box, the hand-held camera's motion, the
    occluders and hidden keypoints."""
    dataset = dict(config["sim2real"]["dataset"])
    return cli_options(dataset.pop("camera") | dataset.pop("occlusion") | dataset)


def sim2real_train_options(wildcards):
    """The network's sizes, the training at the job's clip length and each loss's weight: a
    length other than sim2real.train.window takes as many windows a step as keep the steps a
    batch (the frames it reads, less one a clip) near the default's (the paper: 3 clips of 31
    frames, 6 of 8 or 16)."""
    train = dict(config["sim2real"]["train"])
    weights = train.pop("weights")
    window = int(wildcards.frames)
    steps = train["batch_size"] * (train["window"] - 1)
    train |= {"window": window, "batch_size": max(1, round(steps / (window - 1)))}
    return f"{cli_options(config['sim2real']['network'] | train)} {keyed('--weight', weights.items())}"


def sim2real_model(construction, inputs, frames=None):
    """Where train_sim2real writes a model: of a construction and inputs, read in clips of
    `frames` (sim2real.train.window unless given)."""
    frames = frames or config["sim2real"]["train"]["window"]
    return f"results/sim2real/{construction}/{inputs}/{frames}_frames/model.pt"


def sim2real_rows():
    """{row: model} of the table: each input of sim2real.inputs trained on the full construction,
    flow + keypoints on each of sim2real.constructions, and on clips of each of
    sim2real.clip_lengths (the default's own length is the flow + keypoints row)."""
    study = config["sim2real"]
    rows = {inputs: sim2real_model("full", inputs) for inputs in study["inputs"]}
    rows |= {name: sim2real_model(name, "flow+keypoints") for name in study["constructions"]}
    lengths = [n for n in study["clip_lengths"] if n != study["train"]["window"]]
    return rows | {f"frames_{n}": sim2real_model("full", "flow+keypoints", n) for n in lengths}
