# SURREAL + BodyNet, end to end. The rules live in workflow/rules/; the code they call is
# the `pipeline` package in src/.

import os
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from pipeline.config import typed_overrides  # noqa: E402
from pipeline.errors import InputError  # noqa: E402
from pipeline.tracking import end_pipeline_run, start_pipeline_run  # noqa: E402


configfile: "config.yaml"


# Every job writes its progress into its log file: a progress bar's line every 30 s, not a step.
os.environ.setdefault("TQDM_MININTERVAL", "30")


SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"

# `--config section='{key: 3}'` means what the same YAML means in a config file (docs/config.md).
SCHEMA_TREE = yaml.safe_load(SCHEMA.read_text())
SCHEMA_DEFS = SCHEMA_TREE["$defs"]  # the names the schema defines once (splits, flow methods)
typed_overrides(config, workflow.config_settings.config, SCHEMA_TREE)
validate(config, str(SCHEMA))


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
include: "workflow/rules/realtime.smk"
include: "workflow/rules/mosaic.smk"
include: "workflow/rules/video_mesh.smk"
include: "workflow/rules/sim2real.smk"


# An invocation that runs jobs (not a dry run) creates the MLflow store and experiment once,
# before jobs run in parallel, and opens its own run; every job's run is its child.
onstart:
    try:
        start_pipeline_run(TRACKING_URI, EXPERIMENT, config, sys.argv)
    except InputError as error:  # a tracking.uri nobody answers
        raise WorkflowError(str(error)) from None


onsuccess:
    end_pipeline_run(TRACKING_URI, "FINISHED")


onerror:
    end_pipeline_run(TRACKING_URI, "FAILED")


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
    plot_mosaic_sheet,



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
        "results/vnect_video_table.csv",
        "results/mosaic/sheet.png",
        "results/video_mesh_table.csv",
        "results/video_mesh_losses.csv",
        "results/video_mesh_transitions.csv",
        "results/sim2real_table.csv",
