# Helpers shared by the rules: paths, CLI options from config sections, and the
# environment every job inherits (package path, MLflow store, config hash).

import functools
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))

from pipeline.config import ConfigError, check_config  # noqa: E402
from pipeline.errors import InputError  # noqa: E402
from pipeline.evaluation.tables import REFERENCES, selected_tables  # noqa: E402
from pipeline.listing import folder_state  # noqa: E402
from pipeline.models.inputs import BODYNET_INPUTS  # noqa: E402
from pipeline.training.schedule import CURVE_PANELS, STAGE_INITS  # noqa: E402
from pipeline.tracking import (  # noqa: E402
    code_version as module_code_version, config_hash, default_tracking_uri, end_pipeline_run,
    start_pipeline_run,
)

GENDERS = config["body_model"]["genders"]

TRACKING_URI = config["tracking"]["uri"] or default_tracking_uri(Path.cwd())  # the workflow's working directory
EXPERIMENT = config["tracking"]["experiment"]



def interpreter_path():
    """`PATH=<bin>:$PATH `, where <bin> holds the `python` Snakemake itself runs under: a job
    finds the environment's packages even when Snakemake was started as .venv/bin/snakemake
    without activating the environment. Nothing under --sdm conda, where the rule's own
    environment provides `python`."""
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    folder = Path(sys.executable).parent
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method or not (folder / "python").exists():
        return ""
    return f"PATH={shlex.quote(str(folder))}:$PATH "


# Every job runs in bash's strict mode (a failing command fails the job, as Snakemake's own
# prefix would have it), imports the package from this checkout in any environment (venv or
# --sdm conda), logs into one MLflow store, and tags its run with the hash of the whole
# configuration. These are the jobs' context, not their inputs, so they change no job's
# output and trigger no rerun. (Braces are doubled twice: once for the f-string, once for
# the shell command's own formatting.)
shell.prefix(
    "set -euo pipefail; "
    f"export {interpreter_path()}PYTHONPATH={shlex.quote(str(SRC))}${{{{PYTHONPATH:+:$PYTHONPATH}}}} "
    f"MLFLOW_TRACKING_URI={shlex.quote(TRACKING_URI)} "
    f"MLFLOW_EXPERIMENT_NAME={shlex.quote(EXPERIMENT)} "
    f"PIPELINE_CONFIG_HASH={config_hash(config)}; "
)


try:
    check_config(config)
    TABLES = selected_tables(config["evaluation"]["rows"])  # each with the rows evaluation.rows asks for
except ConfigError as error:
    raise WorkflowError(str(error)) from None

SPLITS = config["synthesis"]["splits"]




wildcard_constraints:
    split="train|val|test|shifted",
    method="rendered|farneback|dis_ultrafast|dis_fast|dis_medium|tvl1",
    run="[0-2]",
    gender="female|male|neutral",
    stage="|".join(STAGE_INITS),
    network="pose3d|voxels",
    inputs="(rgb|pose2d|segm|pose3d)(\\+(rgb|pose2d|segm|pose3d))*",

RUNS = config["synthesis"]["runs"]

# The clips rules read: the pipeline's renders, or the SURREAL release read in place (each
# split it holds, every run; a split it lacks is rendered).
RELEASE = Path(config["data"]["surreal_root"]) if config["data"]["source"] == "surreal" else None


def from_release(split):
    return RELEASE is not None and (RELEASE / "cmu" / split).is_dir()


def clips_root(split):
    return str(RELEASE) if from_release(split) else "results/surreal"


def split_clips(split):
    """What a job reading a split's clips depends on: the release's split folder, or the
    manifests of the split's renders."""
    if from_release(split):
        return [str(RELEASE / "cmu" / split)]
    return expand("results/surreal/{split}_run{run}.csv", split=split, run=RUNS)


def release_contents(split):
    """The state of the release's split folder a job reads in place (none for renders, whose
    manifests are the job's inputs): as the job's param, a changed file of the release reruns it."""
    return [folder_contents(path) for path in split_clips(split) if from_release(split)]


def quoted(*words):
    """Words as one piece of a shell command, each quoted where it must be: a path or config
    value reaches the program as one argument and never runs as shell code."""
    return " ".join(shlex.quote(str(word)) for word in words)


def repeated(option, values):
    """`option value` for each value, quoted: repeated('--init', ['a b.pt']) -> "--init 'a b.pt'"."""
    return " ".join(f"{option} {quoted(value)}" for value in values)


def keyed(option, pairs):
    """`option key=value` for each (key, value) pair, quoted: the repeatable KEY=PATH options."""
    return repeated(option, (f"{key}={value}" for key, value in pairs))


