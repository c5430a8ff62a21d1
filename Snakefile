# SURREAL + BodyNet, end to end. The rules live in workflow/rules/; the code they call is
# the `pipeline` package in src/.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/body_model.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/sources.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/data_study.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/motion.smk"
include: "workflow/rules/sparsity.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/actions.smk"


check_cluster_rules()


# Seconds of work on files already made: on a cluster they run beside the head node, not as jobs.
localrules:
    plot_body_model,
    summarize_body_models,
    plot_contact_sheet,
    plot_learning_curves,
    tabulate_evaluation,
    tabulate_flow,
    tabulate_sparsity,
    results_page,
    fuse_ltc,
    tabulate_ltc,
    tabulate_view_invariance,



rule all:
    default_target: True
    input:
        body_model_outputs(),
        synthesis_outputs(),
        bodynet_outputs(),
        evaluation_outputs(),
        "results/flow_table.csv",
        "results/sparsity_table.csv",
        "results/predict_check/summary.json",
        "results/ltc_table.csv",
        "results/view_invariance.csv",
        "results/actions/view_embeddings.png",
