"""Action recognition: synchronised views, disjoint splits, the LTC network, its training and
the tables' verdicts, at toy sizes."""

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch

from pipeline.actions import dataset, tables
from pipeline.actions.inputs import ActionSet, evaluation_windows
from pipeline.actions.network import LTC, pooled_shape
from pipeline.actions.train import LTCSettings, late_fusion, train, training_step, video_results, view_training
from pipeline.body_model.model import BodyModel, check_model_arrays
from pipeline.clips import read_info
from pipeline.errors import InputError
from pipeline.synthesis import camera, generate
from pipeline.synthesis.backgrounds import package_photos
from synthetic_clips import ACTION_SETTINGS
from toy_models import toy_arrays

SETTINGS = replace(ACTION_SETTINGS, frames=5, width=48, height=36, focal=90.0)  # quicker to render


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("actions")
    models = {"female": BodyModel(check_model_arrays(toy_arrays(), "toy.pkl"))}
    manifest = dataset.render_split("train", SETTINGS, models, package_photos("train")[:3], root, progress=False)
    return root, manifest


def test_views_of_a_performance_are_synchronised_and_seen_from_their_azimuths(rendered):
    root, manifest = rendered
    assert len(manifest) == 2 * 3 and sorted(set(manifest["view"])) == [1, 2, 3]
    for _, views in manifest.groupby("performance"):
        infos = [read_info(root / path) for path in views["info"]]
        cameras = [
            scipy.io.loadmat((root / path).with_name(path.split("/")[-1].replace("_info", "_camera")))
            for path in views["info"]
        ]
        for info, cam in zip(infos, cameras):
            # the same world joints at every frame, whichever camera saw them
            assert np.allclose(info.joints3d, infos[0].joints3d, atol=1e-5)
            pixels = camera.project_through(info.joints3d, cam["rotation"], cam["translation"][:, 0], cam["intrinsics"])
            assert np.abs(np.round(pixels) - info.joints2d).max() <= 1.0
        assert infos[0].frames == SETTINGS.frames
        # the cameras stand around the person at the stated angles, all at one distance
        target = infos[0].joints3d[:, 0].mean(axis=0)
        offsets = [(info.cam_loc - target)[[0, 2]] for info in infos]
        assert np.allclose([np.linalg.norm(o) for o in offsets], views["cam_dist"].iloc[0], atol=1e-3)
        angle = lambda a, b: np.degrees(np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))  # noqa: E731
        assert angle(offsets[0], offsets[1]) == pytest.approx(45.0, abs=0.1)
        assert angle(offsets[0], offsets[2]) == pytest.approx(90.0, abs=0.1)
        assert not np.allclose(infos[0].joints2d, infos[2].joints2d)


def test_each_view_stores_its_camera_and_readers_use_it(rendered):
    from pipeline.datasets.frames import SurrealFrames
    from pipeline.datasets.surreal import usable

    root, manifest = rendered
    k = camera.intrinsics(SETTINGS.width, SETTINGS.height, SETTINGS.focal)
    frames = SurrealFrames(root, "train", passes=("segm",))
    assert len(frames) == len(manifest) * SETTINGS.frames
    for item in range(0, len(frames), SETTINGS.frames):
        frame = frames[item]
        assert np.allclose(frame["camera_matrix"], k)
        rotation, translation = frame["camera_extrinsics"][:, :3], frame["camera_extrinsics"][:, 3]
        pixels = camera.project_through(frame["joints3d"], rotation, translation, frame["camera_matrix"])
        assert np.abs(pixels - frame["joints2d"]).max() <= 0.5 + 1e-2  # joints2D are rounded pixels
    info = read_info(root / manifest["info"].iloc[1])
    assert info.image_size == (SETTINGS.width, SETTINGS.height)
    assert np.abs(info.project(info.joints3d) - info.joints2d).max() <= 0.5 + 1e-3
    inside = info.joints2d[0].copy()
    inside[:] = [SETTINGS.width + 10, 10]  # right of this small image, inside SURREAL's 320×240
    assert not usable(replace(info, joints2d=inside[None]), 0)