def cli_options(section):
    """A config section as command-line options: {'eval_poses': 8} -> '--eval-poses 8'."""
    parts = []
    for key, value in section.items():
        values = value if isinstance(value, list) else [value]
        parts.append(f"--{key.replace('_', '-')} {quoted(*values)}")
    return " ".join(parts)


def code_version(entry):
    """A hash of the code `python -m pipeline.<entry>` runs (a package's __main__, or a
    module): as a rule's param, a change to that code reruns the rule (and only the rules
    whose code it is)."""
    package = (SRC / "pipeline" / entry.replace(".", "/")).is_dir()
    return module_code_version(f"pipeline.{entry}.__main__" if package else f"pipeline.{entry}")


def cluster_resources(rule_name):
    """Memory, run time, partition and a GPU (for the rules marked gpu, unless the networks
    run on the CPU): what each job of `rule_name` asks a cluster for (config `cluster`)."""
    cluster = config["cluster"]
    wanted = cluster["default"] | cluster["rules"].get(rule_name, {})
    gpu = wanted.get("gpu", False) and config["bodynet"]["device"] != "cpu"
    resources = {"mem_mb": wanted["mem_mb"], "runtime": wanted["runtime"], "gpu": int(gpu)}
    partition = (cluster["gpu_partition"] if gpu else None) or cluster["partition"]
    if partition:
        resources["slurm_partition"] = partition
    return resources


def check_cluster_rules():
    """cluster.rules names rules of this workflow (run once the rules are defined)."""
    defined = {defined_rule.name for defined_rule in workflow.rules}
    for name in config["cluster"]["rules"]:
        if name not in defined:
            raise WorkflowError(str(ConfigError(f"cluster.rules.{name}", "is not a rule of the workflow")))


def tracking(rule_name):
    """Options that tag a job's MLflow run with its rule and wildcards."""

    def options(wildcards):
        return f"--rule {rule_name} {keyed('--wildcard', wildcards.items())}".rstrip()

    return options


def body_model_file(gender, key="body_model.genders"):
    """The SMPL-format model every stage poses: built from anny, or the user's own file.
    `key` names the setting that asked for `gender`, for the error when its file is missing."""
    if config["body_model"]["source"] == "smpl":
        path = config["body_model"]["smpl_files"][gender]
        if not path:
            message = f"asks for the {gender} model: name its file under body_model.smpl_files.{gender}"
            raise WorkflowError(str(ConfigError(key, message)))
        return path
    return f"resources/body_models/anny/smpl_{gender}.pkl"


def body_model_options(option):
    """`option <gender>=<file>` for each gender the clips are drawn from (synthesis.genders)."""
    return keyed(option, ((gender, body_model_file(gender)) for gender in config["synthesis"]["genders"]))


def download_options(source):
    return cli_options({key: source[key] for key in ("url", "sha256", "md5", "size") if source.get(key)})


def surreal_url(wildcards):
    base = config["sources"]["surreal"]["base_url"].rstrip("/")
    return f"{base}/{wildcards.file}"


def motion_file(wildcards):
    """The split's motion file (synthesis.motions.files), an input of the job reading it; none
    for the embedded motions."""
    motions = config["synthesis"]["motions"]
    return [motions["files"][wildcards.split]] if motions["source"] == "file" else []


def motion_options(wildcards):
    motions = config["synthesis"]["motions"]
    if motions["source"] == "file":
        return f"--source file --file {quoted(*motion_file(wildcards))}"
    return f"--source embedded --names {quoted(*motions[wildcards.split])}"


def variant_options(wildcards):
    """New motions made of the split's own: how many, how varied, seeded by the config's seed."""
    motions = config["synthesis"]["motions"]
    count = motions["variants"].get(wildcards.split, 0)
    if not count:
        return ""
    return f"--variants {count} {cli_options(motions['variation'])} --seed {config['seed']}"


def background_folder(wildcards):
    """The split's folder of photographs (synthesis.backgrounds.folders), an input of the job
    reading it; none for the embedded photographs."""
    backgrounds = config["synthesis"]["backgrounds"]
    return [backgrounds["folders"][wildcards.split]] if backgrounds["source"] == "folder" else []


def background_options(wildcards):
    if folder := background_folder(wildcards):
        return f"--source folder --folder {quoted(*folder)}"
    return "--source package"


@functools.cache
def folder_contents(folder):
    """The state of the files in a folder a job reads (pipeline.listing.folder_state): as the
    job's param, an edited, added or removed file reruns it, which the folder's own time does
    not show."""
    return folder_state(folder)


def background_contents(wildcards):
    return [folder_contents(folder) for folder in background_folder(wildcards)]


