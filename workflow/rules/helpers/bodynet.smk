# BodyNet's samples, networks, schedule and fits: shared by the training, evaluation, sparsity,
# motion and predict rules.


def bodynet_samples(split_key):
    return f"results/bodynet/samples/{config['bodynet']['samples'][split_key]}"


def sample_frames(split):
    """all | middle: the frames a split's samples are made of."""
    samples = config["bodynet"]["samples"]
    return samples["train_frames" if split == samples["train_split"] else "validation_frames"]


def sample_sizes():
    return cli_options({key: config["bodynet"][key] for key in ("input_size", "heatmap_size", "voxel_size")})


def stage_model(stage):
    return f"results/bodynet/{stage}/model.pt"


def reads_pose3d(stage):
    """Whether a stage trains the 3D-pose network or starts from a stage that did."""
    return stage == "pose3d" or any(reads_pose3d(earlier) for earlier in STAGE_INITS[stage])


def network_options(stage):
    """The networks' sizes and the training settings every stage shares (the learning rate
    comes with each stage's schedule, and the optimiser study brings its own), and the 3D-pose
    network's loss for the stages that read it: the 2D networks' checkpoints do not depend on it."""
    bodynet = config["bodynet"]
    keys = ("lr_drop", "precision", "eval_every", "eval_samples", "device")
    keys += ("pose3d_loss",) if reads_pose3d(stage) else ()
    shared = {key: bodynet[key] for key in keys}
    backbone = {"backbone_2d": bodynet["backbone_2d"]} | {f"selecsls_{k}": v for k, v in bodynet["selecsls"].items()}
    layout = "--channels-last" if bodynet["channels_last"] else "--no-channels-last"
    return f"{cli_options(bodynet['hourglass'] | backbone)} {cli_options(shared | bodynet['augmentation'])} {layout}"


def pruned_model(stage):
    return f"results/sparsity/analyses/bodynet/{stage}/pruned.pt"


def stage_schedule(stage, variant=False):
    """--iterations, --batch-size and --learning-rate of a stage (or of an input variant of
    its network): the end-to-end stages fine-tune with their own batch and rate."""
    bodynet = config["bodynet"]
    end_to_end = stage.startswith("end_to_end")
    iterations = bodynet["iterations"]["end_to_end" if end_to_end else stage]
    if variant and bodynet["iterations"]["input_variants"]:
        iterations = bodynet["iterations"]["input_variants"]
    batch = bodynet["end_to_end_batch_size" if end_to_end else "batch_size"]
    rate = bodynet["end_to_end_learning_rate" if end_to_end else "learning_rate"]
    return f"--iterations {iterations} --batch-size {batch} --learning-rate {rate}"


def evaluation_folder(evaluation):
    """results/evaluation/<evaluation>, or the stage's own when a variant is the stage: with
    input_variants null, the tables' rows of BodyNet's own inputs are the stages themselves."""
    for network, inputs in BODYNET_INPUTS.items():
        if evaluation == f"inputs/{network}/{'+'.join(inputs)}" and not config["bodynet"]["iterations"]["input_variants"]:
            return f"results/evaluation/{network}"
    return f"results/evaluation/{evaluation}"


def tested_frames(evaluation):
    """(the network's evaluation, the test frames): an evaluation `<network>/on_<mp4|lossless>`
    measures the network on the test split's mp4 or lossless frames; any other on the frames it
    was trained on (lossless for the compression study's network, else the main run's mp4)."""
    named = re.fullmatch(r"(.+)/on_(mp4|lossless)", evaluation)
    if named:
        if config["synthesis"]["lossless"]:
            message = "must be false for surreal_compression_study, whose mp4 rows are the main run's frames"
            raise WorkflowError(str(ConfigError("synthesis.lossless", message)))
        return named[1], named[2]
    return evaluation, "lossless" if evaluation == "data_study/lossless" else "mp4"


POSE_PRIOR = "results/fitting/pose_prior.npz"


def pose_prior_input():
    """The learnt pose prior every body fit reads, or none (evaluation.fit.pose_prior)."""
    return [POSE_PRIOR] if config["evaluation"]["fit"]["pose_prior"] == "mixture" else []


def fit_options(placement=False):
    """The body fit's settings as options (pipeline.fitting.options); with `placement`, also
    where the fitted body is placed before it is measured (the evaluation's)."""
    fit = config["evaluation"]["fit"]
    options = {"joint_steps": fit["joint_steps"], "fit_steps": fit["steps"], "max_vertices": fit["max_vertices"],
               "objective": fit["objective"], "matching": fit["matching"]}
    if placement:
        options["placement"] = config["evaluation"]["placement"]
    return cli_options(options | ({"pose_prior": POSE_PRIOR} if pose_prior_input() else {}))


def readout_input(train):
    """The training samples the exemplar readout matches against, or none
    (evaluation.pose3d_readout)."""
    return [train] if config["evaluation"]["pose3d_readout"]["method"] == "exemplars" else []


def readout_options(train):
    """How an evaluation reads the networks' outputs, as options: each crop mirrored too or
    not (evaluation.mirror_test), and the 3D joints from the volumes."""
    readout = config["evaluation"]["pose3d_readout"]
    options = {"readout": readout["method"]}
    if readout["method"] == "exemplars":
        options |= {"exemplars": train, "neighbours": readout["neighbours"], "truncation": readout["truncation"]}
    mirror = " --mirror-test" if config["evaluation"]["mirror_test"] else ""
    return cli_options(options) + mirror
