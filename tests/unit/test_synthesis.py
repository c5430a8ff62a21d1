"""Synthetic clips: SURREAL's conventions, checked against independent arithmetic."""

from dataclasses import replace

import cv2
import numpy as np
import pytest
import scipy.io
import yaml
from scipy.spatial.transform import Rotation

from conftest import ROOT
from pipeline.body_model.skeleton import SMPL_JOINT_NAMES
from pipeline.clips import Clip, find_clips
from pipeline.datasets.surreal import silhouette_box
from pipeline.errors import InputError
from pipeline.synthesis import appearance, backgrounds, generate, motion
from pipeline.synthesis.voxels import align_to_box
from synthetic_clips import render_tiny, tiny_motions, toy_synthesis

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

# SURREAL's camera, written out from its documentation (misc/3Dto2D/getExtrinsicBlender.m)
K = np.array([[600.0, 0, 160], [0, 600, 120], [0, 0, 1]])
R_WORLD_TO_BLENDER_CAMERA = np.array([[0, 0, 1], [0, -1, 0], [-1, 0, 0]]).T
CV_FLIP = np.diag([1, -1, -1])


def surreal_projection(points: np.ndarray, cam_loc: np.ndarray) -> np.ndarray:
    rotation = CV_FLIP @ R_WORLD_TO_BLENDER_CAMERA
    translation = CV_FLIP @ (-R_WORLD_TO_BLENDER_CAMERA @ cam_loc)
    camera = points @ rotation.T + translation
    pixels = camera @ K.T
    return pixels[..., :2] / pixels[..., 2:]


# --- motion -----------------------------------------------------------------------------


def test_deepmimic_retargeting_gives_plausible_smpl_poses():
    walk = tiny_motions()[0]
    assert walk.pose.shape == (16, 72) and walk.trans.shape == (16, 3)
    assert np.all(np.isfinite(walk.pose))
    # standing: the root is about 0.85 m above the floor, z being up in the motion's world
    assert np.all(np.abs(walk.trans[:, 2] - 0.85) < 0.1)
    # the body is upright: its up axis (SMPL's y) maps to the world's +z
    up = Rotation.from_rotvec(walk.pose[:, :3]).apply([0.0, 1.0, 0.0])
    assert np.all(up[:, 2] > 0.9)


def test_mirroring_twice_gives_the_motion_back():
    walk = tiny_motions()[0]
    back = motion.mirror(motion.mirror(walk))
    same = Rotation.from_rotvec(back.pose.reshape(-1, 3)).inv() * Rotation.from_rotvec(walk.pose.reshape(-1, 3))
    assert np.max(same.magnitude()) < 1e-5
    assert np.allclose(back.trans, walk.trans, atol=1e-6)


def test_motion_variants_are_seeded_new_poses_made_of_the_splits_own():
    walk, punch = tiny_motions()
    variation = motion.Variation(speed=(0.5, 0.5), blend=1.0, jitter=0.1)
    made = motion.variants([walk, punch], 3, variation, seed=0, split="train")
    again = motion.variants([walk, punch], 3, variation, seed=0, split="train")
    assert [m.name for m in made] == [m.name for m in again] and all(
        np.array_equal(a.pose, b.pose) for a, b in zip(made, again)
    )
    assert not np.array_equal(made[0].pose, motion.variants([walk, punch], 1, variation, 1, "train")[0].pose)
    assert all(m.name.split("_v")[0] in ("walk", "punch") for m in made)  # made of the split's own motions
    base = walk if made[0].name.startswith("walk") else punch
    assert abs(len(made[0]) - 2 * len(base)) <= 2  # half speed: twice the frames
    # the upper body comes from the other motion, the legs stay the base's (up to the jitter)
    legs = [motion.J["left_knee"], motion.J["right_knee"]]
    slowed = motion.retime(base, 0.5)
    leg_turn = Rotation.from_rotvec(
        made[0].pose.reshape(len(made[0]), -1, 3)[:, legs].reshape(-1, 3)
    ).inv() * Rotation.from_rotvec(slowed.pose.reshape(len(slowed), -1, 3)[: len(made[0]), legs].reshape(-1, 3))
    assert np.median(leg_turn.magnitude()) < 0.5
    with pytest.raises(InputError, match="split 'train' has no motions"):
        motion.variants([], 1, variation, 0, "train")


