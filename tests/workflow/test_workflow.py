"""The Snakemake workflow: lint, config validation, and a tiny end-to-end run."""

import json
import re
import shutil
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import ROOT, TINY, copy_project, file_hashes, run, snakemake, tiny_config, write_config
from pipeline.body_model.model import write_model_file
from toy_models import toy_arrays


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", "--configfile", str(ROOT / "config.yaml"))
    assert "Congratulations" in result.stdout + result.stderr


def test_a_plain_run_reads_the_default_profile(tmp_path):
    """Snakemake finds profiles/default beside the Snakefile on its own: its settings (the
    commands printed, failed logs shown, incomplete jobs rerun) hold for every run."""
    result = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config.yaml"))
    assert f"Using workflow specific profile {ROOT / 'profiles/default'}" in result.stdout + result.stderr
    profile = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    assert profile == {"printshellcmds": True, "show-failed-logs": True, "rerun-incomplete": True}


# The schema's and the cross-key rules' cases are unit-tested (tests/unit/test_config.py);
# these check that a run stops on each kind, with the key named, before any job runs.
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seed": "abc"}, "On instance['seed']"),
        ({"bogus": 1}, "'bogus' was unexpected"),
        ({"body_model.anny.eval_poses": "8"}, "On instance['body_model']['anny']['eval_poses']"),
        ({"evaluation.rows": {"motion_inputs": ["depth"]}}, "evaluation.rows.motion_inputs: 'depth' is not a learned"),
        ({"bodynet.input_size": 64}, "bodynet.input_size: must be 4 × bodynet.heatmap_size"),
        ({"cluster": {"default": {"mem_mb": 4000}}}, "'cluster' was unexpected"),  # resources are the rules'
        ({"synthesis.lossless": True}, "synthesis.lossless: must be false for surreal_compression_study"),
    ],
)
def test_bad_config_stops_with_the_key_named(tmp_path, overrides, message):
    path = write_config(tmp_path / "config.yaml", tiny_config(**overrides))
    result = snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


@pytest.mark.slow
def test_default_target_builds_model_figure_and_summary(tiny_run):
    workdir, _ = tiny_run
    assert (workdir / "resources/body_models/anny/smpl_female.pkl").stat().st_size > 1e6
    assert (workdir / "results/body_model/female/figure.png").stat().st_size > 10_000
    summary = pd.read_csv(workdir / "results/body_model/summary.csv")
    assert list(summary["model"]) == ["female"]
    assert summary.loc[0, "shape_variance_explained"] >= 0.95
    metrics = json.loads((workdir / "results/body_model/female/metrics.json").read_text())
    assert metrics["posing_vertex_error_mm"] == pytest.approx(summary.loc[0, "posing_vertex_error_mm"], rel=1e-5)
    manifest = pd.read_csv(workdir / "results/surreal/train_run0.csv")
    assert len(manifest) >= 2 and set(manifest["gender"]) == {"female"}
    assert (workdir / "results/synthesis/contact_sheet_train.png").stat().st_size > 10_000
    for stem in manifest["stem"]:
        sequence = stem.rsplit("_c", 1)[0]
        assert (workdir / f"results/surreal/cmu/train/run0/{sequence}/{stem}_info.mat").exists()
    for log in ("build_body_model/female.log", "plot_body_model/female.log", "render_clips/train_run0.log"):
        assert (workdir / "logs" / log).exists()
    assert (workdir / "logs/benchmarks/build_body_model/female.tsv").exists()