def render_options(wildcards):
    synthesis = config["synthesis"]
    options = {key: synthesis[key] for key in ("clip_length", "shapes", "outfits", "camera_distance", "passes")}
    light = {f"light_{key}": value for key, value in synthesis["light"][wildcards.split].items()}
    flags = " --lossless" if synthesis["lossless"] else ""
    voxels = synthesis["voxels"]
    return f"{cli_options(options | light)} --voxels {voxels['resolution']} --voxel-frames {voxels['frames']}{flags}"


def synthesis_outputs():
    rendered = [split for split in SPLITS if not from_release(split)]
    return expand("results/surreal/{split}_run{run}.csv", split=rendered, run=RUNS) + expand(
        "results/synthesis/{figure}_{split}.png", figure=("contact_sheet", "clips"), split=rendered
    )



def bodynet_samples(split_key):
    return f"results/bodynet/samples/{config['bodynet']['samples'][split_key]}"


# SURREAL's data studies: a share of the training clips, the training split rendered again in
# fewer outfits, or the training and test splits rendered again with lossless frames.
STUDY_RENDERS = "outfits/[0-9]+|lossless"
DATA_STUDIES = f"clips/[0-9]+|{STUDY_RENDERS}"


def study_render_options(wildcards):
    """What a study's renders change: the outfits the clips wear, or lossless frames besides."""
    if wildcards.variant == "lossless":
        return "--lossless"
    return f"--outfits-used {re.fullmatch(r'outfits/([0-9]+)', wildcards.variant)[1]}"


def study_clip_share(wildcards):
    """The share of the training clips a data-study network trains on (the amount study's)."""
    amount = re.fullmatch(r"clips/([0-9]+)", wildcards.study)
    return int(amount[1]) / 100 if amount else 1


def study_renders_split(study, split):
    """Whether a data study renders `split` again: the outfit studies the training split, the
    compression study both the training and the test split."""
    if study == "lossless":
        return True
    return study.startswith("outfits/") and split == config["bodynet"]["samples"]["train_split"]


def data_study_samples(study, split_key):
    """The samples a data study's network reads for bodynet.samples.<split_key>: the study's own
    renders of that split, or the main run's samples (of which the amount study takes a share)."""
    split = config["bodynet"]["samples"][split_key]
    if study_renders_split(study, split):
        return f"results/data_study/{study}/samples/{split}"
    return bodynet_samples(split_key)


def study_samples(split_key):
    """data_study_samples of a train_data_study job."""
    return lambda wildcards: data_study_samples(wildcards.study, split_key)


def sample_frames(split):
    """all | middle: the frames a split's samples are made of."""
    samples = config["bodynet"]["samples"]
    return samples["train_frames" if split == samples["train_split"] else "validation_frames"]


def sample_sizes():
    return cli_options({key: config["bodynet"][key] for key in ("input_size", "heatmap_size", "voxel_size")})


def flow_samples(source, split):
    """Samples of a split carrying flow from `source` (rendered | estimated)."""
    return f"results/bodynet/samples_flow/{source}/{split}"


def input_flow(wildcards):
    """The stored flow a flow-sample set reads: none for the rendered flow (in the clips)."""
    if wildcards.source == "rendered":
        return []
    return f"results/flow/inputs/{wildcards.split}/{config['flow']['as_input']['estimated']}"


def stage_inits(wildcards):
    return [f"results/bodynet/{stage}/model.pt" for stage in STAGE_INITS[wildcards.stage]]


def stage_model(stage):
    return f"results/bodynet/{stage}/model.pt"


def variant_inits(wildcards):
    stages = ["pose2d", "segm"] if wildcards.network == "pose3d" else ["pose3d"]
    return [f"results/bodynet/{stage}/model.pt" for stage in stages]


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
    layout = "--channels-last" if bodynet["channels_last"] else "--no-channels-last"
    return f"{cli_options(bodynet['hourglass'])} {cli_options(shared | bodynet['augmentation'])} {layout}"


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


def pruned_model(stage):
    return f"results/sparsity/analyses/bodynet/{stage}/pruned.pt"


def sparsity_analyses(wildcards):
    """{row key: analysis.json} of the sparsity table's rows."""
    folder = "results/sparsity/analyses"
    analyses = {f"bodynet/{stage}": f"{folder}/bodynet/{stage}/analysis.json" for stage in config["sparsity"]["stages"]}
    return analyses | {f"study/{name}": f"{folder}/study/{name}/analysis.json" for name in STUDY_SETTINGS}


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