def knee_motion(name: str, degrees: list[float], height: float = 0.9) -> motion.Motion:
    """A motion in the zero pose but for the left knee, turned about x by `degrees` (one value a frame)."""
    pose = np.zeros((len(degrees), 72), np.float32)
    pose[:, 3 * motion.J["left_knee"]] = np.radians(degrees)
    trans = np.tile(np.array([0.5, -1.0, height], np.float32), (len(degrees), 1))
    return motion.Motion(name, pose, trans)


def test_an_interpolation_starts_at_the_two_most_different_poses():
    first = knee_motion("a", [0, 0, 90, 0, 0])
    second = knee_motion("b", [0, 0, 0, -90, 0, 0])
    distances = motion.pose_distances(first.pose, second.pose)
    assert distances.shape == (5, 6) and np.unravel_index(np.argmax(distances), distances.shape) == (2, 3)
    assert distances[2, 3] == pytest.approx(np.pi, abs=1e-5) and distances[2, 0] == pytest.approx(np.pi / 2, abs=1e-5)
    made = motion.interpolate_poses(first, second, 1.01 * np.pi / 6)
    assert len(made) == 7 and made.name == "a_to_b"  # 180 degrees in six steps of at most 30.3
    assert np.allclose(np.degrees(made.pose[[0, -1], 3 * motion.J["left_knee"]]), [90, -90], atol=1e-3)


def test_an_interpolation_turns_each_joint_on_its_shortest_arc_and_keeps_its_place():
    first = knee_motion("a", [170, 170])
    second = knee_motion("b", [-170, -170, -170], height=0.3)  # 20 degrees from the first's, through 180
    step = 1.01 * np.radians(20) / 4  # four steps of 5 degrees
    made = motion.interpolate_poses(first, second, step)
    vectors = made.pose.reshape(len(made), -1, 3)[:, motion.J["left_knee"]]
    angles = np.degrees(np.sign(vectors[:, 0]) * np.linalg.norm(vectors, axis=-1)) % 360
    # through 180 degrees, not back through 0 as the axis-angle vectors' straight line would go
    assert np.allclose(angles, [170, 175, 180, 185, 190], atol=1e-3)
    assert np.all(np.diag(motion.pose_distances(made.pose[1:], made.pose[:-1])) <= step + 1e-6)
    assert np.allclose(made.trans[:, :2], [0.5, -1.0]) and np.allclose(made.trans[[0, -1], 2], [0.9, 0.3])
    with pytest.raises(ValueError, match="step must be positive"):
        motion.interpolate_poses(first, second, 0.0)


def test_interpolations_are_seeded_and_made_of_two_of_the_splits_motions():
    walk, punch = tiny_motions()
    made = motion.interpolations([walk, punch], 2, 0.5, seed=0, split="train")
    again = motion.interpolations([walk, punch], 2, 0.5, seed=0, split="train")
    assert [m.name for m in made] == [m.name for m in again] and all(
        np.array_equal(a.pose, b.pose) for a, b in zip(made, again)
    )
    assert {made[0].name.split("_i")[0]} <= {"walk_to_punch", "punch_to_walk"}
    first, second = (walk, punch) if made[0].name.startswith("walk") else (punch, walk)
    distances = motion.pose_distances(first.pose, second.pose)
    assert len(made[0]) == int(np.ceil(distances.max() / 0.5)) + 1  # frames by distance
    with pytest.raises(InputError, match="needs two motions"):
        motion.interpolations([walk], 1, 0.5, 0, "train")


