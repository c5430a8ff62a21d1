# Helpers of the rules in workflow/rules/body_model.smk alone: their inputs, options and outputs.


def body_model_outputs():
    outputs = expand("results/body_model/{gender}/figure.png", gender=GENDERS)
    if config["body_model"]["source"] == "anny":
        outputs.append("results/body_model/summary.csv")
    return outputs