@pytest.mark.slow
def test_every_job_logged_an_mlflow_run(tiny_run):
    workdir, _ = tiny_run
    uri = f"sqlite:///{workdir}/mlflow/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bodynet")
    every_run = client.search_runs([experiment.experiment_id], max_results=5000)
    # the tiny DAG's invocation, and those of the tests that build more in its folder
    invocations = {r.info.run_id: r for r in every_run if r.data.tags.get("pipeline.invocation") == "true"}
    (invocation,) = [r for r in invocations.values() if f"--configfile {TINY}" in r.data.tags["pipeline.command"]]
    assert invocation.info.status == "FINISHED"
    jobs = [r for r in every_run if r.info.run_id not in invocations]
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} <= set(invocations)  # one line each in the UI
    jobs = [r for r in jobs if r.data.tags["mlflow.parentRunId"] == invocation.info.run_id]
    runs = {r.data.tags["pipeline.rule"]: r for r in jobs}
    assert set(runs) == {
        "build_body_model",
        "plot_body_model",
        "summarize_body_models",
        "prepare_motions",
        "collect_backgrounds",
        "render_clips",
        "plot_contact_sheet",
        "prepare_bodynet_samples",
        "train_bodynet",
        "plot_learning_curves",
        "train_input_variant",
        "train_data_study",
        "render_study_clips",
        "prepare_study_samples",
        "evaluate_body_fit",
        "learn_pose_prior",
        "check_predict",
        "evaluate_reference",
        "evaluate_tasks",
        "tabulate_evaluation",
        "results_page",
        "extract_flow",
        "tabulate_flow",
        "extract_input_flow",
        "prepare_flow_samples",
        "train_motion_input",
        "evaluate_motion_input",
        "evaluate_motion_reference",
        "train_sparsity_study",
        "analyse_sparsity",
        "tabulate_sparsity",
        "render_action_clips",
        "extract_action_flow",
        "train_ltc",
        "fuse_ltc",
        "tabulate_ltc",
        "tabulate_view_invariance",
        "plot_view_embeddings",
        "train_vnect",
        "evaluate_vnect",
        "evaluate_vnect_jittered",
        "evaluate_vnect_video",
        "make_mosaics",
        "train_pose_classifier",
        "mosaic_references",
        "plot_mosaic_sheet",
        "render_video_mesh_clips",
        "train_video_mesh",
        "evaluate_video_mesh",
        "evaluate_video_mesh_losses",
        "evaluate_video_mesh_transitions",
        "prepare_sim2real_clips",
        "train_sim2real",
        "evaluate_sim2real",
    }
    build = runs["build_body_model"]
    assert build.info.status == "FINISHED"
    assert build.data.tags["pipeline.wildcard.gender"] == "female"
    assert len(build.data.tags["pipeline.config_hash"]) == 16
    assert build.data.params["shape_samples"] == "60"
    assert build.data.metrics["shape_variance_explained"] >= 0.95
    assert "posing_vertex_error_mm" in build.data.metrics
    figure_artifacts = [a.path for a in client.list_artifacts(runs["plot_body_model"].info.run_id)]
    assert figure_artifacts == ["figure.png"]
    training = {
        r.data.tags["pipeline.wildcard.stage"]: r for r in jobs if r.data.tags["pipeline.rule"] == "train_bodynet"
    }
    # the stages the tiny tables measure, and those they start from; no other
    assert set(training) == {
        "pose2d",
        "segm",
        "pose3d",
        "voxels",
        "voxels_fv",  # drawn by the learning curves
        "voxels_fvsv",
        "end_to_end_fvsv",
        "depth",
        "part_voxels",
        "part_voxels_fvsv",
    }
    final = training["end_to_end_fvsv"]
    assert final.info.status == "FINISHED"
    assert "results/bodynet/voxels_fvsv/model.pt" in final.data.params["init"]
    assert {"val_voxel_iou", "val_pckh", "val_part_iou", "val_joint_error_mm", "loss_fv", "loss_sv"} <= set(
        final.data.metrics
    )
    assert {"system/cpu_utilization_percentage", "system/process_memory_megabytes"} <= set(final.data.metrics)
    history = client.get_metric_history(final.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    assert {a.path for a in client.list_artifacts(final.info.run_id)} == {
        "model",  # an MLflow model, registered
        "history.csv",
        "curves.png",
        "predictions.png",
    }
    registered = {model.name for model in client.search_registered_models()}
    assert registered == {f"bodynet-{stage}" for stage in training}
    assert final.data.tags["pipeline.model_version"] == "bodynet-end_to_end_fvsv/1"


@pytest.mark.slow
def test_the_tables_hold_every_row_asked_for_with_the_papers_numbers_and_link_their_runs(tiny_run):
    from pipeline.evaluation.tables import TABLES, selected_tables

    workdir, config = tiny_run
    rows = yaml.safe_load(config.read_text())["evaluation"]["rows"]
    assert rows and any(len(TABLES[name].learned) > len(keys) for name, keys in rows.items())
    for name, spec in selected_tables(rows).items():
        table = pd.read_csv(workdir / f"results/{name}.csv")
        assert table["key"].tolist() == [row.key for row in spec.rows]
        assert table[list(spec.columns)].notna().all().all(), name
        for column in spec.columns:  # every figure inside its own interval
            assert (table[f"{column}_low"] <= table[column] + 1e-6).all() and (
                table[column] <= table[f"{column}_high"] + 1e-6
            ).all()
        orderings = pd.read_csv(workdir / f"results/evaluation/{name}_orderings.csv")
        assert set(orderings["verdict"]) <= {"holds", "reversed", "undecided"}
        assert (workdir / f"results/evaluation/{name}.png").stat().st_size > 10_000
    page = (workdir / "results/results.md").read_text()
    assert all(spec.title in page for spec in TABLES.values()) and "reference: constant" in page
    table = pd.read_csv(workdir / "results/bodynet_table.csv")
    assert table.loc[table["key"] == "end_to_end_fvsv", "paper_surface_error_mm"].item() == 65.8
    assert (table["surface_error_mm"] > 0).all() and table["voxel_iou"].between(0, 100).all()
    assert (workdir / "results/evaluation/smplify/sheet.png").stat().st_size > 10_000
    surreal = pd.read_csv(workdir / "results/surreal_table.csv").set_index("key")
    assert surreal.loc["oracle", "part_accuracy"] == 100 and surreal.loc["oracle", "depth_st_rmse_mm"] == 0
    assert surreal.loc["segm_depth", "paper_depth_rmse_mm"] == 72.9 and surreal.loc["segm_depth", "depth_rmse_mm"] > 0
    vnect = pd.read_csv(workdir / "results/vnect_table.csv").set_index("key")
    assert vnect.loc["vnect_regression", "paper_pck3d"] == 77.5 and vnect["auc3d"].between(0, 100).all()
    # the jittered rows read other crops than the whole ones (the same networks)
    realtime = workdir / "results/evaluation/realtime"
    whole, moved = (pd.read_csv(realtime / f"{name}/images.csv") for name in ("vnect", "vnect_jittered"))
    assert not np.allclose(whole["peak_error_px"], moved["peak_error_px"], rtol=0, atol=1e-9)
    assert json.loads((realtime / "vnect_jittered/summary.json").read_text())["crop_jitter"] == 0.1
    parts = pd.read_csv(workdir / "results/bodynet_part_voxels.csv").set_index("key")
    assert parts.loc["oracle", "part_voxel_iou_foreground"] == 100 and parts.loc["oracle", "part_voxel_iou_head"] == 100
    assert parts.loc["part_voxels_fvsv", "paper_part_voxel_iou_torso"] == 67.9
    assert 0 <= parts.loc["part_voxels_fvsv", "part_voxel_iou_torso"] < 100 and "part_voxels" not in parts.index
    summary = json.loads((workdir / "results/evaluation/end_to_end_fvsv/summary.json").read_text())
    assert summary["mirror_test"] is True  # the tiny config reads each crop mirrored too
    client = MlflowClient(f"sqlite:///{workdir}/mlflow/mlflow.db")
    evaluation = client.get_run(summary["evaluation_run_id"])
    trained = client.get_run(evaluation.data.tags["pipeline.evaluated_run_id"])
    assert trained.data.tags["pipeline.wildcard.stage"] == "end_to_end_fvsv"
    assert evaluation.data.tags["pipeline.evaluated_model_version"] == trained.data.tags["pipeline.model_version"]
    assert evaluation.data.metrics["surface_error_mm"] == pytest.approx(summary["measures"]["surface_error_mm"])
    tables = [
        r
        for r in client.search_runs([evaluation.info.experiment_id])
        if r.data.tags.get("pipeline.rule") == "tabulate_evaluation"
    ]
    main = next(r for r in tables if r.data.tags["pipeline.wildcard.table"] == "bodynet_table")
    assert main.data.tags["pipeline.row.end_to_end_fvsv.evaluation_run_id"] == summary["evaluation_run_id"]
    assert main.data.metrics["end_to_end_fvsv.surface_error_mm"] == pytest.approx(
        table.loc[table["key"] == "end_to_end_fvsv", "surface_error_mm"].item(), rel=1e-3
    )


@pytest.mark.slow
def test_flow_table_scores_every_method_against_the_rendered_flow(tiny_run):
    workdir, config = tiny_run
    methods = yaml.safe_load(config.read_text())["flow"]["methods"]
    table = pd.read_csv(workdir / "results/flow_table.csv").set_index("method")
    assert list(table.index) == methods
    assert table.loc["rendered", "epe"] == 0 and (table.drop("rendered")["epe_body"] > 0).all()
    assert table["default"].sum() <= 1
    assert (workdir / "results/flow/flow_colours.png").stat().st_size > 10_000
    assert (workdir / "results/flow/test/tvl1").is_dir()


@pytest.mark.slow
def test_the_action_tables_hold_every_network_its_references_and_the_papers_figures(tiny_run):
    workdir, config = tiny_run
    ltc = yaml.safe_load(config.read_text())["actions"]["ltc"]
    test = pd.read_csv(workdir / "results/actions/test.csv")
    train = pd.read_csv(workdir / "results/actions/train.csv")
    assert set(test["performance"]).isdisjoint(train["performance"]) and sorted(test["view"].unique()) == [1, 2, 3]
    table = pd.read_csv(workdir / "results/ltc_table.csv").set_index("key")
    networks = [f"{name}_{extent}" for extent in ltc["extents"] for name in [*ltc["inputs"], "fusion"]]
    assert list(table.index[:2]) == ["chance", "constant"] and sorted(table.index[2:]) == sorted(networks)
    assert (
        table.loc["rgb_long", "paper_clip_accuracy"] == 57.0 and table.loc["rgb_short", "paper_clip_accuracy"] == 48.4
    )
    assert (table["clip_accuracy_low"] <= table["clip_accuracy"]).all()
    for network in networks:
        if not network.startswith("fusion"):
            history = pd.read_csv(workdir / f"results/actions/ltc/{network}/history.csv")
            assert list(history["iteration"]) == list(range(ltc["iterations"] + 1))
    quality = pd.read_csv(workdir / "results/ltc_flow_quality.csv").set_index("method")
    assert set(quality.index) == {name for name in ltc["inputs"] if name != "rgb"}
    assert (workdir / "results/actions/ltc_flow_quality.png").stat().st_size > 10_000
    views = pd.read_csv(workdir / "results/view_invariance.csv").set_index("key")
    assert list(views.index) == ["constant", *ltc["views"]["rows"]]
    assert views.loc["a_v1", "paper_v3"] == 40.2
    assert {"v1", "v2", "v3"} <= set(views.columns)
    assert (workdir / "results/actions/view_embeddings.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_motion_ablation_is_measured_on_the_shifted_domain(tiny_run):
    from pipeline.clips import Clip, find_clips

    workdir, config = tiny_run
    light = yaml.safe_load(config.read_text())["synthesis"]["light"]
    brightness = {}
    for split in ("test", "shifted"):
        clips = [Clip(path) for path in find_clips(workdir / "results/surreal", split)]
        ambient = np.array([clip.info.light[0, 0] for clip in clips])
        assert (light[split]["ambient"][0] <= ambient).all() and (ambient <= light[split]["ambient"][1]).all()
        brightness[split] = np.mean([clip.rgb(0)[clip.segm(0) > 0].mean() for clip in clips])
    assert brightness["shifted"] < 0.8 * brightness["test"]  # the same motions, people lit dimmer
    client = MlflowClient(f"sqlite:///{workdir}/mlflow/mlflow.db")
    runs = client.search_runs(
        [client.get_experiment_by_name("bodynet").experiment_id], "tags.`pipeline.rule` = 'evaluate_motion_input'"
    )
    assert runs and all(run.data.params["samples"].endswith("shifted") for run in runs)


@pytest.mark.slow
def test_the_sparsity_table_covers_the_study_and_the_stages_and_links_their_runs(tiny_run):
    workdir, config = tiny_run
    table = pd.read_csv(workdir / "results/sparsity_table.csv")
    study = table[table["key"].str.startswith("study/")]
    assert sorted(study["key"]) == ["study/adam_decoupled_0.001", "study/adam_none"]
    assert set(study["optimiser"]) == {"adam"} and set(study["decay"]) == {"none", "decoupled"}
    stages = table[table["key"].str.startswith("bodynet/")]
    assert sorted(zip(stages["key"], stages["network"])) == [
        ("bodynet/end_to_end_fvsv", n) for n in ("pose2d", "pose3d", "segm", "voxels")
    ] + [("bodynet/pose2d", "pose2d")]
    assert (table["speedup"] > 0).all() and (table["output_change"] < 1e-2).all()
    assert table["layers_pruned_percent"].str.split().map(len).min() > 10
    assert (workdir / "results/sparsity/layers.png").stat().st_size > 10_000
    client = MlflowClient(f"sqlite:///{workdir}/mlflow/mlflow.db")
    experiment = client.get_experiment_by_name("bodynet").experiment_id
    trained = {
        r.data.tags["pipeline.wildcard.stage"]: r.info.run_id
        for r in client.search_runs([experiment], "tags.`pipeline.rule` = 'train_bodynet'")
    }
    analysis = client.search_runs([experiment], "tags.`pipeline.wildcard.name` = 'end_to_end_fvsv'")[0]
    assert analysis.data.tags["pipeline.analysed_run_id"] == trained["end_to_end_fvsv"]
    assert "voxels.removed_percent" in analysis.data.metrics
    pruned = tiny_config(**{"evaluation.pruned": True})
    path = write_config(workdir / "pruned.yaml", pruned)
    dry = snakemake(workdir, "-n", "-p", "results/evaluation/end_to_end_fvsv/summary.json", "--configfile", str(path))
    assert "--model results/sparsity/analyses/bodynet/end_to_end_fvsv/pruned.pt" in dry.stdout


@pytest.mark.slow
def test_each_training_stage_starts_from_the_stages_before_it(tiny_run):
    import torch

    workdir, _ = tiny_run
    held = {}
    for stage in ("pose2d", "segm", "pose3d", "voxels", "voxels_fvsv", "end_to_end_fvsv", "depth"):
        folder = workdir / "results/bodynet" / stage
        assert sorted(p.name for p in folder.iterdir()) == ["curves.png", "history.csv", "model.pt", "predictions.png"]
        held[stage] = torch.load(folder / "model.pt", weights_only=True)["state"]
    assert set(held["segm"]) == {"segm"}
    assert set(held["depth"]) == {"segm", "depth"}  # SURREAL's two networks, evaluated together
    assert set(held["voxels"]) == {"pose2d", "segm", "pose3d", "voxels"}
    # the voxel stage froze the 3D-pose network it took over; end to end trained everything
    for key, value in held["pose3d"]["pose3d"].items():
        assert torch.equal(value, held["voxels"]["pose3d"][key]), key
    changed = [
        k
        for k, v in held["voxels_fvsv"]["pose2d"].items()
        if v.is_floating_point() and not torch.equal(v, held["end_to_end_fvsv"]["pose2d"][k])
    ]
    assert changed
    assert (workdir / "logs/benchmarks/train_bodynet/voxels.tsv").exists()


@pytest.mark.slow
def test_rerun_with_nothing_changed_does_nothing(tiny_run):
    workdir, config = tiny_run
    result = snakemake(workdir, "-n", "--configfile", str(config))
    assert "Nothing to be done" in result.stdout + result.stderr


def dry_run_jobs(output: str) -> dict[str, int]:
    """{rule: jobs} of a dry run's job table (empty when nothing is to be done)."""
    table = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal", output, re.S)
    if table is None:
        return {}
    jobs = dict(line.split() for line in table.group(1).strip().splitlines())
    jobs.pop("all", None)
    return {rule: int(count) for rule, count in jobs.items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "value", "rules"),
    [
        (
            # the learning curves draw the references' measures beside the stages'; predict and the
            # mesh table's SMPLify row fit as they do
            "evaluation.fit.steps",
            5,
            {
                "evaluate_body_fit",
                "evaluate_reference",
                "tabulate_evaluation",
                "results_page",
                "plot_learning_curves",
                "check_predict",
                "evaluate_video_mesh",
            },
        ),
        (
            "flow.as_input.iterations",
            3,
            {"train_motion_input", "evaluate_motion_input", "tabulate_evaluation", "results_page"},
        ),
        ("sparsity.gamma_threshold", 1e-2, {"analyse_sparsity", "tabulate_sparsity"}),
    ],
)
def test_changing_one_config_key_reruns_exactly_the_rules_that_read_it(tiny_run, tmp_path, key, value, rules):
    workdir, _ = tiny_run
    changed = write_config(tmp_path / "changed.yaml", tiny_config(**{key: value}))
    assert set(dry_run_jobs(snakemake(workdir, "-n", "--configfile", str(changed)).stdout)) == rules


@pytest.mark.slow
def test_switching_to_the_users_smpl_files_reruns_what_poses_a_body_for_the_final_table(tiny_run, tmp_path):
    workdir, _ = tiny_run
    model = tmp_path / "SMPL_FEMALE.pkl"
    write_model_file(model, toy_arrays())
    keys = {"body_model.source": "smpl", "body_model.smpl_files.female": str(model)}
    changed = write_config(tmp_path / "smpl.yaml", tiny_config(**keys))
    jobs = dry_run_jobs(snakemake(workdir, "results/bodynet_table.csv", "-n", "--configfile", str(changed)).stdout)
    assert {"render_clips", "prepare_bodynet_samples", "evaluate_body_fit", "tabulate_evaluation"} <= set(jobs)
    assert "build_body_model" not in jobs


@pytest.mark.slow
def test_a_code_change_reruns_exactly_the_rules_that_run_that_code(tiny_run, tmp_path):
    workdir, config = tiny_run
    project = copy_project(tmp_path)

    def dry_run():
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(project / "Snakefile"),
            "--directory",
            str(workdir),
            "-n",
            "--configfile",
            str(config),
        ]
        return dry_run_jobs(run(command, cwd=workdir).stdout)

    assert dry_run() == {}  # the same code in another checkout
    score = project / "src/pipeline/flow/score.py"
    score.write_text(score.read_text() + "\n# changed\n")
    jobs = dry_run()
    assert {"extract_flow", "extract_input_flow", "tabulate_flow"} <= set(jobs)
    assert not {"render_clips", "train_bodynet", "evaluate_body_fit", "build_body_model", "analyse_sparsity"} & set(
        jobs
    )


