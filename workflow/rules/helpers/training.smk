# Helpers of the rules in workflow/rules/training.smk alone: their inputs, options and outputs.


def stage_inits(wildcards):
    return [f"results/bodynet/{stage}/model.pt" for stage in STAGE_INITS[wildcards.stage]]


def variant_inits(wildcards):
    stages = ["pose2d", "segm"] if wildcards.network == "pose3d" else ["pose3d"]
    return [f"results/bodynet/{stage}/model.pt" for stage in stages]


def stage_threads(wildcards):
    """Threads of a training stage: bodynet.threads, or more where bodynet.stage_threads asks."""
    bodynet = config["bodynet"]
    return max(bodynet["threads"], bodynet["stage_threads"].get(wildcards.stage, 1))


def bodynet_outputs():
    """The learning curves; the stages come with the tables that measure them (all of them unless
    evaluation.rows leaves a stage's rows out)."""
    return ["results/bodynet/learning_curves.png"]
