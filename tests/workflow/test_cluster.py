"""Cluster execution and faults: the SLURM profile on a real single-node SLURM, a pipeline
killed mid-stage and rerun, two pipelines writing to one MLflow store at once."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import ROOT, file_hashes, snakemake, tiny_config, write_config

SLURM_DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
# Where SLURM's commands look for the configuration; a job's inner `srun` is started with a
# cleaned environment (no SLURM_CONF), so the test cluster's configuration must live here.
SLURM_CONF = Path("/etc/slurm/slurm.conf")

SLURM_CONFIG = """\
ClusterName=pipeline-test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture
def slurm_cluster(tmp_path_factory):
    """A one-node SLURM cluster on this machine (munge, slurmctld, slurmd), torn down after."""
    if not all(Path(daemon).exists() for daemon in SLURM_DAEMONS) or os.geteuid() != 0:
        pytest.skip("needs root and Debian's slurm-wlm and munge (apt install slurm-wlm munge)")
    if SLURM_CONF.exists():
        pytest.skip(f"{SLURM_CONF} exists: this machine has its own SLURM, left untouched")
    folder = tmp_path_factory.mktemp("slurm")
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    subprocess.run(
        [
            "/usr/sbin/munged",
            "--force",
            f"--key-file={key}",
            f"--socket={folder}/munge.socket",
            f"--pid-file={folder}/munged.pid",
            f"--log-file={folder}/munged.log",
            f"--seed-file={folder}/munge.seed",
        ],
        check=True,
    )
    SLURM_CONF.parent.mkdir(exist_ok=True)
    SLURM_CONF.write_text(SLURM_CONFIG.format(host=socket.gethostname(), folder=folder, cpus=os.cpu_count()))
    try:
        subprocess.run(["/usr/sbin/slurmctld"], check=True)
        subprocess.run(["/usr/sbin/slurmd"], check=True)
        for _ in range(60):
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the test SLURM node did not come up: {state!r}")
        yield folder
    finally:
        subprocess.run(["scancel", "--user", "root"], capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = folder / f"{name}.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text()), signal.SIGTERM)
                except ProcessLookupError:
                    pass
        SLURM_CONF.unlink(missing_ok=True)


@pytest.mark.slurm
def test_the_slurm_profile_runs_each_job_as_a_slurm_job(slurm_cluster, tiny_run, tmp_path):
    workdir, _ = tiny_run
    # the tiny run's own body model, as the user's SMPL file: the clips must come out the same
    model = workdir / "resources/body_models/anny/smpl_female.pkl"
    config = tiny_config(
        **{
            "body_model.source": "smpl",
            "body_model.smpl_files.female": str(model),
        }
    )
    path = write_config(tmp_path / "cluster.yaml", config)
    targets = ["results/surreal/train_run0.csv", "results/body_model/female/figure.png"]
    result = snakemake(
        tmp_path,
        *targets,
        "--workflow-profile",
        str(ROOT / "profiles/slurm"),
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--slurm-status-command",
        "squeue",
        "--configfile",
        str(path),
        "--default-resources",
        "mem_mb=500",
        "runtime=10",
        "--set-resources",
        "render_clips:mem_mb=1000",
        "render_clips:runtime=15",
    )
    output = result.stdout + result.stderr
    submitted = dict(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: .*?/rule_(\w+)/", output))
    assert sorted(submitted.values()) == ["collect_backgrounds", "plot_body_model", "prepare_motions", "render_clips"]
    controller_log = (slurm_cluster / "slurmctld.log").read_text()
    for job_id in submitted:
        assert f"_job_complete: JobId={job_id} WEXITSTATUS 0" in controller_log
    render_job = next(job_id for job_id, rule in submitted.items() if rule == "render_clips")
    asked = subprocess.run(["scontrol", "show", "job", render_job], capture_output=True, text=True).stdout
    assert "MinMemoryNode=1000M" in asked and "TimeLimit=00:15:00" in asked  # --set-resources render_clips

    clips = ["results/surreal/train_run0.csv", "results/surreal/cmu/train/run0/*/*"]
    on_slurm, local = file_hashes(tmp_path, clips), file_hashes(workdir, clips)
    assert len(on_slurm) > 10 and on_slurm == local
    assert (tmp_path / "results/body_model/female/figure.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_pipeline_killed_mid_stage_reruns_to_the_same_end(tiny_run, tmp_path):
    workdir, _ = tiny_run
    for folder in ("results/bodynet/samples/train", "results/bodynet/samples/test"):
        shutil.copytree(workdir / folder, tmp_path / folder)
    config = write_config(tmp_path / "long.yaml", tiny_config(**{"bodynet.iterations.pose2d": 200}))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--cores",
        "1",
        "results/bodynet/pose2d/model.pt",
        "--allowed-rules",
        "train_bodynet",
        "--configfile",
        str(config),
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pipeline = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = tmp_path / "logs/train_bodynet/pose2d.log"

    def iterations_done() -> int:
        logged = re.findall(r"pipeline\.training: pose2d (\d+):", log.read_text()) if log.exists() else []
        return int(logged[-1]) if logged else 0

    deadline = time.monotonic() + 300
    while iterations_done() < 50:  # a quarter into the stage, past several checkpoints
        assert pipeline.poll() is None and time.monotonic() < deadline, "the stage ended before it was killed"
        time.sleep(0.1)
    os.killpg(pipeline.pid, signal.SIGKILL)  # the whole pipeline, as a lost node or a kill -9 would
    pipeline.wait()
    killed_at = iterations_done()
    assert killed_at < 200

    stage = tmp_path / "results/bodynet/pose2d"
    assert not (stage / "model.pt").exists()
    dry = snakemake(
        tmp_path,
        "-n",
        "results/bodynet/pose2d/model.pt",
        "--allowed-rules",
        "train_bodynet",
        "--configfile",
        str(config),
    )
    assert "train_bodynet" in dry.stdout

    # a killed Snakemake leaves its lock behind: released by hand, as after any kill -9
    snakemake(tmp_path, "--unlock", "--configfile", str(config))
    snakemake(
        tmp_path,
        "--cores",
        "1",
        "results/bodynet/pose2d/model.pt",
        "--allowed-rules",
        "train_bodynet",
        "--configfile",
        str(config),
    )
    resumed = re.search(r"resuming at iteration (\d+)", log.read_text())
    assert resumed and 0 < int(resumed.group(1)) <= killed_at  # from its last whole checkpoint, not from zero
    history = pd.read_csv(stage / "history.csv")
    assert list(history["iteration"]) == list(range(0, 201, 2))
    # a checkpoint the kill caught mid-write was never taken, and its temporary is cleared
    assert not (stage / "checkpoint.pt").exists() and not list(stage.glob(".*tmp*"))
    import torch

    checkpoint = torch.load(stage / "model.pt", map_location="cpu", weights_only=True)
    assert checkpoint["stage"] == "pose2d"
    again = snakemake(
        tmp_path,
        "-n",
        "results/bodynet/pose2d/model.pt",
        "--allowed-rules",
        "train_bodynet",
        "--configfile",
        str(config),
    )
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_two_pipelines_logging_to_one_store_at_once_lose_no_run(tmp_path):
    store = tmp_path / "shared" / "mlflow.db"
    uri = f"sqlite:///{store}"
    targets = [f"resources/motions/{split}.npz" for split in ("train", "test", "shifted")] + [
        "resources/backgrounds/test"
    ]
    pipelines = []
    for seed in (1, 2):
        workdir = tmp_path / f"pipeline{seed}"
        workdir.mkdir()
        config = write_config(workdir / "config.yaml", tiny_config(**{"seed": seed, "tracking.uri": uri}))
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            "1",
            *targets,
            "--configfile",
            str(config),
        ]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        pipelines.append(
            subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    for pipeline in pipelines:
        output, _ = pipeline.communicate(timeout=600)
        assert pipeline.returncode == 0, output[-3000:]

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bodynet")
    every_run = client.search_runs([experiment.experiment_id], max_results=1000)
    invocations = {r.info.run_id: r for r in every_run if r.data.tags.get("pipeline.invocation") == "true"}
    runs = [r for r in every_run if r.info.run_id not in invocations]
    assert len(runs) == 2 * len(targets) and len(invocations) == 2
    assert {run.info.status for run in every_run} == {"FINISHED"}
    per_pipeline = {}
    for run_record in runs:
        per_pipeline.setdefault(run_record.data.tags["pipeline.config_hash"], []).append(run_record)
        assert run_record.data.params, run_record.info.run_name  # every run kept its parameters
    assert sorted(len(group) for group in per_pipeline.values()) == [len(targets)] * 2
    for group in per_pipeline.values():  # each pipeline's jobs nest under its own invocation's run
        (parent,) = {run_record.data.tags["mlflow.parentRunId"] for run_record in group}
        assert invocations[parent].data.tags["pipeline.config_hash"] == group[0].data.tags["pipeline.config_hash"]


def test_a_write_clears_the_temporaries_of_killed_writers_only(tmp_path):
    from pipeline.atomic import write_json

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = int(finished.stdout), os.getppid()
    stale, running = tmp_path / f".summary.tmp-{dead}.json", tmp_path / f".summary.tmp-{alive}.json"
    stale.write_text("{")  # half-written by a process that was killed
    running.write_text("{")  # being written by a process that still runs
    write_json(tmp_path / "summary.json", {"pckh": 0.5})
    assert not stale.exists() and running.exists()
    assert (tmp_path / "summary.json").read_text() == '{\n  "pckh": 0.5\n}\n'
