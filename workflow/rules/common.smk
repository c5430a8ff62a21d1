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
from pipeline.models.choices import BODYNET_INPUTS  # noqa: E402
from pipeline.training.schedule import CURVE_PANELS, STAGE_INITS  # noqa: E402
from pipeline.tracking import (  # noqa: E402
    code_version as module_code_version,
    default_tracking_uri,
    job_shell_prefix,
)

GENDERS = config["body_model"]["genders"]

TRACKING_URI = config["tracking"]["uri"] or default_tracking_uri(Path.cwd())  # the workflow's working directory
EXPERIMENT = config["tracking"]["experiment"]


def interpreter_folder():
    """The folder of the `python` Snakemake itself runs under, first on a job's PATH: a job
    finds the environment's packages even when Snakemake was started as .venv/bin/snakemake
    without activating the environment. None under --sdm conda, where the rule's own
    environment provides `python`."""
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    folder = Path(sys.executable).parent
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method or not (folder / "python").exists():
        return None
    return str(folder)


# Every job runs in bash's strict mode, imports the package from this checkout in any
# environment (venv or --sdm conda), logs into one MLflow store, and tags its run with the
# hash of the whole configuration (pipeline.tracking.job_shell_prefix). These are the jobs'
# context, not their inputs: they change no job's output and trigger no rerun.
shell.prefix(job_shell_prefix(interpreter_folder(), str(SRC), TRACKING_URI, EXPERIMENT, config))


try:
    check_config(config)
    TABLES = selected_tables(config["evaluation"]["rows"])  # each with the rows evaluation.rows asks for
except ConfigError as error:
    raise WorkflowError(str(error)) from None

SPLITS = config["synthesis"]["splits"]


wildcard_constraints:
    split="|".join(SCHEMA_DEFS["split"]["enum"]),
    method="|".join(["rendered", *SCHEMA_DEFS["flow_method"]["enum"]]),
    run="[0-2]",
    gender="female|male|neutral",
    stage="|".join(STAGE_INITS),
    network="pose3d|voxels",
    inputs="(rgb|pose2d|segm|pose3d)(\\+(rgb|pose2d|segm|pose3d))*",

RUNS = config["synthesis"]["runs"]

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
    """A config section as command-line options: {'eval_poses': 8} -> '--eval-poses 8'. In the
    keys' order, not the config's: a config laid over another (`--configfile`) may order them
    otherwise, and a job's command must not change with it."""
    parts = []
    for key, value in sorted(section.items()):
        values = value if isinstance(value, list) else [value]
        parts.append(f"--{key.replace('_', '-')} {quoted(*values)}")
    return " ".join(parts)


def output_folder(name):
    """A param: the folder holding the rule's output `name` (a command's --out), so that the
    path is said once, in output:."""
    return lambda wildcards, output: str(Path(output[name]).parent)


def folders(paths):
    """The folder of each path: a job's files named by the folders that hold them."""
    return [str(Path(path).parent) for path in paths]


def input_folder(name, levels=1):
    """A param: the folder `levels` above the rule's input `name` (a command's --root)."""
    return lambda wildcards, input: str(Path(input[name]).parents[levels - 1])


def code_version(entry):
    """A hash of the code `python -m pipeline.<entry>` runs (a package's __main__, or a
    module): as a rule's param, a change to that code reruns the rule (and only the rules
    whose code it is)."""
    package = (SRC / "pipeline" / entry.replace(".", "/")).is_dir()
    return module_code_version(f"pipeline.{entry}.__main__" if package else f"pipeline.{entry}")


GPU = 0 if config["bodynet"]["device"] == "cpu" else 1
# (the gpu resource of the jobs whose networks may run on one: none where bodynet.device keeps
# them on the CPU. Memory and run time are each rule's own resources, a cluster's partition
# and account the profile's: profiles/slurm/config.yaml)


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


@functools.cache
def folder_contents(folder):
    """The state of the files in a folder a job reads (pipeline.listing.folder_state): as the
    job's param, an edited, added or removed file reruns it, which the folder's own time does
    not show."""
    return folder_state(folder)


def render_options(wildcards):
    synthesis = config["synthesis"]
    options = {key: synthesis[key] for key in ("clip_length", "shapes", "outfits", "camera_distance", "passes")}
    light = {f"light_{key}": value for key, value in synthesis["light"][wildcards.split].items()}
    flags = " --lossless" if synthesis["lossless"] else ""
    voxels = synthesis["voxels"]
    return f"{cli_options(options | light)} --voxels {voxels['resolution']} --voxel-frames {voxels['frames']}{flags}"


# The helpers of several rule files, by what they are about; then each rule file's own.
include: "helpers/clips.smk"
include: "helpers/bodynet.smk"
include: "helpers/sources.smk"
include: "helpers/synthesis.smk"
include: "helpers/data_study.smk"
include: "helpers/motion.smk"
include: "helpers/training.smk"
include: "helpers/sparsity.smk"
include: "helpers/evaluation.smk"
include: "helpers/body_model.smk"
include: "helpers/actions.smk"
include: "helpers/mosaic.smk"
include: "helpers/video_mesh.smk"
include: "helpers/sim2real.smk"