@pytest.mark.slow
def test_the_same_config_reproduces_data_and_metrics_byte_for_byte(tiny_run, tmp_path):
    workdir, config = tiny_run
    snakemake(tmp_path, "results/bodynet/pose2d/model.pt", "--cores", "2", "--configfile", str(config))
    patterns = ["resources/body_models/anny/*.pkl"] + [
        pattern.format(split=split)
        for split in ("train", "test")
        for pattern in (
            "resources/motions/{split}.npz",
            "results/surreal/{split}_run0.csv",
            "results/surreal/cmu/{split}/run0/*/*",
            "results/bodynet/samples/{split}/*.npy",
        )
    ]
    first, second = file_hashes(workdir, patterns), file_hashes(tmp_path, patterns)
    assert len(second) > 30 and any(name.endswith(".mp4") for name in second)
    assert first == second
    histories = [
        pd.read_csv(root / "results/bodynet/pose2d/history.csv").drop(columns="samples_per_second")
        for root in (workdir, tmp_path)
    ]
    pd.testing.assert_frame_equal(*histories, check_exact=True)


@pytest.mark.slow
def test_report_opens_with_the_tables_and_holds_the_figures(tiny_run_to_extend):
    workdir, config = tiny_run_to_extend
    snakemake(workdir, "--report", "report.zip", "--configfile", str(config))
    with zipfile.ZipFile(workdir / "report.zip") as report:
        names = report.namelist()
        html = report.read("report/report.html").decode()
    assert any(name.endswith("/figure.png") for name in names)
    assert any(name.endswith("/summary.csv") for name in names)
    assert "Body model" in html and "BodyNet's 14 body" in html
    # it opens with the tables, linked, and holds their bars and the qualitative sheets
    assert "The tables first" in html and "showResultInfo('results/bodynet_table.csv')" in html
    assert any(name.endswith("/bodynet_table.png") for name in names)
    assert any(name.endswith("/sheet.png") for name in names)
    assert any(name.endswith("/gallery.png") for name in names)  # predict on whole test frames
    assert any(name.endswith("/clips_test.png") for name in names)  # test clips playing


