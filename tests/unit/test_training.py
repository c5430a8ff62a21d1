"""BodyNet's networks, losses, measures and the staged training, on tiny settings."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import BODYNET_CHOICES, train_settings
from pipeline.datasets.surreal import SampleSizes, VoxelSource
from pipeline.errors import InputError
from pipeline.models.bodynet import BodyNet, BodyNetConfig, peak_volumes
from pipeline.models.checkpoint import build_model, save_model
from pipeline.models.hourglass import StackedHourglass
from pipeline.training import loop, losses, metrics
from pipeline.training.loop import TrainingDiverged, check_improved, held_subnetworks
from pipeline.training.samples import (
    FLIP_JOINTS,
    FLIP_VOXEL_PARTS,
    SampleSet,
    make_batch,
    pack_part_voxels,
    prepare,
    unpack_part_voxels,
)
from pipeline.training.schedule import STAGES
from pipeline.training.stages import stage

SIZES = SampleSizes(input=64, heatmap=16, voxels=32)
TINY_NET = {"stacks": 1, "features": 16, "modules": 1, "depth": 4}


def tiny_config(**overrides) -> BodyNetConfig:
    return BodyNetConfig(
        input_size=64, heatmap_size=16, voxel_size=32, hourglass=dict(TINY_NET), **(BODYNET_CHOICES | overrides)
    )


@pytest.fixture(scope="module")
def samples(tiny_clips, tmp_path_factory):
    root, _, _ = tiny_clips
    out = tmp_path_factory.mktemp("samples") / "train"
    count = prepare(root, "train", SIZES, "all", VoxelSource(), out, progress=False)
    assert count == len(SampleSet.load(out))
    return SampleSet.load(out)


def test_stacked_hourglass_returns_one_prediction_per_stack():
    net = StackedHourglass(3, 5, stacks=2, features=8, depth=2)
    outputs = net(torch.zeros(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outputs] == [(2, 5, 16, 16)] * 2


def test_bodynet_outputs_and_what_each_network_feeds_on():
    model = BodyNet(tiny_config())
    out = model(torch.zeros(2, 3, 64, 64), ("voxels",))
    assert out["pose2d"][-1].shape == (2, 16, 16, 16)
    assert out["segm"][-1].shape == (2, 15, 16, 16)
    assert out["pose3d"][-1].shape == (2, 16, 19, 16, 16)
    assert out["voxels"][-1].shape == (2, 32, 32, 32)
    assert model(torch.zeros(2, 3, 64, 64), ("part_voxels",))["part_voxels"][-1].shape == (2, 7, 32, 32, 32)
    only_segm = BodyNet(tiny_config(voxel_inputs=("segm",)))
    assert only_segm.needed({"voxels"}) == {"voxels", "segm"}
    assert set(only_segm(torch.zeros(2, 3, 64, 64))) == {"voxels", "segm"}
    assert BodyNet(tiny_config(pose3d_inputs=("rgb",))).needed({"pose3d"}) == {"pose3d"}
    with pytest.raises(ValueError, match="voxel_inputs"):
        tiny_config(voxel_inputs=("depth",))


SELECSLS = {"backbone_2d": "selecsls", "selecsls": {"depth": "42", "width": 0.25}}


def test_bodynets_2d_networks_may_run_on_selecsls():
    model = BodyNet(tiny_config(**SELECSLS))
    out = model(torch.zeros(2, 3, 64, 64), ("pose3d", "depth"))
    assert out["pose2d"][-1].shape == (2, 16, 16, 16) and out["segm"][-1].shape == (2, 15, 16, 16)
    assert out["depth"][-1].shape == (2, 20, 16, 16) and out["pose3d"][-1].shape == (2, 16, 19, 16, 16)
    assert isinstance(model.pose3d.net, StackedHourglass)  # the 3D networks stay hourglasses
    assert out["pose2d"][-1].abs().max() < 0.1  # heatmaps start near zero, as the hourglass'
    config = BodyNetConfig.from_dict(model.config.as_dict())  # what a checkpoint holds, read back
    assert config == model.config and config.selecsls.depth == "42"
    old = {k: v for k, v in tiny_config().as_dict().items() if k not in ("backbone_2d", "selecsls")}
    assert BodyNetConfig.from_dict(old).backbone_2d == "hourglass"  # a checkpoint from before the choice
    with pytest.raises(ValueError, match="backbone_2d"):
        tiny_config(backbone_2d="resnet")
    with pytest.raises(ValueError, match="selecsls.groups"):
        tiny_config(selecsls={"depth": "42", "groups": 2})
    with pytest.raises(ValueError, match="selecsls.depth"):
        tiny_config(selecsls={"depth": "18", "width": 1.0})


def test_a_selecsls_stage_trains_and_checkpoints_load_only_into_its_backbone(samples, tmp_path):
    segm, history = train_stage("segm", samples, tmp_path, iterations=2, config=tiny_config(**SELECSLS))
    assert build_model(tiny_config(**SELECSLS), [segm]).trained == {"segm"}
    with pytest.raises(InputError, match="does not fit"):
        build_model(tiny_config(), [segm])


def test_reprojections_are_maxima_over_depth_and_width():
    logits = torch.full((1, 4, 4, 4), -20.0)
    logits[0, 2, 1, 3] = 20.0  # z=2, y=1, x=3
    front, side = losses.front_view(logits), losses.side_view(logits)
    assert front[0, 1, 3] > 0.99 and front.sum() < 1.01  # (y, x)
    assert side[0, 2, 1] > 0.99 and side.sum() < 1.01  # (z, y)


def test_part_voxel_views_take_each_parts_maximum_and_the_backgrounds_minimum():
    labels = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    labels[0, 2, 1, 3] = 3  # z=2, y=1, x=3: a right-arm voxel
    one_hot = torch.nn.functional.one_hot(labels, 7).movedim(-1, 1).float()
    front, side = losses.part_views(one_hot, axis=1), losses.part_views(one_hot, axis=3)  # (y, x), (z, y)
    assert front[0, 3, 1, 3] == 1 and front[0, 3].sum() == 1 and front[0, 0, 1, 3] == 0 and front[0, 0].sum() == 15
    assert side[0, 3, 2, 1] == 1 and side[0, 0, 2, 1] == 0 and side[0, [1, 2, 4, 5, 6]].sum() == 0
    logits = one_hot * 40 - 20  # the truth, confidently
    assert losses.part_fv([logits], labels) < 1e-5 and losses.part_sv([logits], labels) < 1e-5  # the clamp's floor
    assert losses.part_fv([logits.roll(1, dims=4)], labels) > 0.01  # moved along x: the front view differs


def test_stage_losses_follow_bodynet():
    weights = stage("end_to_end_fvsv").weights
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["segm"] / weights["voxels"] == pytest.approx(1e6)
    assert set(stage("end_to_end_fv_without_tasks").weights) == {"voxels", "fv"}
    assert stage("end_to_end_fv_without_tasks").trains == ("pose2d", "segm", "pose3d", "voxels")
    assert stage("voxels_fvsv").trains == ("voxels",)
    assert stage("pose2d").flip and not stage("pose3d").flip
    part_weights = stage("part_voxels_fvsv").weights
    assert (
        part_weights["part_voxels"] / part_weights["part_fv"] == pytest.approx(10) and sum(part_weights.values()) == 1
    )
    assert stage("part_voxels_fvsv").targets == ("part_voxels",) and stage("part_voxels_fvsv").wanted == (
        "part_voxels",
    )
    with pytest.raises(ValueError, match="unknown stage"):
        stage("voxels_sv")


def test_true_targets_score_perfectly(samples):
    batch = make_batch(samples, np.arange(len(samples)))
    truth = batch["joints"]
    visible = ((truth >= 0) & (truth <= SIZES.heatmap - 1)).all(-1)
    assert (metrics.peaks(batch["heatmaps"]) - truth).norm(dim=-1)[visible].mean() < 0.2  # pixels
    correct, count = metrics.pckh(batch["heatmaps"], batch)  # BodyNet's: the ten limb joints
    assert count == visible[:, list(metrics.PCK_LIMBS)].sum() and correct == count
    correct, count = metrics.pckh(batch["heatmaps"], batch, "head")
    assert count == visible.sum() and correct / count > 0.9  # the rest: heads of a pixel or less
    shifted = batch["heatmaps"].roll(3, dims=-1)  # every peak 3 pixels off: beyond 0.5 × 16/10
    assert metrics.pckh(shifted, batch)[0] < 0.2 * count
    logits = torch.nn.functional.one_hot(batch["parts"], 15).permute(0, 3, 1, 2).float()
    intersection, union = metrics.part_counts(logits, batch["parts"])
    assert torch.equal(intersection, union)
    assert metrics.voxel_iou(batch["voxels"] * 40 - 20, batch["voxels"]).min() == 1.0
    focal, principal = float(samples.arrays["focal"]), torch.as_tensor(samples.arrays["principal"])
    joints = metrics.volume_joints_camera(batch["volumes"], batch, focal, principal)
    error = metrics.joint_error_mm(joints, batch["joints_camera"])
    # only the quantisation of 16-pixel heatmaps and 45 mm depth bins remains
    assert error.mean() < 50 and error.max() < 100
    assert metrics.joint_error_mm(joints.roll(1, dims=0), batch["joints_camera"]).mean() > error.mean()
    depth = torch.nn.functional.one_hot(batch["depth_classes"], 20).permute(0, 3, 1, 2).float()
    assert torch.equal(batch["depth_classes"] > 0, batch["parts"] > 0)  # depth is background where parts are
    rmse, st_rmse = metrics.depth_errors_mm(depth, batch["depth_classes"])
    assert rmse.max() == 0 and st_rmse.max() == 0


def test_the_3d_pose_losses_are_least_at_the_truth_and_read_out_where_it_lies(samples):
    batch = make_batch(samples, np.arange(8), targets=("volumes",))
    volumes, cells = batch["volumes"], batch["joint_cells"]
    # the continuous depth bin rounds to the volume's own bin wherever it is not clamped
    inside = (cells[..., 2] > 0) & (cells[..., 2] < 18)
    assert torch.equal(cells[..., 2][inside].round().long(), batch["bins"][inside])
    truth = torch.log(volumes.clamp_min(1e-12))  # logits whose softmax is the normalised target
    wrong = truth.roll(2, dims=-1)
    for kind in ("softmax", "integral", "softmax+integral"):
        loss = {
            k: losses.pose3d_term({"pose3d_logits": [x]}, batch, kind) for k, x in (("truth", truth), ("wrong", wrong))
        }
        assert loss["truth"] < loss["wrong"], kind
    visible = volumes.flatten(2).sum(-1) > 0
    near = (losses.soft_argmax(truth * 20) - cells)[..., :2].norm(dim=-1)[visible]  # a sharp softmax at the truth
    assert near.mean() < 0.6  # cells: a Gaussian's mean is its joint, up to the cut at 3 cells
    peaked = peak_volumes(truth)
    assert torch.allclose(peaked.flatten(2).amax(-1), torch.ones(8, 16))
    focal, principal = float(samples.arrays["focal"]), torch.as_tensor(samples.arrays["principal"])
    error = metrics.joint_error_mm(
        metrics.volume_joints_camera(peaked, batch, focal, principal), batch["joints_camera"]
    )
    assert error.mean() < 50  # the logits' volumes read out as the Gaussian targets do


def test_a_3d_pose_network_is_read_as_it_was_trained(tmp_path):
    model = build_model(tiny_config(pose3d_loss="softmax"), [])
    out = model(torch.rand(2, 3, 64, 64), wanted=("voxels",))
    assert out["pose3d"][-1].flatten(2).amax(-1).eq(1).all() and "pose3d_logits" in out
    assert "pose3d_logits" not in build_model(tiny_config(), [])(torch.rand(2, 3, 64, 64), wanted=("pose3d",))
    save_model(tmp_path / "pose3d.pt", model, "pose3d", ["pose2d", "segm", "pose3d"], 1)
    with pytest.raises(InputError, match="trained with the 'softmax' loss, not 'mse'"):
        build_model(tiny_config(), [tmp_path / "pose3d.pt"])
    # the true 2D pose given in its place: the 2D-pose network does not run, the 3D-pose one reads the truth
    heatmaps = torch.zeros(2, 16, 16, 16)
    given = model(torch.rand(2, 3, 64, 64), wanted=("pose3d",), given={"pose2d": heatmaps})
    assert "pose2d" not in given and "segm" in given


def test_depth_errors_are_surreals_bin_rmse_and_its_scale_and_shift_invariant_form():
    truth = torch.zeros(3, 4, 4, dtype=torch.long)
    truth[:, 1:3, 1:3] = torch.tensor([[8, 9], [10, 11]])  # four person pixels, the rest background
    truth[2] = 0  # no person
    predicted = truth.clone()
    predicted[0, 1:3, 1:3] += 2  # two bins too far everywhere: only a shift
    predicted[1, 1:3, 1:3] = torch.tensor([[10, 10], [12, 12]])  # a wrong depth order within the body
    logits = torch.nn.functional.one_hot(predicted, 20).permute(0, 3, 1, 2).float()
    logits[:, 0] = 5.0  # background likeliest everywhere: the bins are read without it
    rmse, st_rmse = metrics.depth_errors_mm(logits, truth)
    assert rmse[0] == pytest.approx(90.0) and st_rmse[0] == pytest.approx(0.0, abs=1e-9)
    assert rmse[1] == pytest.approx(45 * np.sqrt((4 + 1 + 4 + 1) / 4))
    assert st_rmse[1] == pytest.approx(22.5)  # best scale 1: residuals of half a bin
    assert torch.isnan(rmse[2]) and torch.isnan(st_rmse[2])
    stretched = truth.clone()
    stretched[0, 1:3, 1:3] = torch.tensor([[10, 12], [14, 16]])  # twice the depth range, and shifted
    logits = torch.nn.functional.one_hot(stretched, 20).permute(0, 3, 1, 2).float()
    rmse, st_rmse = metrics.depth_errors_mm(logits, truth)
    assert rmse[0] > 100 and st_rmse[0] == pytest.approx(0.0, abs=1e-9)  # scale ½ and a shift fit it


def test_depth_classes_bin_the_depth_around_the_pelvis():
    from pipeline.datasets.surreal import depth_classes

    depth = np.array([[1e10, 8.0, 8.045, 7.955], [7.0, 9.0, 8.02, 1e10]], np.float32)
    assert depth_classes(depth, 8.0).tolist() == [[0, 10, 9, 11], [19, 1, 10, 0]]  # nearer = higher


def test_flip_exchanges_left_and_right(samples):
    plain = make_batch(samples, np.arange(4))
    flipped = make_batch(samples, np.arange(4), np.random.default_rng(0), flip=True)
    mirrored = [i for i in range(4) if not torch.equal(flipped["rgb"][i], plain["rgb"][i])]
    assert mirrored
    i = mirrored[0]
    assert torch.equal(flipped["rgb"][i], plain["rgb"][i].flip(-1))
    assert torch.allclose(flipped["heatmaps"][i], plain["heatmaps"][i][FLIP_JOINTS].flip(-1))
    assert not torch.equal(flipped["parts"][i], plain["parts"][i].flip(-1))  # labels swap sides too
    assert torch.equal(flipped["depth_classes"][i], plain["depth_classes"][i].flip(-1))  # depth does not
    assert torch.equal(flipped["parts"][i] > 0, plain["parts"][i].flip(-1) > 0)
    assert torch.equal(flipped["voxels"][i], plain["voxels"][i].flip(-1))  # the body mirrored in x
    # each joint's volume: the other side's, x reversed, its depth bins kept (a mirror in x keeps z)
    assert torch.allclose(flipped["volumes"][i], plain["volumes"][i][FLIP_JOINTS].flip(-1))
    assert torch.equal(flipped["silhouette_front"][i], plain["silhouette_front"][i].flip(-1))
    mirrored_parts = torch.as_tensor(FLIP_VOXEL_PARTS)[plain["part_voxels"][i].flip(-1)].long()
    assert torch.equal(flipped["part_voxels"][i], mirrored_parts)  # left arm ↔ right arm, left leg ↔ right leg
    assert torch.equal(flipped["part_voxels"][i] > 0, flipped["voxels"][i] > 0)


def test_part_voxels_are_packed_losslessly_and_cover_the_voxels(samples):
    labels = np.random.default_rng(0).integers(0, 7, (2, 16, 16, 16), dtype=np.uint8)
    packed = np.stack([pack_part_voxels(grid) for grid in labels])
    assert packed.shape == (2, 3, 16, 16, 2) and np.array_equal(unpack_part_voxels(packed, 16), labels)
    batch = make_batch(samples, np.arange(len(samples)))
    assert torch.equal(batch["part_voxels"] > 0, batch["voxels"] > 0)
    present = torch.bincount(batch["part_voxels"].flatten(), minlength=7)
    assert (present > 0).all() and present[2] == present[1:].max()  # every part; the torso the largest


def test_the_part_voxel_network_starts_as_the_voxel_network_for_every_part():
    config = BodyNetConfig(64, 16, 32, hourglass={**TINY_NET, "stacks": 2}, **BODYNET_CHOICES)
    model = BodyNet(config).eval()
    model.part_voxels.start_from(model.voxels)
    out = model(torch.rand(2, 3, 64, 64), ("voxels", "part_voxels"))
    for stack in range(2):  # the second stack too: the predictions fed back sum to the original's
        assert torch.allclose(out["part_voxels"][stack][:, 0], -out["voxels"][stack], atol=1e-5)  # background
        for c in range(1, 7):
            assert torch.allclose(out["part_voxels"][stack][:, c], out["voxels"][stack], atol=1e-5)
    with pytest.raises(ValueError, match="occupancy network"):
        model.voxels.start_from(model.part_voxels)


def settings(iterations, **overrides):
    lengths = {"iterations": iterations, "eval_every": iterations, "checkpoint_every": iterations}
    return train_settings(**(lengths | overrides))


def train_stage(name, samples, tmp_path, inits=(), iterations=60, config=None):
    model = build_model(config or tiny_config(), list(inits))
    out = tmp_path / name
    out.mkdir()
    history, _ = loop.train(
        model, stage(name), samples, samples.subset(12, 0), settings(iterations), out / "checkpoint.pt", progress=False
    )
    save_model(out / "model.pt", model, name, held_subnetworks(model, stage(name)), iterations)
    return out / "model.pt", history


@pytest.mark.slow
def test_every_stage_improves_its_validation_measure(samples, tmp_path):
    """Each stage learns from where the stages before it left off, and leaves them as they were;
    how far each network can learn is test_memorisation.py's to say: a few iterations each."""
    pose2d, history = train_stage("pose2d", samples, tmp_path, iterations=150)
    assert check_improved(history)["pckh"] > 0.2
    segm, history = train_stage("segm", samples, tmp_path, iterations=100)
    assert check_improved(history)["part_iou"] > 0.01
    pose3d, history = train_stage("pose3d", samples, tmp_path, [pose2d, segm], iterations=120)
    assert check_improved(history)["joint_error_mm"] > 200
    assert history[0]["pckh"] == history[-1]["pckh"]  # the 2D networks stayed frozen
    voxels, history = train_stage("voxels", samples, tmp_path, [pose3d])
    assert check_improved(history)["voxel_iou"] > 0.08
    assert history[0]["joint_error_mm"] == history[-1]["joint_error_mm"]
    _, history = train_stage("shape_regression", samples, tmp_path, [pose3d], iterations=50)
    assert check_improved(history)["beta_error"] > 0
    assert history[0]["joint_error_mm"] == history[-1]["joint_error_mm"]  # the rest stayed frozen
    parts, history = train_stage("part_voxels", samples, tmp_path, [voxels], iterations=60)
    assert check_improved(history)["part_voxel_iou"] > 0.05
    held, trained_voxels = (torch.load(path, weights_only=True)["state"] for path in (parts, voxels))
    assert set(held) == {"pose2d", "segm", "pose3d", "voxels", "part_voxels"}
    assert all(torch.equal(held["voxels"][k], v) for k, v in trained_voxels["voxels"].items())  # voxels stayed frozen
    _, continued = train_stage("part_voxels_fvsv", samples, tmp_path, [parts], iterations=20)
    assert np.isfinite([row["loss"] for row in continued[1:]]).all()
    assert continued[0]["part_voxel_iou"] == pytest.approx(history[-1]["part_voxel_iou"])  # from where it stopped
    depth, history = train_stage("depth", samples, tmp_path, [segm], iterations=200)  # depth wobbles for its first 100
    assert check_improved(history)["depth_rmse_mm"] > 0
    held, trained_segm = (torch.load(path, weights_only=True)["state"] for path in (depth, segm))
    assert set(held) == {"segm", "depth"}
    assert all(torch.equal(held["segm"][k], v) for k, v in trained_segm["segm"].items())  # segm stayed frozen
    for name, init in (("voxels_fvsv", voxels), ("end_to_end_fvsv", voxels), ("end_to_end_fv_without_tasks", voxels)):
        _, history = train_stage(name, samples, tmp_path, [init], iterations=20)
        assert np.isfinite([row["loss"] for row in history[1:]]).all()
        assert history[-1]["voxel_iou"] > 0.08, name


