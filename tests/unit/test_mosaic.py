"""Rogez & Schmid's image-based synthesis: the alignment and distance of Eqs. 2–3, the
Delaunay probability maps, the index map, the pose-aware blend and the query views."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.body_model.skeleton import BODYNET_BONES
from pipeline.errors import InputError
from pipeline.mosaic.classify import PoseClasses, errors_mm, references, torso_centred
from pipeline.mosaic.dataset import distinct_poses, training_set
from pipeline.mosaic.engine import (
    MosaicSettings,
    Pool,
    anchor_joint,
    apply,
    barycentric,
    blend_weights,
    joint_weights,
    match_distances,
    probability_map,
    self_occluded,
    synthesise,
)
from pipeline.mosaic.views import query_pose, turned
from pipeline.training.samples import SampleSet

SIZE = 48
SETTINGS = MosaicSettings(sigma=6.0, alpha=2.0, beta=0.25, blend=True)


def standing(size: int = SIZE) -> np.ndarray:
    """(16, 2) a person standing in a crop of side `size` (BodyNet's joint order)."""
    x = np.array([20, 21, 21, 27, 27, 28, 24, 24, 24, 24, 14, 17, 20, 28, 31, 34], float)
    y = np.array([44, 35, 26, 26, 35, 44, 26, 12, 9, 5, 22, 17, 12, 12, 17, 22], float)
    return np.stack([x, y], -1) * size / 48


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def test_a_joints_weights_fall_as_the_inverse_of_its_distance():
    pose = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    # distances 1 and 2 from joint 0: weights 1 and 1/2, normalised; the joint itself none
    np.testing.assert_allclose(joint_weights(pose, 0), [0.0, 2 / 3, 1 / 3])


def test_the_anchor_is_the_farthest_directly_connected_joint():
    pose = standing()
    # the right hip (2) connects to the right knee (1, 9 px away) and the pelvis (6, 3 px)
    assert anchor_joint(pose, 2) == 1
    assert anchor_joint(pose, 7) in {joint for bone in BODYNET_BONES if 7 in bone for joint in bone}


def test_a_turned_and_shifted_copy_of_the_query_aligns_onto_it_at_every_joint():
    query = standing()
    moved = query @ rotation(0.7).T + [5.0, -3.0]
    other = query.copy()
    other[10] += [6.0, 0.0]  # the right wrist elsewhere
    pool = np.stack([other, moved])
    for joint in range(16):
        distances, transforms = match_distances(query, pool, joint)
        assert distances[1] == pytest.approx(0.0, abs=1e-9) and distances[0] > 0
        np.testing.assert_allclose(apply(transforms[1], moved), query, atol=1e-9)
        assert apply(transforms[0], other)[joint] == pytest.approx(query[joint])  # joint j lands on the query's


def test_eq_3_weighs_each_joints_distance_by_both_poses_weights():
    query = standing()
    other = query.copy()
    other[15] += [0.0, 4.0]  # the left wrist 4 px lower: aligned at the pelvis, only it is off
    joint = 6
    (distance,), (transform,) = match_distances(query, other[None], joint)
    np.testing.assert_allclose(transform[:, :2], np.eye(2), atol=1e-12)  # the pelvis' anchor did not move
    expected = (joint_weights(query, joint)[15] + joint_weights(other, joint)[15]) * 4.0
    assert distance == pytest.approx(expected)


def test_delaunay_interpolation_is_exact_for_planes_and_at_its_vertices():
    rng = np.random.default_rng(0)
    vertices = np.concatenate([rng.uniform(5, 40, (12, 2)), [[-1, -1], [SIZE, -1], [-1, SIZE], [SIZE, SIZE]]])
    plane = 0.3 * vertices[:, 0] - 0.1 * vertices[:, 1] + 2.0
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    np.testing.assert_allclose(barycentric(vertices, plane, SIZE), 0.3 * x - 0.1 * y + 2.0, atol=1e-9)
    ones = barycentric(vertices, np.ones(len(vertices)), SIZE)
    np.testing.assert_allclose(ones, 1.0)  # the barycentric weights sum to one everywhere
    corner = np.round(vertices[0]).astype(int)
    values = rng.uniform(0, 1, len(vertices))
    found = barycentric(np.concatenate([[corner.astype(float)], vertices[1:]]), values, SIZE)
    assert found[corner[1], corner[0]] == pytest.approx(values[0])


def test_a_candidates_probability_covers_the_image_and_peaks_where_it_matches():
    query = standing()
    aligned = query.copy()
    aligned[:6] += [0.0, -8.0]  # its legs 8 px off
    probability = probability_map(aligned, query, SIZE, sigma=6.0)
    assert probability.shape == (SIZE, SIZE) and (probability > 0).all() and (probability <= 1 + 1e-9).all()
    head, ankle = np.round(query[9]).astype(int), np.round(aligned[0]).astype(int)
    assert probability[head[1], head[0]] == pytest.approx(1.0)
    assert probability[ankle[1], ankle[0]] == pytest.approx(np.exp(-(8.0**2) / 36.0))


def test_blend_weights_are_each_candidates_share_of_the_window_and_sum_to_one():
    index = np.zeros((SIZE, SIZE), int)
    index[:, SIZE // 2 :] = 1
    weights = blend_weights(index, 2, np.full((SIZE, SIZE), 5.0))
    np.testing.assert_allclose(weights.sum(0), 1.0)
    row = SIZE // 2
    assert weights[1, row, SIZE // 2 - 1] == pytest.approx(2 / 5)  # 2 of the window's 5 columns lie right
    assert weights[0, row, 0] == 1.0 and weights[1, row, -1] == 1.0
    np.testing.assert_array_equal(blend_weights(index, 2, np.ones((SIZE, SIZE))).argmax(0), index)


def pool_with(image: np.ndarray, pose: np.ndarray, rng: np.random.Generator) -> Pool:
    """A pool of noise images with jittered poses, and `image` with its own pose among them."""
    others = rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    poses = pose[None] + rng.normal(0, 3.0, (5, 16, 2))
    return Pool.of(
        np.concatenate([others[:2], image[None], others[2:]]), np.concatenate([poses[:2], [pose], poses[2:]])
    )


@pytest.mark.parametrize("blend", [True, False])
def test_a_pool_holding_the_querys_own_image_gives_it_back(blend):
    rng = np.random.default_rng(1)
    pose = standing()
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    pool = pool_with(image, pose, rng)
    visible = np.ones(16, bool)
    visible[3] = False  # a hidden joint is not searched
    mosaic = synthesise(pose, visible, pool, MosaicSettings(6.0, 2.0, 0.25, blend))
    assert list(mosaic.joints) == [j for j in range(16) if j != 3] and set(mosaic.sources) == {2}
    np.testing.assert_array_equal(mosaic.image, image)
    assert mosaic.probabilities.shape == (15, SIZE, SIZE) and mosaic.index.shape == (SIZE, SIZE)


def test_each_joint_takes_the_pool_image_that_matches_it_and_the_index_map_covers_its_body():
    rng = np.random.default_rng(2)
    pose = standing()
    legs, arms = pose.copy(), pose.copy()
    legs[10:] += rng.normal(0, 6, (6, 2))  # right legs, wrong arms
    arms[:6] += rng.normal(0, 6, (6, 2))  # right arms, wrong legs
    images = np.stack([np.full((SIZE, SIZE, 3), 40, np.uint8), np.full((SIZE, SIZE, 3), 200, np.uint8)])
    mosaic = synthesise(pose, np.ones(16, bool), Pool.of(images, np.stack([legs, arms])), SETTINGS)
    chosen = dict(zip(mosaic.joints, mosaic.sources))
    assert all(chosen[j] == 0 for j in (0, 1, 4, 5)) and all(chosen[j] == 1 for j in (10, 11, 14, 15))
    ankle, wrist = np.round(pose[0]).astype(int), np.round(pose[15]).astype(int)
    assert mosaic.sources[mosaic.index[ankle[1], ankle[0]]] == 0 and mosaic.image[ankle[1], ankle[0], 0] == 40
    assert mosaic.sources[mosaic.index[wrist[1], wrist[0]]] == 1 and mosaic.image[wrist[1], wrist[0], 0] == 200


def test_a_joint_behind_a_bone_is_hidden_and_one_in_front_is_not():
    joints = np.zeros((16, 3))
    joints[:, 0] = np.arange(16) * 10.0  # spread along x, all at depth 0
    joints[12], joints[11] = [0.0, -20.0, 0.0], [0.0, 20.0, 0.0]  # a bone 12–11 across x = 0 ...
    joints[0] = [0.0, 0.0, 5.0]  # ... with the right ankle just behind it
    assert self_occluded(joints, radius=2.0)[0]
    joints[0, 2] = -5.0  # in front
    assert not self_occluded(joints, radius=2.0)[0]


def test_query_views_turn_about_the_torso_and_are_drawn_from_the_seed():
    rng = np.random.default_rng(3)
    joints = np.concatenate([standing(1.6) / 30.0, np.zeros((16, 1))], axis=-1)  # metres, facing the camera
    np.testing.assert_allclose(
        np.linalg.norm(turned(joints, 1.0, 0.3), axis=-1), np.linalg.norm(turned(joints, 0, 0), axis=-1)
    )
    first, again = (
        query_pose(joints, np.random.default_rng(4), SIZE),
        query_pose(joints, np.random.default_rng(4), SIZE),
    )
    np.testing.assert_array_equal(first.pixels, again.pixels)
    views = [query_pose(joints, rng, SIZE) for _ in range(20)]
    extents = np.array([v.pixels.max(0) - v.pixels.min(0) for v in views])
    assert (extents.max(1) > 0.5 * SIZE).all() and all(v.visible.sum() >= 8 for v in views)


def test_k_means_classes_are_the_same_for_a_seed_and_each_pose_joins_its_nearest():
    rng = np.random.default_rng(5)
    poses = rng.normal(0, 0.2, (60, 16, 3))
    first, again = PoseClasses.fit(poses, 5, seed=3), PoseClasses.fit(poses, 5, seed=3)
    np.testing.assert_array_equal(first.centres, again.centres)
    labels = first.assign(poses)
    assert (first.distances(poses)[np.arange(60), labels] == first.distances(poses).min(1)).all()
    with pytest.raises(ValueError, match="classes"):
        PoseClasses.fit(poses, 61, seed=3)


def test_a_mosaic_is_never_cut_from_the_querys_own_group():
    rng = np.random.default_rng(6)
    pose = standing()
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    own = pool_with(image, pose, rng)
    pool = Pool.of(own.images, own.poses, groups=np.array([0, 1, 7, 2, 3, 4]))
    assert set(synthesise(pose, np.ones(16, bool), pool, SETTINGS).sources) == {2}  # its own image, when allowed
    assert 2 not in synthesise(pose, np.ones(16, bool), pool, SETTINGS, group=7).sources
    with pytest.raises(ValueError, match="group"):
        synthesise(pose, np.ones(16, bool), Pool.of(own.images, own.poses, np.zeros(6, int)), SETTINGS, group=0)


def toy_samples(count: int, rng: np.random.Generator, side: int = 16) -> SampleSet:
    """Prepared samples as the study reads them: crops, 3D joints in the camera frame, clips."""
    joints = rng.normal(0, 0.3, (count, 16, 3)) + [0.0, 0.0, 5.0]
    arrays = {
        "rgb": rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8),
        "joints_camera": joints.astype(np.float32),
        "clip": np.arange(count) // 2,
    }
    return SampleSet(arrays)


def toy_mosaics(real: SampleSet, rows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    images = rng.integers(0, 256, (len(rows), *real.arrays["rgb"].shape[1:]), dtype=np.uint8)
    return {"images": images, "rows": rows, "joints3d": torso_centred(real.arrays["joints_camera"][rows].astype(float))}


def test_every_source_shows_the_mosaics_poses_and_a_share_is_the_same_poses_for_each():
    rng = np.random.default_rng(7)
    real = toy_samples(20, rng)
    surreal = SampleSet({**real.arrays, "rgb": 255 - real.arrays["rgb"]})  # the same clips, another look
    rows = np.array([1, 4, 5, 8, 9, 12, 15, 19])
    sets = {"mosaic": toy_mosaics(real, rows, rng), "unblended": toy_mosaics(real, rows, rng)}
    found = training_set(["real", "mosaic", "surreal", "unblended"], sets, real, 16, surreal=surreal)
    assert len(found["images"]) == 4 * len(rows) and len(found["poses"]) == len(rows)
    np.testing.assert_array_equal(found["images"][: len(rows)], real.arrays["rgb"][rows])
    np.testing.assert_array_equal(found["images"][len(rows) : 2 * len(rows)], sets["mosaic"]["images"])
    np.testing.assert_array_equal(found["images"][2 * len(rows) : 3 * len(rows)], surreal.arrays["rgb"][rows])
    np.testing.assert_allclose(found["joints3d"], np.concatenate([found["poses"]] * 4))
    half = training_set(["mosaic", "real"], sets, real, 16, percent=50, seed=3)
    quarter = training_set(["mosaic"], sets, real, 16, percent=25, seed=3)
    assert len(half["poses"]) == 4 and len(quarter["poses"]) == 2
    # the real half shows the mosaic half's poses, and a smaller share is within a larger one
    np.testing.assert_allclose(half["joints3d"][:4], half["joints3d"][4:])
    assert all(any(np.allclose(pose, other) for other in half["poses"]) for pose in quarter["poses"])
    shifted = SampleSet({**real.arrays, "joints_camera": real.arrays["joints_camera"] + np.float32(0.01)})
    shifted.arrays["joints_camera"][:, 0] += np.float32(0.05)  # the right ankle elsewhere: another pose
    with pytest.raises(InputError, match="surreal"):
        training_set(["surreal"], sets, real, 16, surreal=shifted)
    with pytest.raises(InputError, match="other poses"):
        training_set(["real"], sets, shifted, 16)
    with pytest.raises(InputError, match="at most once"):
        training_set(["real", "real"], sets, real, 16)
    turned = {"random": {**toy_mosaics(real, rows, rng), "joints3d": sets["mosaic"]["joints3d"][:, ::-1]}}
    assert len(training_set(["random"], turned, real, 16)["poses"]) == len(rows)  # its own poses
    with pytest.raises(InputError, match="random"):  # other views than the real crops': no mix
        training_set(["real", "random"], sets | turned, real, 16)


def test_poses_are_thinned_to_those_apart_at_some_joint():
    poses = np.zeros((5, 16, 3))
    poses[1, 3, 0] = 0.02  # 2 cm from the first at one joint: dropped
    poses[2, 3, 0] = 0.06  # 6 cm: kept
    poses[3, :, 1] = 0.03  # 3 cm at every joint: dropped
    poses[4, 0, 2] = 0.07
    np.testing.assert_array_equal(distinct_poses(poses, 0.05), [0, 2, 4])


def test_the_references_are_the_mean_pose_and_the_nearest_class():
    rng = np.random.default_rng(8)
    poses = torso_centred(rng.normal(0, 0.2, (40, 16, 3)))
    classes = PoseClasses.fit(poses, 4, seed=0)
    truth = torso_centred(rng.normal(0, 0.2, (10, 16, 3)))
    rows = references(classes, poses.mean(0), truth)
    np.testing.assert_allclose(rows["oracle"]["joint_error_mm"], 1000 * classes.distances(truth).min(1))
    assert (rows["oracle"]["class_accuracy"] == 1).all()
    np.testing.assert_allclose(
        rows["constant"]["joint_error_mm"], errors_mm(np.broadcast_to(poses.mean(0), truth.shape), truth)
    )
    assert (rows["constant"]["pa_joint_error_mm"] <= rows["constant"]["joint_error_mm"] + 1e-9).all()


def test_the_cli_makes_mosaics_of_the_crops_poses_and_trains_and_measures_the_classifier(
    tiny_clips, tmp_path, tracking_env
):
    from pipeline.datasets.surreal import SampleSizes, VoxelSource
    from pipeline.mosaic.__main__ import main
    from pipeline.training.samples import prepare

    root, _, _ = tiny_clips
    samples = tmp_path / "samples"
    prepare(root, "train", SampleSizes(input=64, heatmap=16, voxels=32), "all", VoxelSource(), samples, progress=False)
    made = tmp_path / "mosaics"
    engine = [
        "--sigma",
        "4",
        "--alpha",
        "1",
        "--beta",
        "0.25",
        "--blend",
        "--views",
        "own",
        "--seed",
        "0",
        "--out",
        str(made),
    ]
    main(["make", "--pool", str(samples), "--poses", str(samples), "--count", "6", "--size", "32", "--pool-images", "8"]
         + engine)  # fmt: skip
    arrays = {name: np.load(made / f"{name}.npy") for name in ("images", "joints3d", "joints2d", "visible", "rows")}
    assert arrays["images"].shape == (6, 32, 32, 3) and arrays["joints3d"].shape == (6, 16, 3)
    np.testing.assert_allclose(arrays["joints3d"][:, [2, 3, 12, 13]].mean(1), 0, atol=1e-9)  # torso-centred
    real = SampleSet.load(samples)
    shown = torso_centred(real.arrays["joints_camera"][arrays["rows"]].astype(float))
    np.testing.assert_allclose(arrays["joints3d"], shown)  # each mosaic shows its crop's pose
    assert (made / "sheet.png").exists()
    from pipeline.mosaic.__main__ import build_parser, drawn_pool
    from pipeline.mosaic.dataset import own_view_mosaic, save_arrays
    from pipeline.mosaic.pools import POOL_ARRAYS

    # the sheet makes a mosaic again from the same pool: the very image `make` stored
    command = ["make", "--pool", str(samples), "--poses", str(samples), "--count", "6", "--size", "32"]
    made_args = build_parser().parse_args([*command, "--pool-images", "8", *engine])
    again_made = own_view_mosaic(
        drawn_pool(made_args), real, int(arrays["rows"][2]), MosaicSettings(4.0, 1.0, 0.25, True), True
    )[0]
    np.testing.assert_array_equal(again_made.image, arrays["images"][2])
    main(["make", "--pool", str(samples), "--poses", str(samples), "--count", "6", "--size", "32",
          "--pool-images", "8", *engine[:6], "--no-blend", *engine[7:-1], str(tmp_path / "unblended")])  # fmt: skip
    main(["sheet", "--mosaics", str(made), "--unblended", str(tmp_path / "unblended"), "--real", str(samples),
          "--surreal", str(samples), "--pool", str(samples), "--pool-images", "8", "--size", "32", *engine[:6],
          "--seed", "0", "--shown", "2", "--out", str(tmp_path / "sheet.png")])  # fmt: skip
    assert (tmp_path / "sheet.png").stat().st_size > 0

    save_arrays(
        {"images": arrays["images"], "joints": arrays["joints2d"]}, tmp_path / "pool", POOL_ARRAYS
    )  # a real pool stands in
    again = ["make", "--pool", str(tmp_path / "pool"), "--poses", str(samples), "--count", "2", "--size", "32"]
    main([*again, "--pool-images", "8", *engine[:-1], str(tmp_path / "from_pool")])
    assert np.load(tmp_path / "from_pool/images.npy").shape == (2, 32, 32, 3)
    main(["make", "--pool", str(samples), "--poses", str(samples), "--count", "3", "--size", "32", "--pool-images", "8",
          *engine[:7], "--views", "random", "--spacing", "0.05", *engine[9:-1], str(tmp_path / "random")])  # fmt: skip
    turned = {name: np.load(tmp_path / f"random/{name}.npy") for name in ("joints3d", "rows")}
    upright = torso_centred(real.arrays["joints_camera"][turned["rows"]].astype(float))
    np.testing.assert_allclose(  # each a training pose, turned about the torso: its bones keep their lengths
        np.linalg.norm(turned["joints3d"][:, 1] - turned["joints3d"][:, 0], axis=-1),
        np.linalg.norm(upright[:, 1] - upright[:, 0], axis=-1),
    )
    study = ["--mosaics", str(made), "--real", str(samples), "--val", str(samples), "--size", "32", "--seed", "0"]
    network = ["--width", "0.125", "--iterations", "2", "--batch-size", "4", "--learning-rate", "1e-3", *study]
    main(["train", "--sources", "real+mosaic", "--percent", "100", "--head", "classification", "--classes", "3",
          *network, "--out", str(tmp_path / "classifier")])  # fmt: skip
    summary = json.loads((tmp_path / "classifier/summary.json").read_text())
    assert summary["train_images"] == 12 and summary["poses"] == 6
    measures = summary["measures"]
    # the answer is the top class's mean: no better than the best of the top five, nor that than the nearest class
    assert measures["joint_error_mm_lower_bound"] <= measures["joint_error_mm_top5"] <= measures["joint_error_mm"]
    main(["references", "--classes", "3", *study, "--out", str(tmp_path / "reference")])
    oracle = json.loads((tmp_path / "reference/oracle/summary.json").read_text())["measures"]
    assert oracle["joint_error_mm"] == pytest.approx(measures["joint_error_mm_lower_bound"], rel=1e-4)
    images = pd.read_csv(tmp_path / "reference/constant/images.csv")
    assert len(images) == len(np.load(samples / "rgb.npy", mmap_mode="r")) and (images["joint_error_mm"] > 0).all()
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--sources", "surreal", "--percent", "100", "--head", "regression", "--classes", "3",
              *network, "--out", str(tmp_path / "other")])  # fmt: skip
    assert stopped.value.code != 0
    assert not (tmp_path / "other").exists()  # no --surreal given: refused, nothing written


def test_an_lsp_archive_becomes_a_pool_of_crops_with_bodynets_joints(tmp_path):
    from scipy.io import savemat

    from pipeline.mosaic.dataset import save_arrays
    from pipeline.mosaic.pools import LSP_TO_BODYNET, POOL_ARRAYS, bodynet_joints, is_pool, load_pool, lsp_pool

    rng = np.random.default_rng(9)
    lsp = np.stack([standing()[[k for k in LSP_TO_BODYNET if k is not None]]] * 3) * 3 + [40.0, 20.0]
    lsp[1] += rng.normal(0, 2, (14, 2))
    (tmp_path / "lsp_dataset/images").mkdir(parents=True)
    joints = np.zeros((3, 14, 3))  # x, y, a flag: LSP's 3 × 14 × N
    joints[:2] = lsp.transpose(2, 1, 0)
    savemat(tmp_path / "lsp_dataset/joints.mat", {"joints": joints})
    for k in range(3):
        image = np.zeros((240, 220, 3), np.uint8)
        ankle = np.round(lsp[k, 0]).astype(int)
        image[ankle[1] - 2 : ankle[1] + 3, ankle[0] - 2 : ankle[0] + 3] = [255, 0, 0]  # red at the right ankle
        cv2.imwrite(str(tmp_path / f"lsp_dataset/images/im{k + 1:04d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    pool = lsp_pool(tmp_path, 32, progress=False)
    assert pool["images"].shape == (3, 32, 32, 3) and pool["joints"].shape == (3, 16, 2)
    np.testing.assert_allclose(bodynet_joints(lsp)[:, 6], lsp[:, [2, 3]].mean(1))  # the pelvis, the hips' mean
    ankle = np.round(pool["joints"][0, 0]).astype(int)
    assert pool["images"][0, ankle[1], ankle[0], 0] > 100  # the joint lands on its mark in the crop
    assert (pool["joints"] >= 0).all() and (pool["joints"] < 32).all()
    save_arrays(pool, tmp_path / "pool", POOL_ARRAYS)
    assert is_pool(tmp_path / "pool") and load_pool(tmp_path / "pool")["joints"].shape == (3, 16, 2)
    (tmp_path / "lsp_dataset/images/im0003.jpg").unlink()
    with pytest.raises(InputError, match="2 images for 3"):
        lsp_pool(tmp_path, 32, progress=False)


def test_the_sources_are_named_alike_in_the_package_the_tables_and_the_rules():
    import re
    from pathlib import Path

    from pipeline.evaluation.tables import MOSAIC_SOURCE_LABELS
    from pipeline.mosaic.__main__ import MOSAIC_SETS
    from pipeline.mosaic.dataset import SOURCES

    helpers = (Path(__file__).parents[2] / "workflow/rules/helpers/mosaic.smk").read_text()
    assert re.search(r'^MOSAIC_SOURCE = "([^"]+)"', helpers, re.M)[1].split("|") == list(SOURCES)
    assert tuple(MOSAIC_SOURCE_LABELS) == SOURCES and set(MOSAIC_SETS) < set(SOURCES)


def test_no_pose_classifiers_folder_lies_inside_another_rows():
    """A classifier's job writes its folder whole (aside, then renamed over the old one): a
    row's folder inside it would be lost each time it is written."""
    from pipeline.evaluation.tables import TABLES

    folders = {row.evaluation for table in TABLES.values() for row in table.rows}
    written_whole = {folder for folder in folders if folder.startswith("mosaic/")}
    assert not [(a, b) for a in written_whole for b in folders if b.startswith(a + "/")]
