"""The workflow against hostile and careless use: config values and paths that would be shell
code, jobs that must not run on after a failure, a Snakemake started without its environment,
files changed behind the workflow's back, and overrides on the command line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run, snakemake, tiny_config, write_config
from pipeline.body_model.model import write_model_file
from toy_models import toy_arrays

sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
from workflow_jobs import plan  # noqa: E402

# A name that runs code wherever a shell reads it unquoted, and breaks any word splitting.
HOSTILE = "a b;$(touch PWNED_1)`touch PWNED_2`'\"&&touch PWNED_3"
MARKERS = ("PWNED_1", "PWNED_2", "PWNED_3")
SPLITS = ("train", "test", "shifted")


def hostile_sources(workdir: Path) -> dict[str, object]:
    """Background folders, motion files and SMPL files under hostile names in `workdir`, as the
    config keys naming them: {dotted key: value}."""
    from pipeline.synthesis.backgrounds import package_photos
    from pipeline.synthesis.motion import deepmimic_files, load_deepmimic, save_motions

    folder = workdir / HOSTILE
    keys: dict[str, object] = {"synthesis.backgrounds.source": "folder", "synthesis.motions.source": "file"}
    walk = next(path for path in deepmimic_files() if path.stem.endswith("walk"))
    for split in SPLITS:
        photos = folder / f"backgrounds {split}"
        photos.mkdir(parents=True)
        for photo in package_photos("train")[:2]:
            (photos / photo.name).write_bytes(photo.read_bytes())
        motions = folder / f"motions {split}.npz"
        save_motions(motions, [load_deepmimic(walk)])
        keys[f"synthesis.backgrounds.folders.{split}"] = str(photos.relative_to(workdir))
        keys[f"synthesis.motions.files.{split}"] = str(motions.relative_to(workdir))
    model = folder / "SMPL female.pkl"
    write_model_file(model, toy_arrays())
    keys |= {"body_model.source": "smpl", "body_model.smpl_files.female": str(model.relative_to(workdir))}
    keys["predict.gender"] = keys["video_mesh.gender"] = "female"
    return keys


def fake_python(folder: Path) -> Path:
    """A `python` that writes its arguments, NUL-separated, to its standard output (the job's log)."""
    folder.mkdir()
    script = folder / "python"
    script.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\"\n")
    script.chmod(0o755)
    return folder