def test_motion_files_round_trip_and_resample(tmp_path):
    motions = tiny_motions()
    path = tmp_path / "motions.npz"
    motion.save_motions(path, motions)
    loaded = motion.load_motions(path)
    assert [m.name for m in loaded] == sorted(m.name for m in motions)
    fast = replace(motions[0], fps=120.0)
    assert len(motion.resample(fast)) == 4  # SURREAL: every 4th frame of 120 Hz MoSh


@pytest.mark.parametrize("content", [b"", b'{"Frames": [[1, 2, 3]]}', b"not json"])
def test_corrupt_deepmimic_file_is_named(tmp_path, content):
    path = tmp_path / "humanoid3d_broken.txt"
    path.write_bytes(content)
    with pytest.raises(motion.MotionError, match="humanoid3d_broken.txt"):
        motion.load_deepmimic(path)


def test_truncated_motion_npz_is_named(tmp_path):
    path = tmp_path / "motions.npz"
    motion.save_motions(path, tiny_motions())
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(motion.MotionError, match="motions.npz: not a readable motion file"):
        motion.load_motions(path)


# --- appearance and backgrounds -----------------------------------------------------------


def test_light_follows_surreals_sampling():
    rng = np.random.default_rng(0)
    lights = np.array([appearance.sample_light(rng, appearance.SURREAL_LIGHT) for _ in range(2000)])
    assert lights[:, 0].min() >= 0.5 and lights[:, 0].max() <= 1.4  # ambient 0.5 + 0.9 U
    assert lights[:, 1].min() >= -0.7 and lights[:, 1].max() <= 0.0  # light from above
    assert np.abs(lights[:, 2:]).max() <= 0.7


def test_a_split_may_draw_its_light_from_other_ranges():
    rng = np.random.default_rng(0)
    dim = appearance.LightRange(ambient=(0.1, 0.3), from_above=(0.8, 1.2), others=0.2)
    lights = np.array([appearance.sample_light(rng, dim) for _ in range(2000)])
    assert lights[:, 0].min() >= 0.1 and lights[:, 0].max() <= 0.3
    assert lights[:, 1].min() >= -1.2 and lights[:, 1].max() <= -0.8
    assert np.abs(lights[:, 2:]).max() <= 0.2
    # the config's ranges for the train and test splits are SURREAL's, the action and mesh clips' light
    light = yaml.safe_load((ROOT / "config.yaml").read_text())["synthesis"]["light"]
    for split in ("train", "test"):
        ranges = {key: tuple(value) if isinstance(value, list) else value for key, value in light[split].items()}
        assert appearance.LightRange(**ranges) == appearance.SURREAL_LIGHT, split
    with pytest.raises(InputError, match=r"light ambient range must be \[low, high\]"):
        appearance.LightRange(ambient=(0.9, 0.1), from_above=(0.0, 0.7), others=0.7)


def test_splits_share_no_outfit_no_shape_no_background():
    train = generate.outfit_bank(0, "train", 20)
    test = generate.outfit_bank(0, "test", 20)
    assert not {o.shirt_a for o in train} & {o.shirt_a for o in test}
    assert generate.outfit_bank(0, "train", 20) == train  # reproducible
    assert not np.isin(
        generate.shape_bank(0, "train", "female", 10), generate.shape_bank(0, "test", "female", 10)
    ).any()
    train_photos = {p.name for p in backgrounds.package_photos("train")}
    test_photos = {p.name for p in backgrounds.package_photos("test")}
    assert len(train_photos) == 29 and len(test_photos) == 8
    assert not train_photos & test_photos
    assert not (train_photos | test_photos) & backgrounds.PACKAGE_EXCLUDED