# 'auto' is one of these two, whichever autocast_dtype resolves it to (asserted below)
@pytest.mark.parametrize("precision", [mode for mode in loop.PRECISIONS if mode != "auto"])
def test_each_precision_mode_trains(samples, precision, tmp_path):
    """The loss falls in every selectable mode; fp32 keeps float32 throughout."""
    model = build_model(tiny_config(), [])
    _, steps = loop.train(
        model,
        stage("pose2d"),
        samples,
        samples.subset(6, 0),
        settings(40, precision=precision),
        tmp_path / "checkpoint.pt",
        progress=False,
    )
    losses_seen = [row["loss"] for row in steps]
    assert np.mean(losses_seen[-10:]) < 0.8 * np.mean(losses_seen[:10])
    device = torch.device("cpu")
    assert loop.autocast_dtype(device, "fp32") is None
    assert loop.autocast_dtype(device, "bf16") == torch.bfloat16
    assert loop.autocast_dtype(device, "auto") == (torch.bfloat16 if loop.cpu_has_bf16() else None)
    with pytest.raises(InputError, match="precision must be one of"):
        loop.autocast_dtype(device, "fp16")


def test_the_learning_rate_drops_tenfold_after_its_share_of_the_stage():
    drop = train_settings(iterations=100, learning_rate=1e-3, lr_drop=0.75)
    assert loop.learning_rate(drop, 74) == 1e-3 and loop.learning_rate(drop, 75) == pytest.approx(1e-4)
    assert loop.learning_rate(train_settings(iterations=100, learning_rate=1e-3), 99) == 1e-3  # lr_drop 1: never


