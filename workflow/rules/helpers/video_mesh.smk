# Helpers of the rules in workflow/rules/video_mesh.smk alone: their options.


def video_mesh_render_options(wildcards):
    """The render options of a split's mesh-video clips: video_mesh.dataset with the split's
    performances, the people and outfits the main clips draw from, and for the transitions
    their count and the synthesis' interpolation step."""
    dataset = dict(config["video_mesh"]["dataset"])
    performances = dataset.pop("performances")[wildcards.split]
    transitions = dataset.pop("transitions")[wildcards.split]
    people = {key: config["synthesis"][key] for key in ("shapes", "outfits")}
    options = f"{cli_options(dataset | people)} --performances {performances}"
    if wildcards.motions == "transitions":
        step = config["synthesis"]["motions"]["interpolation_step"]
        options += f" --transitions {transitions} --transition-step {step}"
    return options


# The paper's loss ablation (its Table 4): video models trained with these of the per-frame
# losses (the shape's smoothness always kept), all from the same frame model; `video` has all.
VIDEO_MESH_LOSS_ROWS = {
    "l2d": ("reprojection",),
    "l2d_l3d": ("reprojection", "joints"),
    "l2d_smpl": ("reprojection", "smpl"),
}
# The data claim: the models trained with the interpolated transitions added to the captures
VIDEO_MESH_TRANSITION_ROWS = ("frame", "frame_transitions", "video", "video_transitions")
# what train_video_mesh makes: the model, an underscore and its variant (a loss row, or transitions)
VIDEO_MESH_KINDS = ("frame", "video", *(f"video_{row}" for row in VIDEO_MESH_LOSS_ROWS), "frame_transitions", "video_transitions")


def video_mesh_train_options(wildcards):
    """The network's sizes and the kind's training: its iterations and batch, the shared rest,
    each loss's weight (the frame model has no smoothness to keep: its frames stand alone; an
    ablation row keeps its own losses)."""
    mesh = config["video_mesh"]
    train = dict(mesh["train"])
    model, _, variant = wildcards.kind.partition("_")
    kind = train[model]
    for other in ("frame", "video"):
        train.pop(other)
    weights = train.pop("weights")
    if model == "frame":
        weights = {name: value for name, value in weights.items() if name != "smoothness"}
    if variant in VIDEO_MESH_LOSS_ROWS:
        kept = (*VIDEO_MESH_LOSS_ROWS[variant], "smoothness")
        weights = {name: value for name, value in weights.items() if name in kept}
    network = dict(mesh["network"])
    return f"{cli_options(network | train | kind)} {keyed('--weight', weights.items())}"


def video_mesh_body(wildcards):
    """The body model the networks' parameters pose (video_mesh.gender), an input named when a
    mesh-video job is wanted: a config without that model's file fails only then."""
    return body_model_file(config["video_mesh"]["gender"], "video_mesh.gender")


def video_mesh_train_inputs(wildcards):
    """A kind's clips (the captures', and the transitions' for a transitions kind), the body
    model, and for a video model the frame model it starts from (trained on the same clips)."""
    model, _, variant = wildcards.kind.partition("_")
    motions = ["captures", "transitions"] if variant == "transitions" else ["captures"]
    files = {
        "train_manifests": [f"results/video_mesh/{m}/train.csv" for m in motions],
        "train_clips": [f"results/video_mesh/{m}/cmu/train" for m in motions],
        "test_manifest": "results/video_mesh/captures/test.csv",
        "test_clips": "results/video_mesh/captures/cmu/test",
        "body": video_mesh_body(wildcards),
    }
    if model == "video":
        files["init"] = "results/video_mesh/frame_transitions/model.pt" if variant == "transitions" else "results/video_mesh/frame/model.pt"
    return files


def video_mesh_loss_models():
    """{Table 4's row: the video model trained with its losses} (`all` the study's own)."""
    rows = {row: f"results/video_mesh/video_{row}/model.pt" for row in VIDEO_MESH_LOSS_ROWS}
    return rows | {"all": "results/video_mesh/video/model.pt"}


def video_mesh_smplify_options():
    """The SMPLify row's fit as the BodyNet evaluation's SMPLify++ makes it: evaluation.fit's
    settings, and each crop read mirrored too where evaluation.mirror_test says so."""
    mirror = " --mirror-test" if config["evaluation"]["mirror_test"] else ""
    return f"{fit_options()}{mirror} --smplify-clips {config['video_mesh']['smplify_clips']}"
