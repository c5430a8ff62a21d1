# Helpers of the rules in workflow/rules/sparsity.smk alone: their inputs, options and outputs.


def study_settings():
    """{name: training options} of the optimiser study: each optimiser without weight decay,
    then with each kind of decay at each strength."""
    study = config["sparsity"]["study"]
    settings = {}
    for optimiser, learning_rate in study["optimisers"].items():
        if learning_rate is None:  # left out
            continue
        settings[f"{optimiser}_none"] = {"optimiser": optimiser, "learning_rate": learning_rate}
        for decay in study["decays"]:
            for strength in study["strengths"]:
                settings[f"{optimiser}_{decay}_{strength:g}"] = {
                    "optimiser": optimiser, "learning_rate": learning_rate, "decay": decay, "weight_decay": strength
                }
    return settings


STUDY_SETTINGS = study_settings()


def analysed_model(wildcards):
    if wildcards.kind == "study":
        return f"results/sparsity/study/{wildcards.name}/model.pt"
    return stage_model(wildcards.name)


def sparsity_analyses(wildcards):
    """{row key: analysis.json} of the sparsity table's rows."""
    folder = "results/sparsity/analyses"
    analyses = {f"bodynet/{stage}": f"{folder}/bodynet/{stage}/analysis.json" for stage in config["sparsity"]["stages"]}
    return analyses | {f"study/{name}": f"{folder}/study/{name}/analysis.json" for name in STUDY_SETTINGS}