@pytest.mark.slow
def test_users_own_smpl_files_replace_the_built_model(tmp_path):
    model = tmp_path / "SMPL_FEMALE.pkl"
    write_model_file(model, toy_arrays())
    config = tiny_config(**{"body_model.source": "smpl", "body_model.smpl_files.female": str(model)})
    path = write_config(tmp_path / "smpl.yaml", config)
    result = snakemake(tmp_path, "results/body_model/female/figure.png", "--cores", "1", "--configfile", str(path))
    assert (tmp_path / "results/body_model/female/figure.png").exists()
    assert not (tmp_path / "resources/body_models/anny").exists()
    assert "build_body_model" not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_malformed_smpl_file_fails_the_job_naming_it(tmp_path):
    model = tmp_path / "SMPL_FEMALE.pkl"
    arrays = toy_arrays()
    del arrays["J_regressor"]
    write_model_file(model, arrays)
    config = tiny_config(**{"body_model.source": "smpl", "body_model.smpl_files.female": str(model)})
    path = write_config(tmp_path / "smpl.yaml", config)
    result = snakemake(
        tmp_path, "results/body_model/female/figure.png", "--cores", "1", "--configfile", str(path), check=False
    )
    assert result.returncode != 0
    log = (tmp_path / "logs/plot_body_model/female.log").read_text()
    assert f"error: {model}: missing key(s) 'J_regressor'" in log
    assert not (tmp_path / "results/body_model/female/figure.png").exists()


