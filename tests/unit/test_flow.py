"""Optical flow: the methods, the two storage formats, the scores, the stage's commands."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.flow import score, storage
from pipeline.flow.methods import METHODS, estimator


def textured_pair(shift=(2.0, 1.0), size=(96, 128)):
    """A smooth random texture and the same texture moved by `shift` (x, y) pixels."""
    rng = np.random.default_rng(0)
    height, width = size
    noise = cv2.GaussianBlur(rng.random((height + 40, width + 40)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min()) * 255
    moved = cv2.warpAffine(
        noise, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), noise.shape[::-1], flags=cv2.INTER_CUBIC
    )
    crop = lambda image: np.repeat(image[20:-20, 20:-20, None], 3, axis=2).astype(np.uint8)  # noqa: E731
    return crop(noise), crop(moved)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_finds_a_translation_in_the_flow_convention_of_the_clips(method):
    first, second = textured_pair((2.0, 1.0))
    flow = estimator(method)(first, second)
    assert flow.shape == (96, 128, 2) and flow.dtype == np.float32
    interior = flow[16:-16, 16:-16].reshape(-1, 2)
    assert np.median(interior, axis=0) == pytest.approx([2.0, 1.0], abs=0.25), method


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown flow method 'brox'"):
        estimator("brox")


def test_storage_round_trips_losslessly_and_within_8_bits_in_ltc_format(tmp_path):
    rng = np.random.default_rng(1)
    flow = cv2.GaussianBlur(rng.normal(0, 4, (3, 48, 64, 2)).astype(np.float32).reshape(3 * 48, 64, 2), (0, 0), 3)
    flow = flow.reshape(3, 48, 64, 2) * 10
    storage.write_lossless(tmp_path, "clip", flow)
    storage.write_ltc(tmp_path, "clip", flow)
    assert np.array_equal(storage.read_flow(tmp_path, "clip"), flow)
    decoded = storage.read_flow(tmp_path, "clip", "ltc")
    ranges = flow.max(axis=(1, 2)) - flow.min(axis=(1, 2))  # (T, 2)
    error = np.abs(decoded - flow).mean(axis=(1, 2))
    assert (error < ranges / 255).all()  # on average within one grey level
    assert len((tmp_path / "clip_minmax.txt").read_text().splitlines()) == 3
    assert sorted(p.name for p in (tmp_path / "clip").iterdir())[:2] == ["x_00001.jpg", "x_00002.jpg"]
    (tmp_path / "clip" / "y_00002.jpg").unlink()
    with pytest.raises(Exception, match="y_00002.jpg: missing"):
        storage.read_flow(tmp_path, "clip", "ltc")
    with pytest.raises(Exception, match="other.npz: not a readable flow file"):
        storage.read_flow(tmp_path, "other")


def test_resizing_scales_the_vectors_and_mean_subtraction_removes_camera_motion():
    flow = np.zeros((2, 48, 64, 2), np.float32) + np.float32([4.0, 2.0])
    small = storage.resize_flow(flow, 32, 24)
    assert small.shape == (2, 24, 32, 2) and np.allclose(small, [2.0, 1.0])
    flow[:, :10, :10] += 5.0
    centred = storage.subtract_mean(flow)
    assert np.allclose(centred.mean(axis=(1, 2)), 0, atol=1e-5)


def test_scores_count_end_point_errors_and_outliers_over_all_pixels_and_the_body():
    truth = np.zeros((1, 2, 2, 2))
    truth[0, 0, 0] = [10.0, 0.0]
    estimated = truth.copy()
    estimated[0, 0, 0] = [6.0, 0.0]  # error 4 > 3 px and > 5 % of 10: an outlier
    estimated[0, 1, 1] = [0.0, 1.0]  # error 1: not
    body = np.array([[[True, False], [False, False]]])
    result = score.summarise([score.flow_error_sums(estimated, truth, body)])
    assert result["epe"] == pytest.approx(5 / 4) and result["epe_body"] == pytest.approx(4.0)
    assert result["outlier_rate"] == pytest.approx(1 / 4) and result["outlier_rate_body"] == 1.0
    with pytest.raises(ValueError, match="different shapes"):
        score.flow_error_sums(estimated[:, :1], truth, body)


def test_extraction_writes_both_formats_and_scores_the_rendered_flow_as_exact(tiny_clips, tmp_path):
    from pipeline.clips import find_clips
    from pipeline.flow.extract import RENDERED, extract

    root, _, _ = tiny_clips
    clips = find_clips(root, "train")[:2]
    rendered = extract(clips, RENDERED, tmp_path / RENDERED, progress=False)
    assert rendered["epe"] == 0 and rendered["epe_body"] == 0 and rendered["clips"] == 2
    assert 0 < rendered["epe_ltc"] < 0.1  # what 8 bits cost
    estimated = extract(clips, "dis_fast", tmp_path / "dis_fast", progress=False)
    assert 0 < estimated["epe_body"] < 10 and estimated["frames_per_second"] > 0
    stem = clips[0].name.removesuffix("_info.mat")
    flow = storage.read_flow(tmp_path / "dis_fast", stem)
    assert flow.shape[0] == estimated["frame_pairs"] // 2 and flow.shape[-1] == 2
    assert storage.read_flow(tmp_path / "dis_fast", stem, "ltc").shape == flow.shape


def test_table_command_picks_the_default_and_names_bad_score_files(tiny_clips, tmp_path, tracking_env):
    from pipeline.clips import find_clips
    from pipeline.flow.__main__ import main

    root, _, _ = tiny_clips
    for method in ("rendered", "dis_ultrafast", "farneback"):
        main(
            [
                "extract",
                "--root",
                str(root),
                "--split",
                "train",
                "--method",
                method,
                "--clips",
                "1",
                "--quality",
                "95",
                "--out",
                str(tmp_path / method),
                "--scores",
                str(tmp_path / f"{method}.json"),
            ]
        )
    scores = {m: json.loads((tmp_path / f"{m}.json").read_text()) for m in ("dis_ultrafast", "farneback")}
    main(
        [
            "table",
            *[a for m in ("rendered", "dis_ultrafast", "farneback") for a in ("--score", f"{m}={tmp_path / m}.json")],
            "--root",
            str(root),
            "--split",
            "train",
            "--min-fps",
            "0",
            "--out",
            str(tmp_path / "flow_table.csv"),
            "--figure",
            str(tmp_path / "colours.png"),
        ]
    )
    table = pd.read_csv(tmp_path / "flow_table.csv").set_index("method")
    assert table.loc["rendered", "epe"] == 0 and table["default"].sum() == 1
    best = min(scores, key=lambda m: scores[m]["epe_body"])
    assert table.loc[best, "default"]
    assert (tmp_path / "colours.png").stat().st_size > 10_000
    assert find_clips(root, "train")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="bad.json: lacks"):
        main(
            [
                "table",
                "--score",
                f"x={tmp_path / 'bad.json'}",
                "--root",
                str(root),
                "--split",
                "train",
                "--min-fps",
                "0",
                "--out",
                str(tmp_path / "t.csv"),
                "--figure",
                str(tmp_path / "f.png"),
            ]
        )


def test_a_flow_source_reads_rendered_or_stored_flow_and_gives_zero_after_the_last_frame(tiny_clips, tmp_path):
    from pipeline.clips import Clip, find_clips
    from pipeline.flow.extract import extract
    from pipeline.flow.storage import FlowSource

    root, _, _ = tiny_clips
    path = find_clips(root, "train")[0]
    extract([path], "dis_ultrafast", tmp_path, progress=False)
    clip = Clip(path)
    stored = storage.read_flow(tmp_path, clip.stem)
    source = FlowSource(tmp_path)
    assert np.array_equal(source(clip, 1), stored[1])
    assert not source(clip, len(stored)).any()  # the last frame has no next one
    assert np.array_equal(FlowSource("rendered")(clip, 0), clip.forward_flow(0))
    centred = FlowSource(tmp_path, mean_subtracted=True)(clip, 1)
    assert np.allclose(centred.mean(axis=(0, 1)), 0.0, atol=1e-4)
    assert np.allclose(centred, stored[1] - stored[1].mean(axis=(0, 1)), atol=1e-5)
