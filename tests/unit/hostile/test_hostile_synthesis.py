"""Clips that cannot hold a person (a camera at, inside or behind the body, or too far to see
it; joints that are not numbers) are refused by the renderer, naming the clip and the setting
to change, before anything is written."""

import numpy as np
import pytest

from pipeline.errors import InputError
from toy_models import toy_arrays

WIDTH, HEIGHT = 32, 24


@pytest.fixture(scope="module")
def toy_renderer():
    """The clip renderer at 32×24 pixels with a toy body model, and a still three-frame motion."""
    from pipeline.body_model.model import BodyModel, check_model_arrays
    from pipeline.synthesis import generate, motion
    from synthetic_clips import toy_synthesis

    model = BodyModel(check_model_arrays(toy_arrays(), "toy.pkl"))
    settings = toy_synthesis(clip_length=3, shapes=1, outfits=1, width=WIDTH, height=HEIGHT)
    renderer = generate.ClipRenderer({"female": model}, settings)
    still = motion.Motion("toy", np.zeros((3, 72)), np.zeros((3, 3)))
    yield renderer, still, generate.outfit_bank(0, "train", 1)[0]
    renderer.renderer.ctx.release()


def render(toy_renderer, cam_dist: float, motion=None):
    from pipeline.synthesis import generate

    renderer, still, outfit = toy_renderer
    plan = generate.ClipPlan(
        split="train",
        run=0,
        sequence="toy",
        clip=1,
        start=0,
        frames=3,
        stride=1,
        gender="female",
        shape_index=0,
        outfit_index=0,
        background_index=0,
        light=np.array([1.0, -0.5, 0, 0, 0, 0, 0, 0, 0]),
        cam_dist=cam_dist,
    )
    background = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    return renderer.render(plan, motion or still, np.zeros(10), outfit, background, "room.jpg")


def test_a_clip_the_camera_sees_is_rendered(toy_renderer):
    clip = render(toy_renderer, 8.0)
    assert all((frame.parts > 0).any() for frame in clip.frames)
    assert np.isfinite(clip.info["joints2D"]).all()


@pytest.mark.parametrize(
    ("cam_dist", "reason"),
    [
        (0.0, "non-finite 2D joints"),  # the camera on the pelvis: 0/0
        (0.05, "the body reaches the camera or lies behind it in every frame"),  # inside the body
        (-8.0, "the body reaches the camera or lies behind it in every frame"),  # looking away
        (5000.0, "no person pixels in any frame"),  # smaller than a pixel
    ],
)
def test_a_clip_that_cannot_hold_a_person_is_refused_naming_the_clip_and_setting(toy_renderer, cam_dist, reason):
    with pytest.raises(InputError, match=rf"^clip toy_c0001: {reason} \(camera .* m from the pelvis\): change "):
        render(toy_renderer, cam_dist)
    with pytest.raises(InputError, match=r"synthesis\.camera_distance \(--camera-distance\)$"):
        render(toy_renderer, cam_dist)


def test_a_motion_that_is_not_numbers_is_refused_naming_the_motion(toy_renderer):
    from pipeline.synthesis import motion

    pose = np.zeros((3, 72))
    pose[1, 5] = np.nan
    broken = motion.Motion("toy", pose, np.zeros((3, 3)))
    with pytest.raises(InputError, match=r"^clip toy_c0001: non-finite 3D joints: its motion \(synthesis.motions\)"):
        render(toy_renderer, 8.0, broken)


def test_a_person_outside_the_image_in_every_frame_is_refused():
    from pipeline.synthesis.generate import check_person_seen

    frames, joints = 2, 24
    parts = np.zeros((frames, HEIGHT, WIDTH), np.uint8)
    parts[:, 0, 0] = 1  # a stray pixel of a limb
    in_front = np.zeros((frames, joints, 3)) + [0.0, 0.0, 4.0]
    beside = np.zeros((frames, joints, 2)) + [WIDTH + 5.0, HEIGHT / 2]
    with pytest.raises(InputError, match=rf"clip c: the person is outside the {WIDTH}×{HEIGHT} image in every frame"):
        check_person_seen("c", parts, beside, in_front, 4.0)
    inside = beside.copy()
    inside[1, 3] = [WIDTH / 2, HEIGHT / 2]  # one joint of one frame in the picture
    check_person_seen("c", parts, inside, in_front, 4.0)


@pytest.mark.parametrize("distance", [["0", "0"], ["-8", "1"], ["8", "-1"], ["nan", "1"]])
def test_the_render_command_refuses_a_camera_distance_that_sees_no_person(tmp_path, distance):
    from pipeline.synthesis.__main__ import main

    argv = ["render", "--split", "train", "--run", "0", "--motions", str(tmp_path / "m.npz")]
    argv += ["--backgrounds", str(tmp_path), "--model", f"female={tmp_path / 'f.pkl'}", "--root", str(tmp_path)]
    argv += ["--manifest", str(tmp_path / "m.csv"), "--seed", "0", "--clip-length", "3", "--shapes", "1"]
    argv += ["--outfits", "1", "--passes", "segm", "--light-ambient", "0.5", "1.4", "--light-from-above", "0", "0.7"]
    argv += ["--light-others", "0.7", "--voxels", "0", "--voxel-frames", "none", "--camera-distance", *distance]
    with pytest.raises(SystemExit, match=rf"^error: --camera-distance {distance[0]} {distance[1]}: the mean must"):
        main(argv)