@pytest.mark.slow
def test_predict_runs_the_trained_networks_on_a_folder_of_images(tiny_run_to_extend):
    """It adds a folder of images and an invocation to the tiny run (alone in it meanwhile)."""
    import shutil

    import cv2

    workdir, _ = tiny_run_to_extend
    clip = sorted((workdir / "results/surreal/cmu/test").rglob("*.mp4"))[0]
    ok, frame = cv2.VideoCapture(str(clip)).read()
    assert ok
    folder = workdir / "images/rendered"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "frame.png"), frame)
    config = write_config(workdir / "predict.yaml", tiny_config(**{"predict.gender": "female"}))
    try:
        result = snakemake(workdir, "results/predict/rendered", "--cores", "2", "--configfile", str(config))
        out = workdir / "results/predict/rendered"
        record = json.loads((out / "frame.json").read_text())
        assert record["person_found_by"].split(",")[0] in ("detector", "network search")
        assert isinstance(record["whole_body"], bool)
        assert np.array(record["joints3d"]).shape == (16, 3) and record["root_depth"] > 0
        assert {"frame_body.obj", "frame_voxels.obj", "frame_overlay.png", "frame_views.png", "summary.csv"} <= {
            path.name for path in out.iterdir()
        }
        assert "train_bodynet" not in result.stdout + result.stderr  # the trained networks, not new ones

        # on the test frames, whole, beside the evaluation of the same network on them (in `all`)
        summary = json.loads((workdir / "results/predict_check/summary.json").read_text())["finders"]
        evaluation = pd.read_csv(workdir / "results/evaluation/end_to_end_fvsv/images.csv")
        images = pd.read_csv(workdir / "results/predict_check/images.csv")
        assert len(images) == 2 * len(evaluation) and (images["surface_error_mm"] > 0).all()
        crop = summary["evaluation_crop"]
        assert crop["found_by"] == {"box": len(evaluation)} and crop["verdict"] in ("no worse", "worse")
        assert crop["evaluation_surface_error_mm"] == pytest.approx(evaluation["surface_error_mm"].mean(), abs=0.01)
        assert {how.split(",")[0] for how in summary["found"]["found_by"]} <= {"detector", "network search"}
        gallery = cv2.imread(str(workdir / "results/predict_check/gallery.png"))
        assert gallery.shape[0] == 2 * (256 + 4)  # the config's two examples, a row each
    finally:
        for path in ("images", "results/predict", "logs/predict_images", "logs/benchmarks/predict_images"):
            shutil.rmtree(workdir / path, ignore_errors=True)