def stage_threads(wildcards):
    """Threads of a training stage: bodynet.threads, or more where bodynet.stage_threads asks."""
    bodynet = config["bodynet"]
    return max(bodynet["threads"], bodynet["stage_threads"].get(wildcards.stage, 1))


def bodynet_outputs():
    """The learning curves; the stages come with the tables that measure them (all of them unless
    evaluation.rows leaves a stage's rows out)."""
    return ["results/bodynet/learning_curves.png"]


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
    stage = "pose3d" if evaluation == "smplify" else evaluation
    return pruned_model(stage) if config["evaluation"]["pruned"] else stage_model(stage)


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


def table_summaries(wildcards):
    """{row: summary.json} of a table's rows."""
    return {row.key: f"{evaluation_folder(row.evaluation)}/summary.json" for row in TABLES[wildcards.table].rows}


def evaluation_outputs():
    return expand("results/{table}.csv", table=TABLES) + ["results/results.md"]


def body_model_outputs():
    outputs = expand("results/body_model/{gender}/figure.png", gender=GENDERS)
    if config["body_model"]["source"] == "anny":
        outputs.append("results/body_model/summary.csv")
    return outputs


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


# --- actions ---------------------------------------------------------------------------


def action_dataset_options(split):
    """The render options of a split's action clips: actions.dataset, its performances per
    split, and the people and outfits the main clips draw from."""
    dataset = dict(config["actions"]["dataset"])
    performances = dataset.pop("performances")
    if split not in performances:
        raise WorkflowError(f"config.yaml: actions.dataset.performances has no entry for split {split!r}")
    people = {key: config["synthesis"][key] for key in ("shapes", "outfits")}
    return f"{cli_options(dataset)} --performances {performances[split]} {cli_options(people)}"


def action_flow_methods():
    """The flow methods the action networks read (actions.ltc.inputs but RGB)."""
    return [name for name in config["actions"]["ltc"]["inputs"] if name != "rgb"]


def ltc_networks():
    """The LTC table's networks: every input at every extent, and their late fusions."""
    ltc = config["actions"]["ltc"]
    if "rgb" not in ltc["inputs"] or ltc["fusion_flow"] not in ltc["inputs"]:
        raise WorkflowError(str(ConfigError("actions.ltc.fusion_flow", "fuses rgb with a flow: both must be in actions.ltc.inputs")))
    return [f"{name}_{extent}" for extent in ltc["extents"] for name in [*ltc["inputs"], "fusion"]]


def ltc_input_and_extent(wildcards):
    """(input, extent name) of a train_ltc job: `<input>_<extent>` in the LTC study, the view
    study's own for its rows."""
    if wildcards.study == "views":
        views = config["actions"]["ltc"]["views"]
        return views["input"], views["extent"]
    name, _, extent = wildcards.row.rpartition("_")
    if name not in config["actions"]["ltc"]["inputs"] or extent not in config["actions"]["ltc"]["extents"]:
        raise WorkflowError(f"results/actions/ltc/{wildcards.row}: not <input>_<extent> of actions.ltc")
    return name, extent


def ltc_inputs(wildcards):
    source, _ = ltc_input_and_extent(wildcards)
    files = {
        "train_manifest": "results/actions/train.csv",
        "test_manifest": "results/actions/test.csv",
        "train_clips": "results/actions/cmu/train",
        "test_clips": "results/actions/cmu/test",
    }
    if source != "rgb":
        files |= {split: f"results/actions/flow/{split}/{source}" for split in ("train", "test")}
    return files


def ltc_options(wildcards):
    """A train_ltc job's options: its input and extent, actions.ltc's training settings, and for
    a view-study row its losses."""
    ltc = config["actions"]["ltc"]
    source, extent = ltc_input_and_extent(wildcards)
    flows = {}
    if source != "rgb":
        flows = {f"{split}_flow": f"results/actions/flow/{split}/{source}" for split in ("train", "test")}
    keys = ("frame_size", "flow_scale", "crop", "width", "dropout", "iterations", "batch_size", "optimiser")
    keys += ("learning_rate", "momentum", "weight_decay", "lr_drop", "test_stride", "eval_every")
    similarity = {key: ltc["views"][key] for key in ("similarity_weight", "margin")}
    options = cli_options({"input": source} | flows | {"extent": ltc["extents"][extent]} | {key: ltc[key] for key in keys})
    options += " " + cli_options(similarity)
    if wildcards.study == "views":
        options += f" --losses {quoted(wildcards.row)}"
    return options


def view_test_flow():
    """The test flow the view study's networks read ([] for RGB)."""
    source = config["actions"]["ltc"]["views"]["input"]
    return [] if source == "rgb" else [f"results/actions/flow/test/{source}"]
