# Helpers of the rules in workflow/rules/sim2real.smk alone.


def sim2real_prepare_options():
    """sim2real.dataset as options: the crop, the box, the hand-held camera's motion, the
    occluders and hidden keypoints."""
    dataset = dict(config["sim2real"]["dataset"])
    return cli_options(dataset.pop("camera") | dataset.pop("occlusion") | dataset)


def sim2real_train_options():
    """The network's sizes, the training and each loss's weight."""
    train = dict(config["sim2real"]["train"])
    weights = train.pop("weights")
    return f"{cli_options(config['sim2real']['network'] | train)} {keyed('--weight', weights.items())}"


def sim2real_rows():
    """{row: model} of the table: each input of sim2real.inputs trained on the full construction,
    and flow + keypoints on each of sim2real.constructions."""
    rows = {inputs: f"results/sim2real/full/{inputs}/model.pt" for inputs in config["sim2real"]["inputs"]}
    constructions = config["sim2real"]["constructions"]
    return rows | {name: f"results/sim2real/{name}/flow+keypoints/model.pt" for name in constructions}