@pytest.mark.slow
def test_track_runs_the_realtime_pipeline_over_a_video_of_the_users(tiny_run_to_extend):
    """The trained VNect, frame by frame over a video put in videos/: skeletons and an overlay."""
    import cv2

    workdir, config = tiny_run_to_extend
    clip = sorted((workdir / "results/surreal/cmu/test").rglob("*.mp4"))[0]
    (workdir / "videos").mkdir()
    shutil.copy(clip, workdir / "videos/rendered.mp4")
    try:
        result = snakemake(workdir, "results/realtime/track/rendered", "--cores", "2", "--configfile", str(config))
        assert "train_vnect" not in result.stdout + result.stderr  # the trained network, not a new one
        out = workdir / "results/realtime/track/rendered"
        frames = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
        poses, timing = pd.read_csv(out / "poses.csv"), pd.read_csv(out / "frames.csv")
        assert len(poses) == 16 * frames and list(timing["frame"]) == list(range(frames))
        assert np.isfinite(poses[["u", "v", "x", "y", "z"]].to_numpy()).all()
        overlay = cv2.VideoCapture(str(out / "overlay.mp4"))
        assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        summary = json.loads((out / "summary.json").read_text())
        assert summary["frames"] == frames and summary["first_box_found_by"] == "network"
    finally:
        for path in ("videos", "results/realtime/track", "logs/track_video", "logs/benchmarks/track_video"):
            shutil.rmtree(workdir / path, ignore_errors=True)