def test_turned_and_zoomed_crops_keep_joints_and_parts_together(samples):
    """After a turn and zoom, the heatmaps' peaks stay on the body's parts."""
    batch = make_batch(samples, np.arange(6), np.random.default_rng(3), rotation=30.0, scale=0.25)
    plain = make_batch(samples, np.arange(6))
    assert not torch.equal(batch["rgb"], plain["rgb"])
    peaks = metrics.peaks(batch["heatmaps"]).round().long()
    size = batch["parts"].shape[-1]
    inside = ((peaks >= 0) & (peaks < size)).all(-1)
    on_body = [bool(batch["parts"][b, peaks[b, j, 1], peaks[b, j, 0]] > 0) for b, j in zip(*torch.nonzero(inside).T)]
    assert np.mean(on_body) > 0.8


def test_checkpoints_hold_what_has_been_trained(samples, tmp_path):
    pose2d, _ = train_stage("pose2d", samples, tmp_path, iterations=2)
    assert set(torch.load(pose2d, weights_only=True)["state"]) == {"pose2d"}
    segm, _ = train_stage("segm", samples, tmp_path, iterations=2)
    pose3d, _ = train_stage("pose3d", samples, tmp_path, [pose2d, segm], iterations=2)
    assert set(torch.load(pose3d, weights_only=True)["state"]) == {"pose2d", "segm", "pose3d"}
    model = build_model(tiny_config(), [pose3d])
    assert model.trained == {"pose2d", "segm", "pose3d"}
    wider = BodyNetConfig(64, 16, 32, hourglass=TINY_NET | {"features": 8}, **BODYNET_CHOICES)
    with pytest.raises(InputError, match="pose3d.pt|does not fit"):
        build_model(wider, [pose3d])