@pytest.mark.slow
def test_no_config_value_or_path_reaches_a_jobs_shell_as_code(tmp_path):
    """Every job's command, run by bash as Snakemake runs it, hands each hostile path to the
    program whole, as one argument, and runs none of it."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    keys = hostile_sources(workdir) | {"sources.cmu_mocap.url": f"https://example.org/{HOSTILE}.zip"}
    (workdir / "images" / HOSTILE).mkdir(parents=True)
    write_config(workdir / "hostile.yaml", tiny_config(**keys))
    jobs = plan(
        ["all", "resources/downloads/cmu_mocap.zip", f"results/predict/{HOSTILE}"], ["hostile.yaml"], str(workdir)
    )
    assert len(jobs) > 100

    bin_folder = fake_python(tmp_path / "bin")
    environment = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    reached = set()
    for job in jobs:
        for log in job.logs:
            (workdir / log).parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; {job.command}"], cwd=workdir, env=environment, capture_output=True
        )
        assert result.returncode == 0, (job.rule, job.command, result.stderr)
        arguments = [os.fsdecode(word) for word in (workdir / job.logs[0]).read_bytes().split(b"\0")[:-1]]
        # a piece of the name in an argument without the whole name: the shell split it
        assert all(HOSTILE in argument for argument in arguments if "PWNED_" in argument), (job.rule, arguments)
        if any(HOSTILE in argument for argument in arguments):
            reached.add(job.rule)
    assert not [marker for marker in MARKERS if list(tmp_path.rglob(marker))]
    # the names reached every kind of job that reads a user's file or folder
    assert {"collect_backgrounds", "prepare_motions", "render_clips", "download_cmu_mocap", "predict_images"} <= reached
    assert {"evaluate_body_fit", "prepare_bodynet_samples", "plot_body_model", "render_action_clips"} <= reached


def test_jobs_stop_at_a_failing_command_and_find_snakemakes_own_python(tmp_path):
    """The shell prefix every job runs under keeps bash's strict mode, puts the interpreter
    Snakemake runs under first on PATH, and hands a hostile experiment name over whole."""
    from pipeline.tracking import job_shell_prefix

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    prefix = job_shell_prefix(str(Path(sys.executable).parent), str(ROOT / "src"), uri, HOSTILE, tiny_config())
    prefix = prefix.replace("{{", "{").replace("}}", "}")  # as the workflow formats it (shell.prefix)
    marker = tmp_path / "ran on"
    strict = subprocess.run(["bash", "-c", f"{prefix} false; touch '{marker}'"], cwd=tmp_path)
    assert strict.returncode != 0 and not marker.exists()
    bare = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    script = "python -c 'import sys; print(sys.executable)'; printf %s \"$MLFLOW_EXPERIMENT_NAME\""
    found = subprocess.run(["bash", "-c", f"{prefix} {script}"], cwd=tmp_path, env=bare, capture_output=True, text=True)
    executable, experiment = found.stdout.split("\n", 1)
    assert Path(executable).parent == Path(sys.executable).parent
    assert experiment == HOSTILE and not [marker for marker in MARKERS if (tmp_path / marker).exists()]


@pytest.mark.slow
def test_a_run_without_the_environment_on_path_reruns_what_a_changed_file_feeds(tmp_path):
    """Snakemake started by its path, the environment not activated, with backgrounds and motions
    from the user's files under hostile names: the jobs run, nothing of the names runs; then a
    replaced photograph, an added one, and another motion in the motion file each rerun exactly
    the job that reads it, and a file written again unchanged reruns nothing."""
    keys = hostile_sources(tmp_path)
    keys.pop("body_model.source")
    config = write_config(tmp_path / "tiny.yaml", tiny_config(**keys))
    targets = [f"resources/backgrounds/{split}" for split in ("train", "test")]
    targets += [f"resources/motions/{split}.npz" for split in ("train", "test")]
    bare = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "DVC_NO_ANALYTICS": "1"}
    snakemake_command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    command = [*snakemake_command, *targets, "--cores", "2", "--configfile", str(config)]
    result = subprocess.run(command, cwd=tmp_path, env=bare, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all((tmp_path / target).exists() for target in targets)
    assert not [marker for marker in MARKERS if list(tmp_path.rglob(marker))]

    from test_workflow import dry_run_jobs

    def would_run() -> dict[str, int]:
        return dry_run_jobs(run([*command, "-n"], cwd=tmp_path).stdout)

    motions = tmp_path / keys["synthesis.motions.files.test"]
    motions.write_bytes(motions.read_bytes())  # the same content, a newer time: Snakemake's checksum says unchanged
    assert would_run() == {}
    train, test = (tmp_path / keys[f"synthesis.backgrounds.folders.{split}"] for split in ("train", "test"))
    first, second = sorted(train.iterdir())
    first.write_bytes(second.read_bytes())  # another photograph under the same name
    assert would_run() == {"collect_backgrounds": 1}
    (test / "another.jpg").write_bytes(second.read_bytes())  # one more
    assert would_run() == {"collect_backgrounds": 2}
    from pipeline.synthesis.motion import deepmimic_files, load_deepmimic, save_motions

    save_motions(motions, [load_deepmimic(next(path for path in deepmimic_files() if path.stem.endswith("run")))])
    assert would_run() == {"collect_backgrounds": 2, "prepare_motions": 1}


@pytest.mark.slow
def test_nested_overrides_on_the_command_line_keep_their_types(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny_config())
    result = snakemake(
        tmp_path,
        "-n",
        "-p",
        "results/bodynet/pose2d/model.pt",
        "--configfile",
        str(config),
        "--config",
        "bodynet={batch_size: 3, hourglass: {stacks: 1}}",
        "tracking={experiment: '123'}",
    )
    assert "--batch-size 3 " in result.stdout and "--stacks 1 " in result.stdout
    refused = snakemake(tmp_path, "-n", "--configfile", str(config), "--config", "bodynet={batch_size: 0}", check=False)
    assert refused.returncode != 0 and "On instance['bodynet']['batch_size']" in refused.stdout + refused.stderr