def test_predict_without_the_users_model_file_for_its_gender_names_the_key(tmp_path):
    model = tmp_path / "SMPL_FEMALE.pkl"
    write_model_file(model, toy_arrays())
    overrides = {"body_model.source": "smpl", "body_model.smpl_files.female": str(model), "predict.gender": "neutral"}
    path = write_config(tmp_path / "smpl.yaml", tiny_config(**overrides))
    (tmp_path / "images/mine").mkdir(parents=True)
    result = snakemake(tmp_path, "-n", "results/predict/mine", "--configfile", str(path), check=False)
    assert result.returncode != 0
    assert "predict.gender: asks for the neutral model" in result.stdout + result.stderr


@pytest.mark.slow
def test_the_compression_study_measures_a_network_on_the_same_test_frames_stored_losslessly(tiny_run):
    workdir, _ = tiny_run
    lossless = workdir / "results/data_study/lossless"
    # the test split rendered again as drawn before, its frames also stored as PNGs
    main_manifest = pd.read_csv(workdir / "results/surreal/test_run0.csv")
    pd.testing.assert_frame_equal(pd.read_csv(lossless / "surreal/test_run0.csv"), main_manifest)
    assert len(list((lossless / "surreal/cmu/test").rglob("*_frames/0001.png"))) == len(main_manifest)
    assert not list((workdir / "results/surreal/cmu/test").rglob("*_frames"))
    # the same crops and truth, other pixels; the stages' network measured on them
    main, other = workdir / "results/bodynet/samples/test", lossless / "samples/test"
    assert np.array_equal(np.load(other / "parts.npy"), np.load(main / "parts.npy"))
    assert not np.array_equal(np.load(other / "rgb.npy"), np.load(main / "rgb.npy"))
    on_mp4 = pd.read_csv(workdir / "results/evaluation/depth/images.csv")
    on_lossless = pd.read_csv(workdir / "results/evaluation/depth/on_lossless/images.csv")
    assert list(on_lossless["image"]) == list(on_mp4["image"])
    table = pd.read_csv(workdir / "results/surreal_compression_study.csv")
    assert list(table["key"]) == ["constant", "mp4_on_lossless", "oracle"]


@pytest.mark.slow
def test_the_surreal_release_is_read_in_place(tiny_run, tmp_path):
    from pipeline.training.samples import SampleSet

    workdir, _ = tiny_run
    release = tmp_path / "SURREAL/data"  # the release's layout, without the files this project adds
    for split in ("train", "test"):
        shutil.copytree(
            workdir / f"results/surreal/cmu/{split}/run0",
            release / f"cmu/{split}/run0",
            ignore=shutil.ignore_patterns("*_voxels.mat", "*_partvoxels.mat", "*_flow.mat", "*_frames"),
        )
    settings = {
        "data.source": "surreal",
        "data.surreal_root": str(release),
        "body_model.source": "smpl",
        "body_model.smpl_files.female": str(workdir / "resources/body_models/anny/smpl_female.pkl"),
        "bodynet.samples.validation_frames": "middle_clip",
    }
    project = tmp_path / "project"
    project.mkdir()
    config = write_config(project / "release.yaml", tiny_config(**settings))
    dry = snakemake(project, "-n", "-p", "results/bodynet_table.csv", "--configfile", str(config))
    jobs = dry_run_jobs(dry.stdout)
    assert jobs["prepare_bodynet_samples"] == 2 and not {"render_clips", "build_body_model"} & set(jobs)
    assert f"--root {release} --split test" in dry.stdout
    snakemake(project, "results/bodynet/samples/test", "--cores", "1", "--configfile", str(config))
    sequences = {path.parent for path in (release / "cmu/test/run0").glob("*/*_info.mat")}
    assert len(SampleSet.load(project / "results/bodynet/samples/test")) == len(sequences)  # a middle clip each

    for wrong, key in (
        ({"data.surreal_root": str(tmp_path / "nowhere")}, "data.surreal_root"),
        ({"body_model.source": "anny"}, "body_model.source"),
    ):
        bad = write_config(project / "bad.yaml", tiny_config(**(settings | wrong)))
        result = snakemake(project, "-n", "results/bodynet_table.csv", "--configfile", str(bad), check=False)
        assert result.returncode != 0 and f"Invalid config: {key}" in result.stdout + result.stderr


def test_the_mosaic_tables_hold_the_classifiers_trained_on_each_source_and_their_references(tiny_run):
    workdir, config = tiny_run
    settings = yaml.safe_load(config.read_text())
    mosaic, rows = settings["mosaic"], settings["evaluation"]["rows"]
    for blending in ("blended", "unblended"):
        images = np.load(workdir / f"results/mosaic/{blending}/images.npy")
        assert images.shape[1:] == (mosaic["size"], mosaic["size"], 3) and 0 < len(images) <= mosaic["count"]
    blended, unblended = (np.load(workdir / f"results/mosaic/{b}/rows.npy") for b in ("blended", "unblended"))
    np.testing.assert_array_equal(blended, unblended)  # the same poses, with and without the blend
    for table in ("mosaic_crossover", "mosaic_sources", "mosaic_blending", "mosaic_classes"):
        frame = pd.read_csv(workdir / f"results/{table}.csv")
        assert frame["key"].tolist() == ["constant", *rows[table], "oracle"]
        assert (frame["joint_error_mm"] > 0).all() and (frame["joint_error_mm_low"] <= frame["joint_error_mm"]).all()
        assert (workdir / f"results/evaluation/{table}_orderings.csv").exists()
    summary = json.loads(
        (workdir / "results/evaluation/mosaic/real+mosaic+surreal/classification/summary.json").read_text()
    )
    assert summary["train_images"] == 3 * summary["poses"]  # the three sources show the same poses
    measures = summary["measures"]  # its answer is a class: no better than its best five, nor they the nearest
    assert measures["joint_error_mm_lower_bound"] <= measures["joint_error_mm_top5"] <= measures["joint_error_mm"]