class Interrupted(Exception):
    pass


def test_an_interrupted_stage_resumes_to_the_same_weights(samples, tmp_path, monkeypatch):
    """Killed after its checkpoint at iteration 4, a rerun continues from there and ends
    bit for bit where an uninterrupted run ends."""
    whole = build_model(tiny_config(), [])
    loop.train(
        whole,
        stage("pose2d"),
        samples,
        samples.subset(6, 0),
        settings(8, eval_every=4, checkpoint_every=4),
        tmp_path / "whole.pt",
        progress=False,
    )

    real_make_batch, calls = loop.make_batch, []

    def dying_make_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # validation at 0, iterations 1-4, validation at 4, iteration 5
            raise Interrupted
        return real_make_batch(*args, **kwargs)

    checkpoint = tmp_path / "resumed.pt"
    monkeypatch.setattr(loop, "make_batch", dying_make_batch)
    with pytest.raises(Interrupted):
        loop.train(
            build_model(tiny_config(), []),
            stage("pose2d"),
            samples,
            samples.subset(6, 0),
            settings(8, eval_every=4, checkpoint_every=4),
            checkpoint,
            progress=False,
        )
    assert torch.load(checkpoint, weights_only=True)["iteration"] == 4
    monkeypatch.setattr(loop, "make_batch", real_make_batch)
    resumed = build_model(tiny_config(), [])
    history, steps = loop.train(
        resumed,
        stage("pose2d"),
        samples,
        samples.subset(6, 0),
        settings(8, eval_every=4, checkpoint_every=4),
        checkpoint,
        progress=False,
    )
    assert [row["iteration"] for row in history] == [0, 4, 8]
    assert [row["iteration"] for row in steps] == list(range(1, 9))
    for a, b in zip(whole.pose2d.state_dict().values(), resumed.pose2d.state_dict().values()):
        assert torch.equal(a, b)


