# Helpers of the rules in workflow/rules/video_mesh.smk alone: their options.


def video_mesh_render_options(wildcards):
    """The render options of a split's mesh-video clips: video_mesh.dataset with the split's
    performances, and the people and outfits the main clips draw from."""
    dataset = dict(config["video_mesh"]["dataset"])
    performances = dataset.pop("performances")[wildcards.split]
    people = {key: config["synthesis"][key] for key in ("shapes", "outfits")}
    return f"{cli_options(dataset | people)} --performances {performances}"


def video_mesh_train_options(wildcards):
    """The network's sizes and the kind's training: its iterations and batch, the shared rest,
    each loss's weight (the frame model has no smoothness to keep: its frames stand alone)."""
    mesh = config["video_mesh"]
    train = dict(mesh["train"])
    kind = train.pop(wildcards.kind)
    for other in ("frame", "video"):
        train.pop(other, None)
    weights = train.pop("weights")
    if wildcards.kind == "frame":
        weights = {name: value for name, value in weights.items() if name != "smoothness"}
    network = dict(mesh["network"])
    return f"{cli_options(network | train | kind)} {keyed('--weight', weights.items())}"


def video_mesh_train_inputs(wildcards):
    files = {
        "train_manifest": "results/video_mesh/train.csv",
        "test_manifest": "results/video_mesh/test.csv",
        "train_clips": "results/video_mesh/cmu/train",
        "test_clips": "results/video_mesh/cmu/test",
        "body": body_model_file("neutral", "video_mesh"),
    }
    if wildcards.kind == "video":
        files["init"] = "results/video_mesh/frame/model.pt"
    return files