def test_the_clothing_study_dresses_the_same_clips_from_fewer_outfits():
    motions = tiny_motions()
    settings = toy_synthesis(clip_length=4, shapes=5, outfits=50)
    every = generate.plan_clips(motions, "train", 0, settings, ["female", "male"], num_backgrounds=7)
    few = generate.plan_clips(motions, "train", 0, replace(settings, outfits_used=3), ["female", "male"], 7)
    assert len(every) == len(few) > 5 and len({plan.outfit_index for plan in every}) > 3
    assert [plan.outfit_index % 3 for plan in every] == [plan.outfit_index for plan in few]
    for a, b in zip(every, few):  # all else as drawn with the whole bank
        assert (a.gender, a.shape_index, a.background_index, a.cam_dist, a.zrot, a.crop_seed) == (
            b.gender,
            b.shape_index,
            b.background_index,
            b.cam_dist,
            b.zrot,
            b.crop_seed,
        )
        assert np.array_equal(np.asarray(a.light, dtype=float), np.asarray(b.light, dtype=float))
    # the bank's first outfits are the same at any bank size
    assert generate.outfit_bank(0, "train", 50)[:3] == generate.outfit_bank(0, "train", 3)


def test_empty_background_folder_is_named(tmp_path):
    with pytest.raises(backgrounds.BackgroundError, match=f"{tmp_path}: no background images"):
        backgrounds.list_images(tmp_path)


def test_unreadable_background_is_named(tmp_path):
    path = tmp_path / "scene.jpg"
    path.write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(backgrounds.BackgroundError, match="scene.jpg: cannot read the image"):
        backgrounds.read_rgb(path)


# --- rendered clips -------------------------------------------------------------------------


def test_clips_are_written_in_surreals_layout(tiny_clips):
    root, rows, _ = tiny_clips
    assert len(rows) == 6
    clips = find_clips(root, "train")
    assert [p.name for p in clips][:3] == ["punch_c0001_info.mat", "punch_c0002_info.mat", "punch_c0003_info.mat"]
    folder = root / "cmu/train/run0/walk"
    for suffix in (
        ".mp4",
        "_info.mat",
        "_segm.mat",
        "_depth.mat",
        "_gtflow.mat",
        "_normal.mat",
        "_flow.mat",
        "_voxels.mat",
    ):
        assert (folder / f"walk_c0001{suffix}").exists(), suffix
    assert not list(root.rglob(".*tmp*"))  # no temporary left behind
    segm = scipy.io.loadmat(folder / "walk_c0001_segm.mat")
    assert sorted(k for k in segm if not k.startswith("__")) == [f"segm_{t}" for t in range(1, 9)]
    assert segm["segm_1"].dtype == np.uint8 and segm["segm_1"].shape == (240, 320)
    depth = scipy.io.loadmat(folder / "walk_c0001_depth.mat")["depth_8"]
    assert depth.dtype == np.float32 and depth.shape == (240, 320)
    assert scipy.io.loadmat(folder / "walk_c0001_gtflow.mat")["gtflow_1"].shape == (240, 320, 2)
    assert scipy.io.loadmat(folder / "walk_c0001_normal.mat")["normal_1"].shape == (240, 320, 3)


def test_info_has_surreals_fields_classes_and_shapes(tiny_clips):
    root, _, _ = tiny_clips
    info = scipy.io.loadmat(root / "cmu/train/run0/walk/walk_c0002_info.mat")
    expected = {
        "joints2D": ((2, 24, 8), np.float32),
        "joints3D": ((3, 24, 8), np.float32),
        "pose": ((72, 8), np.float32),
        "shape": ((10, 8), np.float32),
        "gender": ((8, 1), np.uint8),
        "zrot": ((8, 1), np.float32),
        "light": ((9, 8), np.float32),
        "camLoc": ((3, 1), np.float32),
        "camDist": ((1, 1), np.float32),
        "stride": ((1, 1), np.uint8),
        "clipNo": ((1, 1), np.float64),
        "bg": ((1, 8), object),
        "cloth": ((1, 8), object),
    }
    for key, (shape, dtype) in expected.items():
        assert info[key].shape == shape and info[key].dtype == dtype, key
    assert str(info["sequence"][0]) == "walk_c0002"
    assert str(info["source"][0]) == "cmu"
    assert info["clipNo"][0, 0] == 2 and info["stride"][0, 0] == 4
    assert np.all(info["gender"] == 0)  # the female model: SURREAL's 0
    assert str(info["cloth"][0, 0][0]).startswith("procedural_train_")