def test_a_nan_loss_stops_the_stage_and_keeps_the_last_checkpoint(samples, tmp_path, monkeypatch):
    real_terms, calls = losses.terms, []

    def poisoned_terms(*args, **kwargs):
        calls.append(1)
        terms = real_terms(*args, **kwargs)
        return {k: v * float("nan") for k, v in terms.items()} if len(calls) > 3 else terms

    monkeypatch.setattr(loop.losses, "terms", poisoned_terms)
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(TrainingDiverged, match=r"nan at iteration 4.*checkpoint\.pt, stays"):
        loop.train(
            build_model(tiny_config(), []),
            stage("segm"),
            samples,
            samples.subset(6, 0),
            settings(10, eval_every=2, checkpoint_every=2),
            checkpoint,
            progress=False,
        )
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["iteration"] == 2
    assert all(torch.isfinite(p).all() for p in saved["state"]["segm"].values())


def test_a_share_of_the_clips_keeps_every_frame_of_the_clips_drawn(samples, tmp_path):
    clips = samples.arrays["clip"]
    half = samples.of_clips(0.5, seed=0)
    drawn = set(half.clips.tolist())
    assert 0 < len(drawn) < len(set(clips.tolist()))
    assert len(half) == np.isin(clips, list(drawn)).sum()  # every frame of a drawn clip
    first = np.flatnonzero(np.isin(clips, list(drawn)))[0]
    assert torch.equal(make_batch(half, np.arange(1))["rgb"], make_batch(samples, np.array([first]))["rgb"])
    assert set(half.subset(3, seed=0).arrays["clip"].tolist()) <= drawn  # validation subsets: within the share
    half.save(tmp_path / "half")
    assert len(SampleSet.load(tmp_path / "half")) == len(half)
    assert set(samples.of_clips(0.5, seed=0).clips.tolist()) == drawn  # seeded
    assert len(set(samples.of_clips(1e-6, seed=0).clips.tolist())) == 1  # at least one clip
    assert samples.of_clips(1.0, seed=0) is samples
    with pytest.raises(InputError, match="share of the clips"):
        samples.of_clips(0.0, seed=0)


