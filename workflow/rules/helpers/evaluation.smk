# Helpers of the rules in workflow/rules/evaluation.smk alone: their inputs, options and outputs.


def evaluation_samples(wildcards):
    """The test samples an evaluation of SURREAL's networks reads (tested_frames)."""
    if tested_frames(wildcards.evaluation)[1] == "lossless":
        return data_study_samples("lossless", "validation_split")
    return bodynet_samples("validation_split")


def evaluated_model(wildcards):
    """The checkpoint an evaluation measures: SMPLify++ works on the 3D-pose stage's networks;
    with evaluation.pruned, a stage's network is the one without its inactive filters."""
    evaluation = wildcards.evaluation
    if evaluation.startswith("inputs/"):
        return f"results/bodynet/{evaluation}/model.pt"
    evaluation, _ = tested_frames(evaluation)
    if evaluation.startswith("data_study/"):  # SURREAL's two networks, trained on other data
        return f"results/{evaluation}/depth/model.pt"
    if evaluation == "smplify":
        return smplify_model()
    return pruned_model(evaluation) if config["evaluation"]["pruned"] else stage_model(evaluation)


def smplify_model():
    """The networks SMPLify++ fits to: the 3D-pose stage's (its 2D pose, segmentation and 3D
    pose trained), without their inactive filters with evaluation.pruned."""
    return pruned_model("pose3d") if config["evaluation"]["pruned"] else stage_model("pose3d")


def table_summaries(wildcards):
    """{row: summary.json} of a table's rows."""
    return {row.key: f"{evaluation_folder(row.evaluation)}/summary.json" for row in TABLES[wildcards.table].rows}


def evaluation_outputs():
    return expand("results/{table}.csv", table=TABLES) + ["results/results.md"]