def test_joints2d_are_the_rounded_projection_through_surreals_camera(tiny_clips):
    root, _, _ = tiny_clips
    for path in find_clips(root, "train"):
        info = scipy.io.loadmat(path)
        joints3d = info["joints3D"].astype(np.float64).transpose(2, 1, 0)  # (T, 24, 3)
        joints2d = info["joints2D"].transpose(2, 1, 0)
        expected = np.round(surreal_projection(joints3d, info["camLoc"][:, 0].astype(np.float64)))
        assert np.array_equal(joints2d, expected), path.name
    # the camera looks at the first frame's pelvis, camDist metres away along the world's x
    first = scipy.io.loadmat(root / "cmu/train/run0/walk/walk_c0001_info.mat")
    assert np.allclose(first["joints2D"][:, 0, 0], [160, 120])
    pelvis = first["joints3D"][:, 0, 0]
    assert np.allclose(first["camLoc"][:, 0] - pelvis, [first["camDist"][0, 0], 0, 0], atol=1e-4)


def test_renders_are_mirror_images_as_in_surreal(tiny_clips):
    """BodyNet rebuilds the body as R90 Rz(zrot) R(pose[:3]); SURREAL's camera mirrors it."""
    root, _, _ = tiny_clips
    r90 = Rotation.from_euler("xyz", [np.pi / 2, np.pi / 2, 0]).as_matrix()
    rotation = CV_FLIP @ R_WORLD_TO_BLENDER_CAMERA
    for path in find_clips(root, "train"):
        info = scipy.io.loadmat(path)
        for t in range(8):
            body = (
                r90
                @ Rotation.from_euler("z", info["zrot"][t, 0]).as_matrix()
                @ Rotation.from_rotvec(info["pose"][:3, t]).as_matrix()
            )
            left = body @ [1.0, 0.0, 0.0]  # SMPL's left, the direction from the right hip to the left
            hips = rotation @ (info["joints3D"][:, J["left_hip"], t] - info["joints3D"][:, J["right_hip"], t])
            hips = np.diag([-1, 1, 1]) @ hips / np.linalg.norm(hips)
            assert np.dot(hips, left) > 0.99


def test_segmentation_is_background_exactly_where_depth_is_1e10(tiny_clips):
    root, _, _ = tiny_clips
    for path in find_clips(root, "train"):
        clip = Clip(path)
        for t in range(clip.info.frames):
            segm, depth = clip.segm(t), clip.depth(t)
            assert np.array_equal(segm == 0, depth == 1e10)
            assert 0 < (segm > 0).sum() < segm.size / 4
            assert np.all((depth[segm > 0] > 4.0) & (depth[segm > 0] < 13.0))