def test_unreadable_samples_are_named(samples, tmp_path):
    with pytest.raises(InputError, match="train: not a folder of prepared samples"):
        SampleSet.load(tmp_path / "train")
    samples.save(tmp_path / "train")
    assert len(SampleSet.load(tmp_path / "train")) == len(samples)
    (tmp_path / "train/parts.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="parts.npy: not a readable array"):
        SampleSet.load(tmp_path / "train")


# What the rules give every `train` from the config: the command has no defaults for them.
CONFIG_OPTIONS = (
    "--modules 1 --depth 4 --learning-rate 1e-3 --lr-drop 1 --precision auto --channels-last --pose3d-loss mse".split()
)
CONFIG_OPTIONS += (
    "--rotation 0 --scale 0 --seed 0 --backbone-2d hourglass --selecsls-depth 42 --selecsls-width 0.25".split()
)


def test_a_registered_stage_loads_from_the_model_registry_and_predicts_as_its_checkpoint(
    samples, tmp_path, tracking_env
):
    import mlflow.pytorch
    from mlflow.tracking import MlflowClient

    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.models.checkpoint import build_model, load_checkpoint
    from pipeline.training.__main__ import main

    data = tmp_path / "train"
    samples.save(data)
    options = "--stacks 1 --features 8 --iterations 2 --batch-size 2 --eval-every 2 --eval-samples 4 --device cpu"
    for _ in range(2):  # trained again: the registered model's second version
        main(["train", "--stage", "segm", "--train", str(data), "--val", str(data), "--out", str(tmp_path / "segm")]
             + ["--register", *options.split(), *CONFIG_OPTIONS])  # fmt: skip
    client = MlflowClient(tracking_env)
    versions = {int(v.version): v for v in client.search_model_versions("name='bodynet-segm'")}
    assert sorted(versions) == [1, 2]
    checkpoint = load_checkpoint(tmp_path / "segm/model.pt")
    assert versions[2].run_id == checkpoint["run_id"]
    run = client.get_run(checkpoint["run_id"])
    assert run.data.tags["pipeline.model_version"] == "bodynet-segm/2"
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"model", "history.csv"}
    assert "model.pt" not in {a.path for a in client.list_artifacts(run.info.run_id)}  # one copy of the weights
    registered = mlflow.pytorch.load_model("models:/bodynet-segm/2")
    network = build_model(BodyNetConfig(**checkpoint["config"]), [tmp_path / "segm/model.pt"]).eval()
    rgb = torch.as_tensor(samples.arrays["rgb"][:3].transpose(0, 3, 1, 2) / 255.0, dtype=torch.float32)
    with torch.no_grad():
        ours, theirs = (net(rgb, wanted=("segm",))["segm"][-1] for net in (network, registered))
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)  # its layout is the trained one's (channels last)


def test_cli_trains_a_stage_and_refuses_missing_inputs(samples, tmp_path, tracking_env):
    from pipeline.training.__main__ import main

    data = tmp_path / "train"
    samples.save(data)
    common = [
        "--train",
        str(data),
        "--val",
        str(data),
        "--stacks",
        "1",
        "--features",
        "8",
        "--depth",
        "4",
        "--iterations",
        "4",
        "--batch-size",
        "2",
        "--eval-every",
        "2",
        "--eval-samples",
        "4",
        "--device",
        "cpu",
        *CONFIG_OPTIONS,
    ]
    main(["train", "--stage", "pose2d", "--out", str(tmp_path / "pose2d"), *common])
    files = sorted(p.name for p in (tmp_path / "pose2d").iterdir())
    assert files == ["curves.png", "history.csv", "model.pt", "predictions.png"]  # no checkpoint left
    history = pd.read_csv(tmp_path / "pose2d/history.csv")
    assert list(history["iteration"]) == [0, 2, 4] and "pckh" in history
    # the same measure on training crops, beside the validation's: under- and over-fitting show
    assert history["train_pckh"].between(0, 1).all() and "train_pckh" in mlflow_metrics(tracking_env, "training")
    with pytest.raises(SystemExit, match="feeds on pose2d, segm"):
        main(["train", "--stage", "pose3d", "--out", str(tmp_path / "pose3d"), *common])
    with pytest.raises(SystemExit, match="missing.pt: no such file"):
        main(
            [
                "train",
                "--stage",
                "pose3d",
                "--init",
                str(tmp_path / "missing.pt"),
                "--out",
                str(tmp_path / "x"),
                *common,
            ]
        )
    assert set(STAGES) >= {"end_to_end_fvsv_without_tasks", "voxels_fv"}


