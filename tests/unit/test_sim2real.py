"""The sim-to-real temporal model's pieces: composition over a moving camera, its input channels,
the network's shapes and its losses."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pipeline.flow import camera
from pipeline.sim2real import compose, inputs, losses, network

T, H, W = 5, 40, 48


def toy_person(own_motion=(0.0, 0.0)):
    """A 10 × 8 coloured block at (20, 15) that moves by `own_motion` pixels a frame (integers)."""
    person = np.zeros((T, H, W, 3), np.uint8)
    mask = np.zeros((T, H, W), bool)
    for t in range(T):
        x, y = 20 + int(own_motion[0]) * t, 15 + int(own_motion[1]) * t
        mask[t, y : y + 8, x : x + 10] = True
        person[t, y : y + 8, x : x + 10] = [200, 30 + 20 * t, 90]
    flow = np.zeros((T - 1, H, W, 2), np.float32)
    flow[mask[:-1]] = own_motion
    points = np.zeros((T, 24, 2))
    points[:, :, 0] = 25 + own_motion[0] * np.arange(T)[:, None]
    points[:, :, 1] = 19 + own_motion[1] * np.arange(T)[:, None]
    return person, mask, flow, points


def photo():
    return np.random.default_rng(0).integers(0, 256, (90, 110, 3), dtype=np.uint8)


OFFSETS = np.array([[-4.0, 2.0], [-2.0, 1.0], [0.0, 0.0], [3.0, -1.0], [5.0, -3.0]])  # integer moves, zero at T // 2


def test_a_tracked_person_moves_with_the_scene_and_its_flow_adds_the_cameras():
    person, mask, flow, points = toy_person(own_motion=(1.0, 0.0))
    clip = compose.compose(person, mask, flow, points, photo(), OFFSETS, tracked=True)
    for t in range(T):  # the layer displaced by −o_t, colours kept
        assert np.array_equal(clip.mask[t], compose.shifted(mask[t], -OFFSETS[t]))
        assert np.array_equal(clip.frames[t][clip.mask[t]], compose.shifted(person[t], -OFFSETS[t])[clip.mask[t]])
    moves = -np.diff(OFFSETS, axis=0)
    for t in range(T - 1):
        assert np.allclose(clip.flows[t][~clip.mask[t]], moves[t])  # the background: the camera's move reversed
        assert np.allclose(clip.flows[t][clip.mask[t]], moves[t] + [1.0, 0.0])  # plus the person's own
        # every person pixel lands, by its flow, on the next frame's person
        ys, xs = np.nonzero(clip.mask[t])
        ends = np.stack([xs, ys], -1) + clip.flows[t][ys, xs]
        assert clip.mask[t + 1][ends[:, 1].astype(int), ends[:, 0].astype(int)].all()
    assert np.allclose(clip.points, points - OFFSETS[:, None])
    # the paper's camera tracking finds the camera from the composite's flow, the person left out
    assert np.allclose(camera.track(clip.flows, clip.mask[:-1]), -OFFSETS)


def test_an_untracked_person_stays_put_while_the_background_moves():
    person, mask, flow, points = toy_person()
    clip = compose.compose(person, mask, flow, points, photo(), OFFSETS, tracked=False)
    assert np.array_equal(clip.mask, mask) and np.array_equal(clip.frames[mask], person[mask])
    assert np.allclose(clip.flows[mask[:-1]], 0.0)  # the person's own flow: none
    assert not np.allclose(clip.flows[~mask[:-1]], 0.0)
    assert np.array_equal(clip.points, points)
    still = compose.compose(person, mask, flow, points, photo(), np.zeros((T, 2)))
    assert np.allclose(still.flows, 0.0) and (still.frames[1:, ~mask[0]] == still.frames[:1, ~mask[0]]).all()


def test_composition_refuses_a_clip_whose_parts_disagree():
    person, mask, flow, points = toy_person()
    with pytest.raises(ValueError, match="do not agree"):
        compose.compose(person, mask, flow[:-1], points, photo(), OFFSETS)
    with pytest.raises(ValueError, match="camera offsets"):
        compose.compose(person, mask, flow, points, photo(), OFFSETS[:-1])


def test_the_crop_maps_each_box_onto_the_crop_and_scales_the_flow():
    person, mask, flow, points = toy_person(own_motion=(1.0, 0.0))
    clip = compose.compose(person, mask, flow, points, photo(), OFFSETS)
    whole = compose.crop(clip, np.tile([(W - 1) / 2, (H - 1) / 2, W], (T, 1)), W)  # the frame's width: the frame
    margin = (W - H) // 2  # rows above and below the frame, empty
    assert np.array_equal(whole.frames[:, margin : margin + H], clip.frames) and not whole.frames[:, :margin].any()
    assert np.allclose(whole.points, clip.points + [0, margin])
    assert np.allclose(whole.flows[:, margin : margin + H], clip.flows)
    boxes = np.tile([25.0, 19.0, 20.0], (T, 1))
    boxes[1:, 0] += 3.0  # the later frames' boxes 3 pixels to the right
    half = compose.crop(clip, boxes, 40)  # twice the size
    assert half.frames.shape == (T, 40, 40, 3) and half.flows.shape == (T - 1, 40, 40, 2)
    assert np.allclose(half.points, (clip.points - boxes[:, None, :2]) * 2 + 19.5)  # each box's centre at the crop's
    move = -np.diff(OFFSETS, axis=0)[0]
    # the first flow through the first frame's box: its pixel (27, 13) is the frame's (28.75, 15.75), the person
    assert np.allclose(half.flows[0, 13, 27], 2 * (move + [1.0, 0.0]))
    assert np.allclose(half.flows[0, 33, 3], 2 * move)  # (16.75, 25.75): the background
    assert np.array_equal(half.frames[2], compose.crop(clip, np.tile(boxes[2], (T, 1)), 40).frames[2])


def test_the_persons_boxes_follow_its_visible_joints_at_one_scale():
    points = np.array([[[10.0, 20.0], [30.0, 60.0]], [[14.0, 24.0], [500.0, 500.0]], [[0.0, 0.0], [1.0, 1.0]]])
    visible = np.array([[True, True], [True, True], [False, False]])
    boxes = compose.person_boxes(points, visible, 1.5)
    assert np.allclose(boxes[:2, :2], [[20.0, 40.0], [257.0, 262.0]])
    assert np.allclose(boxes[2, :2], boxes[:2, :2].mean(axis=0))  # no joint seen: the clip's mean centre
    assert np.allclose(boxes[:, 2], 1.5 * np.median([40.0, 486.0]))
    with pytest.raises(ValueError, match="no visible joint"):
        compose.person_boxes(points, np.zeros_like(visible), 1.5)


def test_input_kinds_parse_in_one_order_and_refuse_strangers():
    assert inputs.parse_kinds("keypoints+flow") == ("flow", "keypoints")
    assert inputs.channel_count(("rgb", "flow", "keypoints")) == 19  # and the flag of a blank frame
    for bad in ("", "flow+flow", "depth", "flow+"):
        with pytest.raises(ValueError, match="each once"):
            inputs.parse_kinds(bad)
    assert [name.split("_")[1] for name in inputs.KEYPOINT_NAMES[::2]] == [
        "ankle",
        "knee",
        "hip",
        "shoulder",
        "elbow",
        "wrist",
    ]


def test_keypoint_heatmaps_peak_at_their_joints_and_vanish_where_hidden():
    rng = np.random.default_rng(1)
    points = rng.integers(5, 59, (3, 24, 2)).astype(float)
    visible = rng.random((3, 24)) < 0.7
    maps = inputs.keypoint_heatmaps(points, visible, 64)
    assert maps.shape == (3, 12, 64, 64)
    for t in range(3):
        for k, joint in enumerate(inputs.KEYPOINTS):
            if not visible[t, joint]:
                assert not maps[t, k].any()
                continue
            y, x = np.unravel_index(maps[t, k].argmax(), (64, 64))
            assert (x, y) == tuple(points[t, joint].astype(int)) and maps[t, k, y, x] == pytest.approx(1.0)
            # σ = 10 px at 224: 64 / 224 · 10 px one σ away, e^−½ of the peak
            sigma = 10 * 64 / 224
            assert maps[t, k].sum() == pytest.approx(2 * np.pi * sigma**2, rel=0.05) or x in (5, 58) or y in (5, 58)


def test_the_channels_of_a_clip_are_its_steps():
    frames = np.full((4, 32, 32, 3), 255, np.uint8)
    flows = np.zeros((3, 32, 32, 2), np.float32)
    flows[..., 0] = 3.0
    flows[..., 1] = 4.0
    points, visible = np.full((4, 24, 2), 16.0), np.ones((4, 24), bool)
    blank = np.array([False, True, False, False])
    out = inputs.channels(("rgb", "flow", "keypoints"), frames, flows, points, visible, blank)
    assert out.shape == (3, 19, 32, 32) and np.allclose(out[[0, 2], :3], 1.0)
    scale = 20 * 32 / 224
    assert np.allclose(out[[0, 2], 3:6, 0, 0], [3 / scale, 4 / scale, 5 / scale])
    assert out[[0, 2], 6:18].max() == pytest.approx(1.0)  # the keypoints' peaks
    assert not out[1, :18].any() and (out[1, 18] == 1).all() and not out[[0, 2], 18].any()  # the blank frame, flagged
    with pytest.raises(ValueError, match="T − 1 flows"):
        inputs.channels(("flow",), frames, flows[:2], points, visible, blank)


def test_the_network_predicts_each_step_and_the_clip_keeps_the_last_future():
    torch.manual_seed(0)
    config = network.TemporalConfig(channels=15, width=4, depth=2, features=16, lstm=8)
    model = network.TemporalPoseNet(config)
    out = model(torch.rand(2, 6, 15, 32, 32))
    assert out["current"].shape == out["next"].shape == (2, 6, 24, 3)
    joints = network.clip_joints(out)
    assert joints.shape == (2, 7, 24, 3)
    assert torch.equal(joints[:, :6], out["current"]) and torch.equal(joints[:, 6], out["next"][:, 5])
    # a bidirectional LSTM: the first step's prediction reads the last step's frame
    changed = torch.rand(2, 6, 15, 32, 32)
    later = changed.clone()
    later[:, -1] += 1.0
    model.eval()
    assert not torch.equal(model(changed)["current"][:, 0], model(later)["current"][:, 0])


def test_the_aligned_loss_ignores_a_similarity_transform_and_the_joints_loss_does_not():
    truth = torch.as_tensor(np.random.default_rng(2).normal(0, 0.3, (4, 24, 3)), dtype=torch.float32)
    turn = torch.as_tensor(Rotation.from_rotvec([0.3, -1.1, 0.6]).as_matrix(), dtype=torch.float32)
    moved = 1.7 * truth @ turn.T + torch.tensor([0.2, -0.1, 0.5])
    assert torch.allclose(losses.procrustes_aligned(moved, truth), truth, atol=1e-5)
    mirrored = truth * torch.tensor([-1.0, 1.0, 1.0])  # a reflection is no rotation: it stays off
    assert losses.joint_distance(losses.procrustes_aligned(mirrored, truth), truth).min() > 0.05
    clips = truth.reshape(2, 2, 24, 3)
    predicted = {"current": moved.reshape(2, 2, 24, 3)[:, :1], "next": moved.reshape(2, 2, 24, 3)[:, 1:]}
    terms = losses.terms(predicted, clips)
    assert terms["aligned"] < 1e-5 < terms["joints"]
    guess = moved.reshape(2, 2, 24, 3)[:, :1].clone().requires_grad_()
    losses.terms({"current": guess, "next": guess}, clips)["aligned"].backward()
    assert torch.isfinite(guess.grad).all()


@pytest.fixture(scope="module")
def recomposed(tiny_clips):
    """The tiny clips recomposed at 48 pixels over a moving camera, one set per construction."""
    from pipeline.clips import find_clips
    from pipeline.sim2real import dataset
    from pipeline.sim2real.occlude import OcclusionSettings
    from pipeline.synthesis.backgrounds import package_photos
    from pipeline.synthesis.handheld import HandheldSettings

    root, _, _ = tiny_clips
    clips, photos = find_clips(root, "train"), package_photos("train")[:2]
    camera_moves = HandheldSettings(pan=2.0, shake=1.0, smoothing=0.5)
    occlusion = OcclusionSettings(1.0, (10, 30), 10.0, 0.5, 3, 0.2, 0.5, 0.05)  # every clip occluded

    def made(construction):
        settings = dataset.Sim2RealData(0, 48, 1.5, camera_moves, occlusion, construction)
        return dataset.prepare(clips, photos, "train", settings, progress=False)

    return {construction: made(construction) for construction in dataset.CONSTRUCTIONS}


def test_recomposed_clips_hold_the_persons_joints_and_the_cameras_motion(recomposed, tmp_path):
    from pipeline.errors import InputError
    from pipeline.sim2real import dataset

    full = recomposed["full"]
    n, t = full["frames"].shape[:2]
    assert full["frames"].shape == (n, t, 48, 48, 3) and full["flows"].shape == (n, t - 1, 48, 48, 2)
    assert full["flows"].dtype == np.float16 and full["points"].shape == full["joints"][..., :2].shape
    assert np.allclose(full["joints"][:, :, 0], 0.0)  # pelvis-relative
    assert 0.4 < full["visible"].mean() < 0.95 and not full["visible"][full["blank"]].any()
    assert full["blank"].any(axis=1).mean() > 0.2  # total occlusions, in some clips
    clear = recomposed["no_occlusions"]
    assert not clear["blank"].any() and clear["visible"].mean() > full["visible"].mean()
    box_points = full["points"][full["visible"]]
    assert box_points.min() >= 0 and box_points.max() <= 47
    # the three constructions share the person (joints) and differ in how the frame moves
    for other in ("no_occlusions", "untracked", "static"):
        assert np.array_equal(recomposed[other]["joints"], full["joints"])
    corner = (slice(None), slice(None), slice(0, 4), slice(0, 4))  # off the person: the background's flow
    assert np.abs(recomposed["static"]["flows"][corner]).max() == 0
    assert np.abs(full["flows"][corner]).max() > 0.5 and np.abs(recomposed["untracked"]["flows"][corner]).max() > 0.5
    # the detector's boxes follow the person either way: tracking shows in the flow, not the joints
    assert np.allclose(full["points"], recomposed["untracked"]["points"], atol=1e-4)
    assert not np.array_equal(full["flows"], recomposed["untracked"]["flows"])
    dataset.write(tmp_path / "clips.npz", full)
    loaded = dataset.load(tmp_path / "clips.npz")
    assert all(np.array_equal(loaded[name], full[name]) for name in dataset.ARRAYS)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="broken.npz: not a sim2real clip file"):
        dataset.load(tmp_path / "broken.npz")


def test_the_temporal_model_learns_its_training_clips(recomposed):
    """Fed flow and keypoints, the model moves off the constant pose it starts at: the training
    clips' aligned error (PA-MPJPE) falls to 60 % of the constant's in 150 iterations (37 mm
    from 99 when set)."""
    from pipeline.sim2real import train

    data = recomposed["full"]
    kinds = ("flow", "keypoints")
    config = network.TemporalConfig(channels=inputs.channel_count(kinds), width=8, depth=3, features=64, lstm=64)
    torch.manual_seed(0)
    model = network.TemporalPoseNet(config)
    train.start_at(model, train.mean_pose(data))
    settings = train.Sim2RealTrainSettings(
        iterations=150,
        batch_size=4,
        window=6,
        learning_rate=2e-3,
        lr_drop=0.75,
        weights={"aligned": 1.0, "joints": 1.0},
        eval_every=150,
        seed=0,
    )
    history, _ = train.train("toy", model, kinds, data, data, settings, progress=False)
    assert history[-1]["aligned_error_mm"] < 0.6 * history[0]["aligned_error_mm"]
    assert history[-1]["train_aligned_error_mm"] == pytest.approx(history[-1]["aligned_error_mm"])


def test_the_oracle_finds_each_test_pose_among_the_training_poses():
    from pipeline.sim2real.evaluate import nearest_training_poses

    bank = np.random.default_rng(3).normal(0, 0.3, (50, 24, 3))
    truth = bank[[4, 17, 17, 30]].reshape(2, 2, 24, 3) + 1e-4
    assert np.allclose(nearest_training_poses(truth, bank, chunk=3), bank[[4, 17, 17, 30]].reshape(2, 2, 24, 3))


def test_the_table_judges_the_papers_orderings_and_every_row_against_the_constant():
    from pipeline.sim2real import evaluate

    rng = np.random.default_rng(4)
    truth = rng.normal(0, 0.3, (12, 5, 24, 3))
    noisy = {"constant": 0.2, "keypoints": 0.05, "flow+keypoints": 0.02, "untracked": 0.02}  # metres of noise
    predictions = {row: truth + rng.normal(0, scale, truth.shape) for row, scale in noisy.items()}
    clips = evaluate.clip_rows(predictions, truth, np.array([f"clip{n}" for n in range(12)]))
    assert len(clips) == 4 * 12 and set(clips.columns) == {"row", "clip", *evaluate.MEASURES}
    table, orderings = evaluate.tables(clips, 0, {row: 5 for row in noisy if row != "constant"})
    assert list(table["row"]) == list(noisy) and table.loc[1, "construction"] == "full"
    assert table.set_index("row").loc["untracked", "inputs"] == "flow+keypoints"
    judged = orderings.set_index(["better", "than", "measure"])["verdict"]
    assert judged[("flow+keypoints", "keypoints", "aligned_error_mm")] == "holds"
    assert judged[("keypoints", "constant", "joint_error_mm")] == "holds"
    assert ("flow", "rgb", "aligned_error_mm") not in judged.index  # rows the run has not: no verdict


def test_the_commands_train_and_tabulate_and_refuse_what_they_cannot_read(recomposed, tmp_path):
    import pandas as pd

    from pipeline.errors import InputError
    from pipeline.sim2real import dataset
    from pipeline.sim2real.__main__ import load_model, main

    clips = tmp_path / "clips.npz"
    dataset.write(clips, recomposed["full"])
    sizes = ["--width", "4", "--depth", "2", "--features", "8", "--lstm", "8"]
    schedule = ["--iterations", "3", "--batch-size", "2", "--window", "4", "--eval-every", "3", "--seed", "0"]
    rates = ["--learning-rate", "1e-3", "--lr-drop", "0.75", "--weight", "aligned=1", "--weight", "joints=1"]
    common = ["--train", str(clips), "--test", str(clips), *sizes, *schedule, *rates]
    main(["train", *common, "--inputs", "keypoints", "--out", str(tmp_path / "keypoints")])
    model, kinds, frames = load_model(tmp_path / "keypoints/model.pt")
    assert kinds == ("keypoints",) and model.config.channels == 13 and frames == 4
    assert len(pd.read_csv(tmp_path / "keypoints/history.csv")) == 2
    outputs = ["--clips", str(tmp_path / "clips.csv"), "--out", str(tmp_path / "table.csv")]
    outputs += ["--orderings", str(tmp_path / "orderings.csv")]
    row = ["--row", f"keypoints={tmp_path / 'keypoints/model.pt'}"]
    main(["evaluate", "--test", str(clips), "--train", str(clips), *row, "--seed", "0", *outputs])
    assert list(pd.read_csv(tmp_path / "table.csv")["row"]) == ["constant", "keypoints", "nearest_training_pose"]
    with pytest.raises(SystemExit, match="--inputs: inputs 'depth'"):
        main(["train", *common, "--inputs", "depth", "--out", str(tmp_path / "depth")])
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(SystemExit, match="sim2real.dataset: construction 'moving'"):
        main(
            ["prepare", "--root", str(tmp_path), "--split", "train", "--backgrounds", str(tmp_path)]
            + ["--construction", "moving", "--size", "32", "--box-scale", "1.5", "--pan", "1", "--shake", "1"]
            + ["--smoothing", "0.5", "--chance", "0.3", "--segments", "10", "30", "--compactness", "10"]
            + ["--blank-chance", "0.1", "--blank-frames", "3", "--behind", "0.2", "--unhide-legs", "0.5"]
            + ["--flip", "0.05", "--seed", "0", "--out", str(tmp_path / "x.npz")]
        )


def test_a_segment_of_the_scene_moves_with_the_scene():
    from pipeline.sim2real import occlude

    reference = np.zeros((40, 48, 3), np.uint8)
    reference[:, 24:] = [250, 20, 20]  # two flat halves: SLIC splits along their edge
    segments = occlude.segment_masks(reference, OFFSETS, 4, 10.0)
    assert segments.shape == (T, 40, 48) and segments[2].min() > 0  # the reference frame: every pixel in one
    for t in range(T):
        assert np.array_equal(segments[t], compose.shifted(segments[2], -OFFSETS[t], nearest=True))
    assert set(np.unique(segments[2][:, :20])).isdisjoint(np.unique(segments[2][:, 28:]))  # the halves apart


def test_an_occluder_hides_some_of_the_person_and_at_most_half_its_keypoints():
    from pipeline.sim2real import occlude

    person = np.zeros((2, 20, 20), bool)
    person[:, 5:15, 5:15] = True
    points = np.full((2, 24, 2), 7.0)  # every keypoint at (7, 7)
    segments = np.ones((2, 20, 20), np.int32)  # segment 1 everywhere but ...
    segments[:, 10:, :] = 2  # ... the lower half, segment 2, which hides no keypoint
    segments[:, :, 18:] = 3  # a strip that misses the person
    rng = np.random.default_rng(0)
    masks = occlude.choose_occluder(segments, person, points, rng)
    assert masks is not None and np.array_equal(masks, segments == 2)
    assert occlude.choose_occluder(np.where(segments == 2, 1, segments), person, points, rng) is None


def replace_settings(settings, **changes):
    from dataclasses import replace

    return replace(settings, **changes)


def test_hidden_keypoints_follow_the_papers_rules():
    from pipeline.sim2real import occlude

    settings = occlude.OcclusionSettings(0.3, (10, 30), 10.0, 0.0, 15, 0.2, 0.0, 0.0)
    points = np.full((3, 24, 2), 10.0)
    points[0, 5] = [-3.0, 10.0]  # out of frame
    depths, depth_maps = np.full((3, 24), 5.0), np.full((3, 20, 20), 5.0)
    depths[1, 7] = 5.25  # a left ankle a quarter metre behind the body's surface
    body_hides = occlude.behind_the_body(points, depths, depth_maps, settings.behind)
    assert body_hides.sum() == 1 and body_hides[1, 7]
    occluder = np.zeros((3, 20, 20), bool)
    occluder[2] = True  # the third frame, all under the occluder
    blank = np.array([False, False, False])
    rng = np.random.default_rng(0)
    visible = occlude.hidden_keypoints(points, (20, 20), body_hides, occluder, blank, rng, settings)
    assert not visible[0, 5] and not visible[1, 7] and not visible[2].any()
    assert visible[0].sum() == 23 and visible[1].sum() == 23
    legs = replace_settings(settings, unhide_legs=1.0)  # every leg keypoint shown, occluded or not
    visible = occlude.hidden_keypoints(points, (20, 20), body_hides, occluder, blank, rng, legs)
    assert visible[1, 7] and visible[2, occlude.LEGS].all() and not visible[2, 16]
    blanked = occlude.hidden_keypoints(points, (20, 20), body_hides, None, np.array([True, False, False]), rng, legs)
    assert not blanked[0].any() and blanked[1:].all()
    flips = occlude.hidden_keypoints(
        points, (20, 20), body_hides, None, blank, rng, replace_settings(settings, flip=1.0)
    )
    assert flips[0, 5] and flips[1, 7] and flips.sum() == 2  # every visibility turned over


def test_total_occlusions_are_one_run_of_at_most_their_length():
    from pipeline.sim2real import occlude

    settings = occlude.OcclusionSettings(0.3, (10, 30), 10.0, 1.0, 4, 0.2, 0.5, 0.05)
    for seed in range(20):
        blank = occlude.blank_frames(np.random.default_rng(seed), 10, settings)
        runs = np.flatnonzero(np.diff(np.concatenate([[0], blank.astype(int), [0]])))
        assert len(runs) == 2 and 1 <= runs[1] - runs[0] <= 4
    never = replace_settings(settings, blank_chance=0.0)
    assert not occlude.blank_frames(np.random.default_rng(0), 10, never).any()
    with pytest.raises(ValueError, match="flip is a chance"):
        replace_settings(settings, flip=1.5)


def test_a_clip_is_read_in_pieces_of_the_training_windows_length():
    from pipeline.sim2real.train import chunks

    assert chunks(30, 8) == [(0, 8), (8, 8), (16, 8), (24, 6)]
    assert chunks(30, 30) == [(0, 30)] and chunks(30, 40) == [(0, 30)]
    assert chunks(17, 8) == [(0, 8), (8, 9)]  # a last piece of one frame has no step: it joins the one before


def test_the_clip_length_rows_take_the_papers_nearest_length_and_its_orderings():
    from pipeline.sim2real.evaluate import clip_length_study

    paper, orderings = clip_length_study(
        {"frames_8": 8, "flow+keypoints": 16, "frames_30": 30, "frames_56": 56, "rgb": 16}
    )
    assert paper == {
        "frames_8": {"aligned_error_mm": 79.0},
        "frames_30": {"aligned_error_mm": 74.7},
        "frames_56": {"aligned_error_mm": 76.2},
    }
    assert orderings == (("flow+keypoints", "frames_8"), ("frames_30", "flow+keypoints"), ("frames_30", "frames_56"))
    assert clip_length_study({"flow+keypoints": 16, "rgb": 16}) == ({}, ())