@pytest.mark.slow
def test_the_sim2real_table_measures_every_row_on_the_same_test_clips(tiny_run):
    from pipeline.sim2real import dataset
    from pipeline.sim2real.evaluate import MEASURES, ORACLE, REFERENCE

    workdir, config = tiny_run
    settings = yaml.safe_load(config.read_text())["sim2real"]
    test = dataset.load(workdir / f"results/sim2real/clips/full/{settings['test_split']}.npz")
    size = settings["dataset"]["size"]
    assert test["frames"].shape[2:] == (size, size, 3) and test["visible"].mean() > 0.5
    table = pd.read_csv(workdir / "results/sim2real_table.csv").set_index("row")
    lengths = [f"frames_{n}" for n in settings["clip_lengths"] if n != settings["train"]["window"]]
    assert list(table.index) == [REFERENCE, *settings["inputs"], *settings["constructions"], *lengths, ORACLE]
    assert table.loc["frames_6", "frames"] == 6 and table.loc["frames_6", "paper_aligned_error_mm"] == 79.0
    assert (table["clips"] == len(test["stems"])).all() and table[list(MEASURES)].notna().all().all()
    assert table.loc["flow+keypoints", "paper_aligned_error_mm"] == 74.7
    clips = pd.read_csv(workdir / "results/sim2real/test_clips.csv")
    assert len(clips) == len(table) * len(test["stems"])
    orderings = pd.read_csv(workdir / "results/sim2real/orderings.csv")
    assert set(orderings["verdict"]) <= {"holds", "reversed", "undecided"}
    assert ("untracked", "constant") in set(zip(orderings["better"], orderings["than"]))
    history = pd.read_csv(
        workdir / f"results/sim2real/full/flow+keypoints/{settings['train']['window']}_frames/history.csv"
    )
    assert {"aligned_error_mm", "train_aligned_error_mm", "joint_error_mm"} <= set(history.columns)


@pytest.mark.slow
def test_the_mesh_video_table_measures_every_row_on_every_test_clip(tiny_run):
    from pipeline.video_mesh.evaluate import MEASURES, ROWS

    workdir, config = tiny_run
    dataset = yaml.safe_load(config.read_text())["video_mesh"]["dataset"]
    manifest = pd.read_csv(workdir / "results/video_mesh/captures/test.csv")
    assert set(manifest["azimuth"]) == set(dataset["azimuths"])  # every camera sees every performance
    clips = pd.read_csv(workdir / "results/video_mesh/test_clips.csv")  # the SMPLify row on some clips only
    fitted = yaml.safe_load(config.read_text())["video_mesh"]["smplify_clips"]
    assert len(clips) == len(manifest) * (len(ROWS) - 1) + fitted
    table = pd.read_csv(workdir / "results/video_mesh_table.csv").set_index("row")
    assert list(table.index) == list(ROWS)
    assert table[list(MEASURES)].notna().all().all()
    assert set(table.filter(like="_verdict").loc["video"]) <= {"holds", "reversed", "undecided"}
    assert (workdir / "results/video_mesh/clip.png").stat().st_size > 10_000
    for kind in ("frame", "video"):
        history = pd.read_csv(workdir / f"results/video_mesh/{kind}/history.csv")
        assert {"joint_error_mm", "train_joint_error_mm"} <= set(history.columns)
    losses = pd.read_csv(workdir / "results/video_mesh_losses.csv")  # the paper's Table 4, every row
    assert list(losses["row"]) == ["l2d", "l2d_l3d", "l2d_smpl", "all"] and losses["joint_error_mm"].notna().all()
    orderings = pd.read_csv(workdir / "results/video_mesh/losses_orderings.csv")
    assert set(orderings["verdict"]) <= {"holds", "reversed", "undecided"}
    # the data claim: every model on both test sets, the transitions' clips poses between two motions
    transitions = pd.read_csv(workdir / "results/video_mesh/transitions/test.csv")
    assert (
        transitions["action"].str.contains("_to_").all()
        and len(transitions)
        == dataset["transitions"]["test"] * len(dataset["azimuths"]) * dataset["performances"]["test"]
    )
    table = pd.read_csv(workdir / "results/video_mesh_transitions.csv")
    assert set(zip(table["test_set"], table["row"])) == {
        (test_set, row)
        for test_set in ("captures", "transitions")
        for row in ("frame", "frame_transitions", "video", "video_transitions")
    }