def mlflow_metrics(uri: str, stage: str) -> set[str]:
    """The metric names of the last run of `stage` in the store at `uri`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], f"tags.`pipeline.stage` = '{stage}'"
    )
    return set(runs[0].data.metrics)


def test_cli_resumes_a_killed_stage_only_with_the_same_settings(samples, tmp_path, tracking_env, monkeypatch, caplog):
    from pipeline.training.__main__ import main

    data = tmp_path / "train"
    samples.save(data)
    out = tmp_path / "pose2d"
    command = [
        "train",
        "--stage",
        "pose2d",
        "--out",
        str(out),
        "--train",
        str(data),
        "--val",
        str(data),
        "--stacks",
        "1",
        "--features",
        "8",
        "--iterations",
        "6",
        "--batch-size",
        "2",
        "--eval-every",
        "2",
        "--eval-samples",
        "4",
        *CONFIG_OPTIONS,
        "--device",
        "cpu",
    ]
    real_make_batch, calls = loop.make_batch, []

    def dying_make_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # validation and training crops measured at 0, iterations 1-2, both at 2, iteration 3
            raise Interrupted
        return real_make_batch(*args, **kwargs)

    monkeypatch.setattr(loop, "make_batch", dying_make_batch)
    with pytest.raises(Interrupted):
        main(command)
    monkeypatch.setattr(loop, "make_batch", real_make_batch)
    assert (out / "checkpoint.pt").exists() and not (out / "model.pt").exists()
    with caplog.at_level("INFO", logger="pipeline.training"):
        main([*command[:-2], "--learning-rate", "0.01", "--device", "cpu"])
    assert "made with other settings: starting afresh" in caplog.text
    caplog.clear()
    monkeypatch.setattr(loop, "make_batch", dying_make_batch)
    calls.clear()
    with pytest.raises(Interrupted):
        main(command)
    monkeypatch.setattr(loop, "make_batch", real_make_batch)
    with caplog.at_level("INFO", logger="pipeline.training"):
        main(command)
    assert "pose2d: resuming at iteration 2" in caplog.text
    assert not (out / "checkpoint.pt").exists()
    assert list(pd.read_csv(out / "history.csv")["iteration"]) == [0, 2, 4, 6]


def test_learning_curves_draw_each_stage_beside_the_references(tmp_path, tracking_env):
    import json

    from pipeline.training.__main__ import main

    pose2d = {"iteration": [0, 10, 20], "pckh": [0.0, 0.3, 0.4], "train_pckh": [0.0, 0.4, 0.6]}
    pd.DataFrame(pose2d).to_csv(tmp_path / "pose2d.csv", index=False)
    pd.DataFrame({"iteration": [0, 10], "joint_error_mm": [900.0, 300.0]}).to_csv(tmp_path / "pose3d.csv", index=False)
    (tmp_path / "constant.json").write_text(json.dumps({"measures": {"pckh": 0.2, "joint_error_mm": 280.0}}))
    out = tmp_path / "curves.png"
    main(
        [
            "curves",
            "--history",
            f"pose2d={tmp_path / 'pose2d.csv'}",
            "--history",
            f"pose3d={tmp_path / 'pose3d.csv'}",
            "--reference",
            f"constant={tmp_path / 'constant.json'}",
            "--batch-size",
            "16",
            "--out",
            str(out),
        ]
    )
    assert out.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="--history expects STAGE=PATH"):
        main(["curves", "--history", "pose2d", "--batch-size", "16", "--out", str(out)])
    with pytest.raises(SystemExit, match="missing.csv"):
        main(["curves", "--history", f"pose2d={tmp_path / 'missing.csv'}", "--batch-size", "16", "--out", str(out)])


def test_samples_carry_the_cropped_flow_and_a_3d_pose_network_can_read_it(tiny_clips, tmp_path):
    from pipeline.clips import Clip, find_clips
    from pipeline.datasets.surreal import crop_box
    from pipeline.flow.storage import FlowSource
    from pipeline.training.samples import flow_channels, inputs

    root, _, _ = tiny_clips
    out = tmp_path / "flow_samples"
    prepare(root, "train", SIZES, "middle", VoxelSource(), out, progress=False, flow=FlowSource("rendered"))
    with_flow = SampleSet.load(out)
    flow = with_flow.arrays["flow"]
    assert flow.shape == (len(with_flow), 64, 64, 2) and np.abs(flow).max() > 0.1
    # the crop scales the vectors: the body's mean flow in the crop, back in image pixels,
    # matches the image's mean flow on the body
    clip = Clip(find_clips(root, "train")[int(with_flow.arrays["clip"][0])])
    t = int(with_flow.arrays["frame"][0])
    _, side = crop_box(clip.info.joints2d[t])
    image_flow = clip.forward_flow(t)
    body = clip.segm(t) > 0
    crop_moving = np.linalg.norm(flow[0].astype(np.float32), axis=-1) > 1e-3
    assert np.abs(flow[0][crop_moving].astype(np.float32).mean(0) * side / 64 - image_flow[body].mean(0)).max() < 0.3
    batch = make_batch(with_flow, np.arange(4), np.random.default_rng(0), flip=True)
    assert batch["flow"].shape == (4, 3, 64, 64)
    assert torch.allclose(batch["flow"][:, 2], batch["flow"][:, :2].norm(dim=1), atol=1e-5)
    unflipped = torch.as_tensor(flow_channels(flow[:4], 64))
    for k in range(4):  # each image either as it was or mirrored with u negated
        mirrored = unflipped[k].flip(-1) * torch.tensor([-1.0, 1.0, 1.0])[:, None, None]
        assert torch.allclose(batch["flow"][k], unflipped[k]) or torch.allclose(batch["flow"][k], mirrored)
    config = BodyNetConfig(64, 16, 32, hourglass=TINY_NET, pose3d_inputs=("flow", "pose2d"), **BODYNET_CHOICES)
    model = BodyNet(config)
    assert model.needed({"pose3d"}) == {"pose3d", "pose2d"}
    out = model(**inputs(batch), wanted=("pose3d",))
    assert out["pose3d"][-1].shape == (4, 16, 19, 16, 16)
    with pytest.raises(ValueError, match="reads flow"):
        model(batch["rgb"], wanted=("pose3d",))


def test_the_loss_meter_takes_each_losss_mean_since_its_last_take():
    from pipeline.meters import LossMeter, row_line

    meter = LossMeter()
    meter.add({"loss": 1.0, "loss_pose2d": 2.0})
    meter.add({"loss": 3.0, "loss_pose2d": 4.0})
    row = meter.take(2, batch_size=5, speed="samples_per_second")
    assert row["iteration"] == 2 and row["loss"] == 2.0 and row["loss_pose2d"] == 3.0
    assert row["samples_per_second"] > 0
    meter.add({"loss": 7.0})
    assert meter.take(3, 5, "samples_per_second")["loss"] == 7.0  # the earlier iterations are forgotten
    assert row_line({"iteration": 2, "loss": 0.123456, "pckh": 0.5}) == "loss=0.1235, pckh=0.5"


def test_the_ledger_resumes_its_history_and_names_each_measure_for_mlflow():
    import logging
    from types import SimpleNamespace

    from pipeline.meters import Ledger
    from pipeline.training.loop import measures_logged

    class Run:
        def __init__(self):
            self.logged = []

        def log_metrics(self, metrics, step):
            self.logged.append((step, dict(metrics)))

    run, settings = Run(), SimpleNamespace(eval_every=2, iterations=3, batch_size=4)
    kept = [{"iteration": 0, "pckh": 0.1}, {"iteration": 2, "loss": 1.0, "pckh": 0.2}]  # a checkpoint's
    before = list(kept)
    ledger = Ledger("toy", settings, "samples_per_second", logging.getLogger(), run, measures_logged, kept, [])
    assert ledger.record(3, {"loss": 0.5, "loss_pose2d": 0.25})  # the last step: an evaluation is due
    row = ledger.evaluated(3, {"pckh": 0.3, "train_pckh": 0.4})
    assert (
        ledger.history is kept
        and kept == [*before, row]
        and ledger.steps == [{"iteration": 3, "loss": 0.5, "loss_pose2d": 0.25}]
    )
    assert row["loss"] == 0.5 and row["samples_per_second"] > 0
    assert run.logged[0] == (3, {"loss": 0.5, "loss_pose2d": 0.25})
    step, measures = run.logged[1]
    assert step == 3 and set(measures) == {"val_pckh", "train_pckh", "samples_per_second"}
    assert not Ledger("toy", settings, "x", logging.getLogger()).record(1, {"loss": 1.0})  # not yet due


def test_the_shared_loop_steps_the_rate_evaluates_on_schedule_and_stops_on_a_non_finite_loss():
    import logging
    from types import SimpleNamespace

    from pipeline.meters import run_steps

    model = torch.nn.Linear(1, 1, bias=False)
    optimiser = torch.optim.SGD(model.parameters(), lr=1.0)
    settings = SimpleNamespace(iterations=5, learning_rate=0.1, lr_drop=0.6, eval_every=2, batch_size=4)
    rates = []

    def step(iteration: int):
        rates.append(optimiser.param_groups[0]["lr"])
        loss = (model.weight.sum() - 3.0) ** 2
        return loss, {"fit": loss}

    evaluate = lambda: {"weight": model.weight.item()}  # noqa: E731
    history, steps = run_steps("toy", model, optimiser, settings, step, evaluate, "x_per_second", logging.getLogger())
    assert [row["iteration"] for row in history] == [0, 2, 4, 5] and len(steps) == 5
    # each iteration's rate (seen by the next step): a tenth from 60 % of the iterations on
    assert rates[1:] == pytest.approx([0.1, 0.1, 0.1, 0.01])
    assert history[-1]["weight"] == pytest.approx(model.weight.item()) and history[-1]["loss_fit"] == steps[-1]["loss"]
    blown = lambda iteration: (torch.tensor(float("nan")), {})  # noqa: E731
    with pytest.raises(FloatingPointError, match="toy: the loss became nan at iteration 1"):
        run_steps("toy", model, optimiser, settings, blown, evaluate, "x_per_second", logging.getLogger())