def test_the_first_view_faces_the_person():
    # SMPL's body frame: x left, y up, z forward; a body facing +x in SURREAL's world (y down)
    joints = np.zeros((24, 3))
    joints[dataset.LEFT_HIP], joints[dataset.RIGHT_HIP] = [0, 0, 0.1], [0, 0, -0.1]  # left = up × forward
    assert np.allclose(dataset.facing(joints), [1.0, 0.0, 0.0])
    assert np.allclose(dataset.turn_about_vertical(np.array([1.0, 0, 0]), 90.0), [0.0, 0.0, -1.0], atol=1e-12)
    location, rotation, translation = camera.orbit_extrinsics(np.zeros(3), np.array([1.0, 0, 0]), 8.0)
    canonical = camera.extrinsics(location)
    assert np.allclose(rotation, canonical[0]) and np.allclose(translation, canonical[1])


def test_labels_are_the_actions_order_and_splits_share_no_person_outfit_background_or_performance(rendered):
    _, manifest = rendered
    assert dict(zip(manifest["action"], manifest["label"])) == {"walk": 0, "punch": 1}
    genders = ["female", "male"]
    plans = {split: dataset.plan_performances(SETTINGS, split, genders, 4) for split in ("train", "test")}
    assert not {p.name for p in plans["train"]} & {p.name for p in plans["test"]}
    assert repr(plans["train"]) == repr(dataset.plan_performances(SETTINGS, "train", genders, 4))  # seeded
    for gender in genders:
        banks = [generate.shape_bank(SETTINGS.seed, split, gender, SETTINGS.shapes) for split in ("train", "test")]
        assert not np.isclose(banks[0][:, None], banks[1][None]).all(-1).any()
    outfits = [{o.name for o in generate.outfit_bank(SETTINGS.seed, s, SETTINGS.outfits)} for s in ("train", "test")]
    assert not outfits[0] & outfits[1]
    assert not set(package_photos("train")) & set(package_photos("test"))


def test_a_take_has_the_clip_length_even_when_the_capture_is_shorter():
    base = dataset.base_motions(replace(SETTINGS, actions=("kick",)))["kick"]
    performance = dataset.plan_performances(SETTINGS, "train", ["female"], 1)[0]
    take, start = dataset.performance_motion(base, replace(performance, speed=1.25), 60, 0.1)
    assert len(take) == 60 and start == 0
    assert np.allclose(take.pose[-1], take.pose[-2])  # the last pose held