def _warp_error(target: np.ndarray, source: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute RGB error on `mask` between `target` and `source` sampled at p + flow(p)."""
    h, w = mask.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(source, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR)
    return float(np.abs(warped.astype(float) - target.astype(float))[mask].mean())


def test_warping_the_next_frame_by_the_true_flow_gives_this_frame(tiny_clips, record_property):
    root, _, _ = tiny_clips
    errors, baselines = [], []
    for path in find_clips(root, "train"):
        clip = Clip(path)
        for t in range(clip.info.frames - 1):
            this, following = clip.rgb(t), clip.rgb(t + 1)
            flow = clip.forward_flow(t)
            body = clip.segm(t) > 0
            moving = body & (np.hypot(flow[..., 0], flow[..., 1]) > 1.0)
            if moving.sum() < 50:
                continue
            # pixels whose surface point stays visible in the next frame
            target = np.round(np.stack(np.nonzero(moving), 1)[:, ::-1] + flow[moving]).astype(int)
            inside = (target[:, 0] >= 0) & (target[:, 0] < 320) & (target[:, 1] >= 0) & (target[:, 1] < 240)
            visible = np.zeros_like(moving)
            rows, cols = np.nonzero(moving)
            next_segm = clip.segm(t + 1)
            visible[rows[inside], cols[inside]] = (
                next_segm[target[inside, 1], target[inside, 0]] == clip.segm(t)[rows[inside], cols[inside]]
            )
            errors.append(_warp_error(this, following, flow, visible))
            baselines.append(_warp_error(this, following, np.zeros_like(flow), visible))
    error, baseline = float(np.mean(errors)), float(np.mean(baselines))
    record_property("flow_warp_error_rgb", error)
    print(f"forward-flow warp error {error:.2f} grey levels on body pixels (no warp: {baseline:.2f})")
    assert error < 0.5 * baseline
    assert error < 12.0


def test_surreal_gtflow_points_to_the_previous_frame(tiny_clips):
    root, _, _ = tiny_clips
    clip = Clip(root / "cmu/train/run0/walk/walk_c0001_info.mat")
    errors, baselines = [], []
    for t in range(1, clip.info.frames):
        backward = clip.backward_flow(t)
        body = (clip.segm(t) > 0) & (np.hypot(backward[..., 0], backward[..., 1]) > 1.0)
        if body.sum() < 50:
            continue
        errors.append(_warp_error(clip.rgb(t), clip.rgb(t - 1), backward, body))
        baselines.append(_warp_error(clip.rgb(t), clip.rgb(t - 1), np.zeros_like(backward), body))
    assert np.mean(errors) < 0.7 * np.mean(baselines)
    assert np.all(clip.surreal_gtflow(0) == 0)  # nothing before the first frame


def test_normals_are_unit_vectors_on_the_body(tiny_clips):
    root, _, _ = tiny_clips
    clip = Clip(root / "cmu/train/run0/punch/punch_c0002_info.mat")
    normals, body = clip.normal(3), clip.segm(3) > 0
    assert np.allclose(np.linalg.norm(normals[body], axis=-1), 1.0, atol=1e-3)
    assert np.all(normals[~body] == 0)


def test_voxels_fit_the_silhouette(tiny_clips, record_property):
    """Voxels placed under the silhouette box, as BodyNet's loader does, cover the silhouette."""
    root, _, _ = tiny_clips
    clip = Clip(root / "cmu/train/run0/walk/walk_c0002_info.mat")
    for t in (0, 7):
        voxels = clip.voxels(t)
        assert max(voxels.shape) == 32 and voxels.any()
        rows, cols = np.nonzero(clip.segm(t) > 0)
        side = max(np.ptp(rows), np.ptp(cols)) + 1
        square = np.zeros((side, side), np.uint8)
        square[: np.ptp(rows) + 1, : np.ptp(cols) + 1] = (clip.segm(t) > 0)[
            rows.min() : rows.max() + 1, cols.min() : cols.max() + 1
        ]
        silhouette = cv2.resize(square, (32, 32), interpolation=cv2.INTER_AREA) > 0
        box = silhouette_box(silhouette)
        iou = {}
        for name, grid in (("aligned", voxels), ("mirrored", voxels[:, :, ::-1])):
            front = align_to_box(grid, box, 32).max(axis=0)
            iou[name] = (front & silhouette).sum() / (front | silhouette).sum()
        record_property(f"voxel_silhouette_iou_{t}", float(iou["aligned"]))
        # at 32³ every voxel the surface touches fattens the body by up to a voxel
        assert iou["aligned"] > 0.6 and iou["aligned"] > iou["mirrored"] + 0.15, iou


def test_same_seed_gives_byte_identical_mat_files(tiny_clips, tmp_path):
    root, _, model_path = tiny_clips
    render_tiny(tmp_path, model_path)
    first = sorted(p.relative_to(root) for p in root.rglob("*.mat"))
    again = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.mat"))
    assert first == again and len(first) == 6 * 8  # info, five passes, voxels and part voxels
    for relative in first:
        assert (root / relative).read_bytes() == (tmp_path / relative).read_bytes(), relative


def test_another_seed_gives_other_clips(tiny_clips, tmp_path):
    root, _, model_path = tiny_clips
    render_tiny(tmp_path, model_path, seed=1)
    name = "cmu/train/run0/walk/walk_c0001_info.mat"
    assert (root / name).read_bytes() != (tmp_path / name).read_bytes()


def test_a_killed_clip_is_rendered_again(tiny_clips, tmp_path):
    root, rows, model_path = tiny_clips
    render_tiny(tmp_path, model_path)
    info = tmp_path / "cmu/train/run0/walk/walk_c0002_info.mat"
    info.unlink()  # as if the job died before the clip's last file landed
    (tmp_path / "cmu/train/run0/walk/walk_c0002_segm.mat").write_bytes(b"half")
    render_tiny(tmp_path, model_path)
    assert info.read_bytes() == (root / "cmu/train/run0/walk/walk_c0002_info.mat").read_bytes()
    assert scipy.io.loadmat(tmp_path / "cmu/train/run0/walk/walk_c0002_segm.mat")["segm_1"].shape == (240, 320)


def test_the_clips_play_as_an_animated_picture_of_rgb_parts_and_depth(tiny_clips, tmp_path):
    from PIL import Image

    from pipeline.synthesis.sheet import clip_animation

    root, _, _ = tiny_clips
    clips = [Clip(path) for path in find_clips(root, "train")[:2]]
    assert clip_animation(clips, tmp_path / "clips.png") == 8
    with Image.open(tmp_path / "clips.png") as animation:
        assert animation.is_animated and animation.n_frames == 8 and animation.size == (480, 240)
        animation.seek(5)
        frame = np.asarray(animation.convert("RGB"))
    person = cv2.resize((clips[1].segm(5) > 0).astype(np.uint8), (160, 120), interpolation=cv2.INTER_NEAREST) > 0
    parts, depth = frame[120:, 160:320], frame[120:, 320:]  # the second clip's row, frame 6
    for panel in (parts, depth):
        coloured = panel.max(axis=2) > 20
        assert (coloured == person).mean() > 0.97  # the body coloured, the rest black
    rgb = cv2.resize(clips[1].rgb(5), (160, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(frame[120:, :160].astype(int) - rgb).mean() < 3


def test_part_voxels_label_each_voxel_by_the_part_nearest_it():
    import trimesh

    from pipeline.synthesis.voxels import voxelize

    low, high = trimesh.creation.box(extents=(1.0, 1.0, 1.0)), trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    high.apply_translation((0.0, -2.0, 0.0))  # above (y down), a gap between them
    vertices = np.concatenate([low.vertices, high.vertices])
    faces = np.concatenate([low.faces, high.faces + len(low.vertices)])
    labels = np.repeat([5, 1], len(low.vertices)).astype(np.uint8)
    parts = voxelize(vertices, faces, 24, labels)
    occupancy = voxelize(vertices, faces, 24)
    assert np.array_equal(parts > 0, occupancy)  # the same voxels, labelled
    rows = np.nonzero(parts)[1]  # (z, y, x): y counts down the image
    assert set(parts[parts > 0].tolist()) == {1, 5}
    assert rows[parts[parts > 0] == 1].max() < rows[parts[parts > 0] == 5].min()  # the upper box all 1, the lower all 5
