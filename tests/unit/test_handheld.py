import cv2
import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.flow import camera
from pipeline.flow.methods import estimator
from pipeline.synthesis.handheld import HandheldSettings, background_video, margin_needed, trajectory

SHAKY = HandheldSettings(pan=1.5, shake=0.6, smoothing=0.7)


def scene(height=120, width=160, seed=0):
    """A photo with texture at every scale a flow method reads: smoothed noise."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


def test_the_trajectory_is_seeded_and_still_at_the_centre_frame():
    first, again = (trajectory(np.random.default_rng(3), 9, SHAKY) for _ in range(2))
    assert first.shape == (9, 2) and np.array_equal(first, again)
    assert np.array_equal(first[4], [0.0, 0.0])
    assert not np.array_equal(first, trajectory(np.random.default_rng(4), 9, SHAKY))
    steady = trajectory(np.random.default_rng(3), 9, HandheldSettings(pan=2.0, shake=0.0, smoothing=0.0))
    assert np.allclose(np.linalg.norm(np.diff(steady, axis=0), axis=1), 2.0)  # a pan alone: even steps


def test_each_frame_is_the_last_moved_by_the_background_flow():
    offsets = trajectory(np.random.default_rng(0), 6, SHAKY)
    frames, flow = background_video(scene(), offsets, 48, 64)
    assert frames.shape == (6, 48, 64, 3) and frames.dtype == np.uint8 and flow.shape == (5, 48, 64, 2)
    assert np.allclose(flow[:, 10, 20], -np.diff(offsets, axis=0))  # the scene moves against the camera
    ys, xs = np.mgrid[0:48, 0:64].astype(np.float32)
    inner = (slice(6, -6), slice(6, -6))
    for t in range(5):
        # frame t's pixel (x, y) is frame t+1's (x + u, y + v)
        moved = cv2.remap(frames[t + 1], xs + flow[t, ..., 0], ys + flow[t, ..., 1], cv2.INTER_LINEAR)
        error = np.abs(moved[inner].astype(int) - frames[t][inner].astype(int))
        assert error.mean() < 2.0, t
    assert not np.array_equal(frames[0], frames[-1])


def test_a_photo_smaller_than_the_frames_reach_is_enlarged_and_a_degenerate_one_refused():
    offsets = np.array([[-30.0, 5.0], [0.0, 0.0], [30.0, -5.0]])
    assert margin_needed(offsets) == (31, 6)
    frames, _ = background_video(scene(40, 50), offsets, 48, 64)
    assert frames.shape == (3, 48, 64, 3)
    with pytest.raises(InputError, match="1 × 1 pixels"):
        background_video(np.zeros((1, 1, 3), np.uint8), offsets, 48, 64)
    with pytest.raises(ValueError, match="smoothing"):
        HandheldSettings(pan=1.0, shake=0.5, smoothing=1.0)


def test_tracking_the_true_flow_gives_the_scene_its_place_in_every_frame():
    offsets = trajectory(np.random.default_rng(1), 7, SHAKY)
    _, flow = background_video(scene(), offsets, 48, 64)
    assert np.allclose(camera.track(flow), -offsets)  # a scene point at the origin of the centre frame
    assert np.allclose(camera.track(flow, reference=0), -(offsets - offsets[0]))


def test_the_median_ignores_a_person_moving_on_its_own():
    offsets = trajectory(np.random.default_rng(2), 5, SHAKY)
    _, flow = background_video(scene(), offsets, 48, 64)
    person = np.zeros(flow.shape[:3], bool)
    person[:, 10:40, 20:40] = True  # a fifth of the frame, walking right
    walking = flow.copy()
    walking[person] = [3.0, 0.5]
    assert np.allclose(camera.track(walking), -offsets)
    assert np.allclose(camera.track(walking, moving=person), -offsets)
    with pytest.raises(ValueError, match="no background pixel"):
        camera.track(walking, moving=np.ones_like(person))
    with pytest.raises(ValueError, match="outside the clip"):
        camera.track(flow, reference=5)


def test_tracking_by_estimated_flow_follows_the_camera_to_a_pixel():
    offsets = trajectory(np.random.default_rng(5), 7, SHAKY)
    frames, _ = background_video(scene(160, 200), offsets, 96, 128)
    dis = estimator("dis_medium")
    flows = np.stack([dis(frames[t], frames[t + 1]) for t in range(len(frames) - 1)])
    assert np.abs(camera.track(flows) + offsets).max() < 1.0