def test_unknown_action_and_bad_manifest_are_named(tmp_path):
    with pytest.raises(InputError, match="actions.dataset.actions: unknown motion"):
        dataset.base_motions(replace(SETTINGS, actions=("moonwalk",)))
    path = tmp_path / "train.csv"
    pd.DataFrame({"split": ["train"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="train.csv: not an action manifest"):
        dataset.read_manifest(path)


@pytest.mark.parametrize(("frames", "pooled"), [(8, 1), (32, 2)])
def test_ltc_scores_clips_of_both_extents(frames, pooled):
    model = LTC(2, 5, frames, 32, width=1 / 16)
    assert model(torch.zeros(3, 2, frames, 32, 32)).shape == (3, 5)
    assert model.embed(torch.zeros(3, 2, frames, 32, 32)).shape == (3, 128)
    assert pooled_shape(frames, 32, 32) == (pooled, 1, 1)
    with pytest.raises(ValueError, match=rf"built for clips \(2, {frames}, 32, 32\)"):
        model(torch.zeros(1, 3, frames, 32, 32))


def moving_squares(channels: int, views: int = 2, per_class: int = 6, frames: int = 10, size: int = 12) -> ActionSet:
    """Toy videos of two actions: a square moving right (0) or down (1), each performance seen
    from `views` views (the second mirrored left to right)."""
    clips, labels, view_ids, performances = [], [], [], []
    for performance in range(2 * per_class):
        label = performance % 2
        video = np.zeros((channels, frames, size, size), np.float32)
        for t in range(frames):
            y, x = (3, 2 + t % 7) if label == 0 else (2 + t % 7, 3)
            video[:, t, y : y + 3, x : x + 3] = 1.0
        for view in range(views):
            clips.append(video if view == 0 else video[..., ::-1])
            labels.append(label)
            view_ids.append(view + 1)
            performances.append(performance)
    return ActionSet(
        np.stack(clips).astype(np.float16),
        np.array(labels),
        np.array(view_ids),
        np.array(performances),
        [f"p{i}" for i in range(2 * per_class)],
        [f"p{p}_c{v}" for p, v in zip(performances, view_ids)],
    )


TOY = LTCSettings(
    extent=4,
    size=10,
    width=1 / 16,
    dropout=0.0,
    iterations=40,
    batch_size=8,
    optimiser="adam",
    learning_rate=3e-3,
    momentum=0.9,
    weight_decay=0.0,
    lr_drop=1.0,
    test_stride=3,
    seed=0,
    eval_every=40,
    action_views=(1, 2),
    similarity_weight=0.1,
    margin=1.0,
)


@pytest.mark.parametrize(
    ("channels", "changes"),
    [
        (3, {}),
        (2, {"action_views": (1,)}),
        (2, {"action_views": (1,), "similarity": "positive", "similarity_weight": 0.1}),
        (2, {"action_views": (1, 2), "similarity": "contrastive", "similarity_weight": 0.1}),
    ],
)
def test_each_network_learns_the_toy_actions(channels, changes):
    settings = replace(TOY, **changes)
    data = moving_squares(channels)
    torch.manual_seed(0)
    model = LTC(channels, 2, settings.extent, settings.size, settings.width, settings.dropout)

    def loss(seed):
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            terms = training_step(model, data, settings, np.arange(len(data.names)), rng)
        return float(terms["action"]) + settings.similarity_weight * float(terms.get("similarity", 0.0))

    before = np.mean([loss(s) for s in range(4)])
    seen = data.select(np.isin(data.views, settings.action_views))  # a view never trained on may fail
    history = train("toy", model, data, seen, settings, progress=False)
    after = np.mean([loss(s) for s in range(4)])
    assert after < 0.5 * before
    assert history[-1]["test_video_accuracy"] == 1.0
    assert history[-1]["train_video_accuracy"] == 1.0  # the training clips it learnt from, measured alike
    assert [row["iteration"] for row in history] == [0, 40]


@pytest.mark.parametrize(
    ("row", "fields"),
    [
        ("a_v1_v2_v3", {"similarity": "none", "action_views": (1, 2, 3)}),
        ("s_v1_v2+a_v1", {"similarity": "positive", "similarity_views": (1, 2), "action_views": (1,)}),
        ("c_v1_v2+a_v1_v2", {"similarity": "contrastive", "similarity_views": (1, 2), "action_views": (1, 2)}),
    ],
)
def test_a_view_row_names_its_losses(row, fields):
    assert view_training(row) == fields


@pytest.mark.parametrize("row", ["s_v1_v2", "a_1", "x_v1+a_v1", "s_v1+a_v1"])
def test_a_malformed_view_row_is_named(row):
    with pytest.raises(InputError, match=re.escape(f"view row {row!r}")):
        view_training(row)


def test_training_repeats_bit_for_bit():
    data = moving_squares(2)
    weights = []
    for _ in range(2):
        torch.manual_seed(123)
        model = LTC(2, 2, TOY.extent, TOY.size, TOY.width)
        train("toy", model, data, data, replace(TOY, iterations=3, eval_every=3), progress=False)
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(*weights)


def test_videos_score_the_mean_of_their_clips_and_fusion_averages_two_networks():
    clips = pd.DataFrame(
        {
            "video": ["a", "a", "b"],
            "performance": ["x", "x", "y"],
            "view": [1, 1, 1],
            "label": [0, 0, 1],
            "start": [0, 4, 0],
            "p0": [0.9, 0.2, 0.6],
            "p1": [0.1, 0.8, 0.4],
        }
    )
    videos = video_results(clips)
    assert videos["clip_correct"].tolist() == [1, 0] and videos["video_correct"].tolist() == [1.0, 0.0]
    other = clips.assign(p0=1 - clips["p0"], p1=1 - clips["p1"])
    fused = late_fusion(clips, other)
    assert np.allclose(fused[["p0", "p1"]], 0.5)
    with pytest.raises(InputError, match="same test clips"):
        late_fusion(clips, other.assign(start=[0, 3, 0]))
    assert evaluation_windows(39, 32, 4) == [0, 4, 7] and evaluation_windows(8, 8, 4) == [0]


def synthetic_videos(accuracy: float, count: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    right = (rng.random(count) < accuracy).astype(float)
    return pd.DataFrame(
        {
            "video": [f"v{i}" for i in range(count)],
            "label": np.arange(count) % 4,
            "view": 1 + np.arange(count) % 3,
            "clips": 4,
            "clip_correct": 4 * right,
            "video_correct": right,
        }
    )


def test_ltc_orderings_are_judged_on_paired_intervals():
    extents = {"short": 8, "long": 32}
    videos = {
        "rgb_short": synthetic_videos(0.3, seed=1),
        "rgb_long": synthetic_videos(0.9, seed=2),  # long beats short: holds
        "farneback_short": synthetic_videos(0.2, seed=3),  # flow below RGB at 8 frames: reversed
        "farneback_long": synthetic_videos(0.9, seed=2),  # the same videos right as RGB: undecided
    }
    videos["constant"] = tables.constant_videos(videos["rgb_short"], np.array([0, 0, 1]))
    rows = tables.ltc_rows(["rgb", "farneback"], extents, 4)
    frame, counts = tables.measure(rows, videos, tables.FIGURES)
    chance = frame.set_index("key").loc["chance"]
    assert chance["clip_accuracy"] == chance["clip_accuracy_high"] == 25.0
    constant = frame.set_index("key").loc["constant"]
    assert constant["video_accuracy"] == pytest.approx(25.0)  # label 0 on every fourth video
    assert frame.set_index("key").loc["rgb_long", "paper_clip_accuracy"] == 57.0
    orderings = tables.judge(
        tables.ltc_pairs(["rgb", "farneback"], extents, ["farneback"]), videos, tables.FIGURES, counts
    )
    verdict = orderings.set_index(["column", "first", "second"])["verdict"]
    assert verdict["video_accuracy", "rgb_long", "rgb_short"] == "holds"
    assert verdict["clip_accuracy", "farneback_short", "rgb_short"] == "reversed"
    assert verdict["clip_accuracy", "farneback_long", "rgb_long"] == "undecided"
    assert verdict["clip_accuracy", "rgb_long", "constant"] == "holds"
    with pytest.raises(InputError, match="different videos"):
        tables.measure(rows, videos | {"rgb_long": videos["rgb_long"].iloc[::-1]}, tables.FIGURES)


def test_flow_quality_expects_the_better_flow_to_recognise_better():
    quality = pd.DataFrame({"method": ["rendered", "farneback", "dis_fast"], "epe_body": [0.0, 1.0, 2.0]})
    pairs = tables.flow_quality_pairs(quality, "long")
    assert ("video_accuracy", "rendered_long", "dis_fast_long", True) in pairs
    assert ("clip_accuracy", "farneback_long", "dis_fast_long", True) in pairs and len(pairs) == 6


def test_view_table_compares_views_as_table_6_1():
    base = synthetic_videos(0.5)
    # trained on v1 only: right on v1, wrong on v3; on every view: right everywhere
    one = base.assign(video_correct=(base["view"] < 3).astype(float))
    every = base.assign(video_correct=1.0)
    videos = {key: tables.view_columns(v, (1, 2, 3)) for key, v in {"a_v1": one, "a_v1_v2_v3": every}.items()}
    videos["constant"] = tables.view_columns(tables.constant_videos(base, np.array([1])), (1, 2, 3))
    rows = tables.view_rows(["a_v1", "a_v1_v2_v3"])
    figures = tables.view_figures((1, 2, 3))
    frame, counts = tables.measure(rows, videos, figures)
    assert frame.set_index("key").loc["a_v1", ["v1", "v3"]].tolist() == [100.0, 0.0]
    orderings = tables.judge(tables.paper_pairs(rows, list(figures)), videos, figures, counts)
    verdict = orderings.set_index(["column", "first", "second"])["verdict"]
    assert verdict["v3", "a_v1", "a_v1_v2_v3"] == "holds"  # the paper: 40.2 < 73.0, we: 0 < 100
    assert verdict["v1", "a_v1", "a_v1_v2_v3"] == "undecided"  # both 100 %
    with pytest.raises(InputError, match="unknown row"):
        tables.view_rows(["a_v4"])
