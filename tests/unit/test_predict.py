"""The predict command on images it has never seen: a real photograph and rendered frames."""

import csv
import json

import numpy as np
import pytest

from conftest import BODYNET_CHOICES


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory):
    """An untrained BodyNet at toy sizes: what predict does with it is checked, not how well."""
    from pipeline.models.bodynet import BodyNetConfig, HourglassConfig
    from pipeline.models.checkpoint import build_model, save_model

    config = BodyNetConfig(32, 8, 16, HourglassConfig(stacks=1, features=8, modules=1, depth=2), **BODYNET_CHOICES)
    model = build_model(config, [])
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, model, "part_voxels_fvsv", ("pose2d", "segm", "pose3d", "voxels", "part_voxels"), 0)
    return path


def test_root_depth_is_where_the_bones_have_their_lengths():
    from pipeline.body_model.skeleton import BODYNET_BONES as BONES
    from pipeline.predict.body import estimate_root_depth

    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.3, size=(16, 3)) + [0.0, 0.0, 4.0]  # camera metres, ~4 m away
    lengths = np.array([np.linalg.norm(joints[a] - joints[b]) for a, b in BONES])
    focal = 500.0
    # seen at the root's depth with exact relative depths, the bones' lengths place it back
    pixels = joints[:, :2] / joints[:, 2:] * focal
    towards = joints[6, 2] - joints[:, 2]
    depth = estimate_root_depth(pixels, towards, focal, lengths)
    assert depth == pytest.approx(joints[6, 2], rel=0.1)
    assert estimate_root_depth(pixels * 2, towards, focal, lengths) < depth  # twice as large: nearer


def test_predict_writes_every_output_for_a_photograph_and_names_bad_inputs(
    toy_checkpoint, built_female, tmp_path, tracking_env
):
    import cv2
    import trimesh
    from skimage import data

    from pipeline.body_model.model import BodyModel
    from pipeline.predict.__main__ import main

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), data.astronaut()[..., ::-1])
    out = tmp_path / "out"
    common = ["--model", str(toy_checkpoint), "--body-model", str(built_female[0]), "--out", str(out)]
    main([str(photo), *common, "--box", "150,20,420,512", "--joint-steps", "3", "--fit-steps", "3", "--device", "cpu"])
    record = json.loads((out / "astronaut.json").read_text())
    assert record["person_found_by"] == "box" and record["person_box"] == [150, 20, 420, 512]
    assert np.array(record["joints2d"]).shape == (16, 2) and np.array(record["joints3d"]).shape == (16, 3)
    assert len(record["pose"]) == 72 and len(record["betas"]) == 10 and record["root_depth"] > 0
    assert record["focal_length"] == 512 and not record["focal_length_given"]
    body = trimesh.load(out / "astronaut_body.obj", process=False)  # loads in a mesh library
    model = BodyModel.from_file(built_female[0])
    assert body.vertices.shape == (model.num_vertices, 3) and len(body.faces) == len(model.faces)
    overlay = cv2.imread(str(out / "astronaut_overlay.png"))
    assert overlay.shape == (512, 512, 3)
    assert cv2.imread(str(out / "astronaut_parts.png")) is not None
    assert (out / "astronaut_voxels.obj").exists()
    views = cv2.imread(str(out / "astronaut_views.png"))
    assert views.shape == (256, 768, 3)
    body_pixels = [(np.abs(views[:, i * 256 : (i + 1) * 256].astype(int) - 235).sum(-1) > 30).mean() for i in range(3)]
    assert all(0.02 < share < 0.6 for share in body_pixels), body_pixels  # a whole body in each panel
    with open(out / "summary.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["image"] for row in rows] == [str(photo)] and float(rows[0]["height_m"]) > 0
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SystemExit, match="empty.png: cannot read the image"):
        main([str(tmp_path / "empty.png"), *common])
    with pytest.raises(SystemExit, match="astronaut.png: not a BodyNet checkpoint|astronaut.png: not a readable"):
        main([str(photo), *common[:0], "--model", str(photo), *common[2:]])
    written = ["astronaut.json", "astronaut_body.obj", "astronaut_voxels.obj", "astronaut_parts.png", "summary.csv"]
    written += ["astronaut_overlay.png", "astronaut_views.png", "astronaut_part_voxels.obj"]  # it holds part voxels
    assert sorted(p.name for p in out.iterdir()) == sorted(written)


def test_the_search_windows_cover_the_image_at_every_scale_half_a_side_apart():
    from skimage import data

    from pipeline.datasets.surreal import search_boxes
    from pipeline.predict.body import detections

    photo = data.astronaut()
    for x0, y0, x1, y1 in detections(photo):
        assert 0 <= x0 < x1 <= photo.shape[1] + 1 and 0 <= y0 < y1 <= photo.shape[0] + 1
    assert detections(np.zeros((64, 48, 3), np.uint8)) == []  # smaller than the detector's window
    boxes = np.array(search_boxes(240, 320, (1.0, 0.5)))
    sides = boxes[:, 2] - boxes[:, 0]
    assert np.allclose(sides, boxes[:, 3] - boxes[:, 1]) and set(np.round(sides)) == {320.0, 160.0}
    whole = boxes[sides > 200]
    assert len(whole) == 1 and np.allclose(whole[0], [0, -40, 320, 280])  # centred on the short axis
    small = boxes[sides < 200]
    for axis, length in ((0, 320), (1, 240)):
        starts = np.unique(small[:, axis])
        assert starts[0] == 0 and starts[-1] + 160 == length and np.diff(starts).max() <= 80


def test_without_a_box_the_person_is_the_window_the_pose_network_is_surest_of():
    """A stand-in network sure of its joints in proportion to how well the crop's person box
    (the crop less its margin) overlaps the one bright figure in the image."""
    import torch

    from pipeline.predict.body import CROP_MARGIN, find_person, locate_people

    class Overlap(torch.nn.Module):
        config = type("Config", (), {"input_size": 64})

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, rgb, wanted):
            figure = rgb.mean(1) > 0.5  # (B, S, S)
            inner = torch.zeros(64, 64, dtype=torch.bool)
            margin = round(64 * (1 - 1 / CROP_MARGIN) / 2)
            inner[margin:-margin, margin:-margin] = True
            overlap = (figure & inner).sum((1, 2)) / (figure | inner).sum((1, 2)).clamp_min(1)
            heatmaps = overlap[:, None, None, None].expand(-1, 16, 16, 16).clone()
            return {name: [heatmaps] for name in wanted}

    image = np.zeros((240, 320, 3), np.uint8)
    image[130:230, 200:300] = 255  # the figure, low and to the right
    (x0, y0, x1, y1), how = find_person(Overlap(), image)
    assert how == "network search"
    assert 200 <= (x0 + x1) / 2 <= 300 and 130 <= (y0 + y1) / 2 <= 230  # centred on the figure
    assert 70 <= x1 - x0 <= 140  # and about its size
    found, _, _ = locate_people(Overlap(), [image, image], [(1, 2, 3, 4), None])
    assert found[0] == ((1.0, 2.0, 3.0, 4.0), "box") and found[1][1].startswith("network search")


def test_a_body_at_the_images_edge_is_called_cut_off():
    from pipeline.predict.body import cut_off

    parts = np.zeros((16, 16), np.int64)
    parts[3:13, 6:10] = 2  # a body in the middle of its crop
    centre, side = np.array([100.0, 100.0]), 160.0  # the crop spans 20–180 of a 200-pixel image
    assert not cut_off(parts, centre, side, (200, 200))
    assert cut_off(parts, centre, side, (150, 200))  # the image ends at 150: the legs are outside
    assert cut_off(parts, np.array([100.0, 20.0]), side, (200, 200))  # the crop hangs over the top
    assert not cut_off(np.zeros((16, 16), np.int64), centre, side, (150, 200))  # no body, nothing cut


def test_the_evaluations_crop_given_as_a_box_is_the_crop_predict_takes():
    from pipeline.datasets.surreal import crop_box
    from pipeline.predict.body import box_of_crop, crop

    rng = np.random.default_rng(1)
    joints2d = rng.uniform([100, 40], [220, 200], size=(24, 2))
    centre, side = crop_box(joints2d)
    _, got_centre, got_side = crop(np.zeros((240, 320, 3), np.uint8), box_of_crop(centre, side), 32)
    np.testing.assert_allclose(got_centre, centre)
    assert got_side == pytest.approx(side)


def test_the_check_pairs_predict_with_the_evaluation_image_by_image():
    import pandas as pd

    from pipeline.errors import InputError
    from pipeline.predict.check import summarise

    rng = np.random.default_rng(0)
    evaluation = pd.DataFrame(
        {"image": np.arange(40), "surface_error_mm": rng.normal(100, 20, 40), "joint_error_mm": rng.normal(90, 5, 40)}
    )
    same = evaluation.assign(finder="evaluation_crop", found_by="box")
    worse = evaluation.assign(finder="detector", found_by="detector", surface_error_mm=evaluation.surface_error_mm + 30)
    summary = summarise(pd.concat([same, worse]), evaluation)
    assert summary["evaluation_crop"]["difference_mm"] == 0 and summary["evaluation_crop"]["verdict"] == "no worse"
    assert summary["detector"]["difference_mm"] == pytest.approx(30) and summary["detector"]["verdict"] == "worse"
    assert summary["detector"]["difference_mm_interval"] == pytest.approx([30, 30])  # paired: the spread cancels
    low, high = summary["detector"]["surface_error_mm_interval"]
    assert low < summary["detector"]["surface_error_mm"] < high
    assert summary["detector"]["found_by"] == {"detector": 40}
    with pytest.raises(InputError, match="lacks test images"):
        summarise(same, evaluation.iloc[:10])


def test_the_segmentations_body_box_maps_back_to_the_image():
    from pipeline.evaluation.frames import image_to_crop
    from pipeline.predict.body import body_box

    parts = np.zeros((32, 32), np.int64)
    parts[8:24, 12:20] = 3  # rows 8-23, columns 12-19 of the crop called body
    centre = np.array([100.0, 120.0])
    x0, y0, x1, y1 = body_box(parts, centre, 64.0)
    corners = image_to_crop(np.array([[x0, y0], [x1, y1]]), 32, centre, 64.0)
    np.testing.assert_allclose(corners, [[11.5, 7.5], [19.5, 23.5]])
    assert x1 - x0 == pytest.approx(16) and y1 - y0 == pytest.approx(32)  # two image pixels a crop pixel
    assert body_box(np.zeros((32, 32), np.int64), centre, 64.0) is None


def test_a_csv_of_boxes_is_read_by_image_name_and_bad_rows_are_named(tmp_path):
    from pipeline.errors import InputError
    from pipeline.predict.__main__ import read_boxes

    good = tmp_path / "boxes.csv"
    good.write_text("image,x0,y0,x1,y1\nphotos/a.jpg,10,20,110,220\nb.png,0,0,5,9\n")
    assert read_boxes(good) == {"a.jpg": (10.0, 20.0, 110.0, 220.0), "b.png": (0.0, 0.0, 5.0, 9.0)}
    empty_box = tmp_path / "empty_box.csv"
    empty_box.write_text("image,x0,y0,x1,y1\na.jpg,10,20,110,220\nb.png,50,0,5,9\n")
    with pytest.raises(InputError, match=r"empty_box.csv, line 3: an empty box"):
        read_boxes(empty_box)
    no_header = tmp_path / "no_header.csv"
    no_header.write_text("a.jpg,10,20,110,220\n")
    with pytest.raises(InputError, match="no_header.csv: needs a header with the columns image, x0"):
        read_boxes(no_header)
    with pytest.raises(InputError, match="missing.csv: not a readable CSV"):
        read_boxes(tmp_path / "missing.csv")


def test_part_voxels_are_written_as_one_surface_per_part_where_the_camera_sees_them():
    from pipeline.predict.body import Prediction
    from pipeline.predict.write import part_voxels_obj

    labels = np.zeros((16, 16, 16), np.uint8)  # (z, y, x), y down
    labels[6:10, 2:6, 6:10] = 1  # head, above
    labels[6:10, 6:14, 5:11] = 2  # torso, below it
    prediction = Prediction(
        box=(0.0, 0.0, 100.0, 100.0),
        found_by="box",
        image_size=(100, 100),
        crop_centre=np.array([50.0, 50.0]),
        crop_side=115.0,
        focal=100.0,
        focal_given=True,
        root_depth=3.0,
        joints2d=np.zeros((16, 2)),
        joints3d=np.zeros((16, 3)),
        parts=np.zeros((8, 8), np.int64),
        voxels=(labels > 0).astype(np.float32),
        voxel_points=np.zeros((0, 3)),
        pose=np.zeros(72),
        betas=np.zeros(10),
        transl=np.zeros(3),
        vertices=np.zeros((0, 3)),
        confidence={},
        whole_body=True,
        part_voxels=labels,
    )
    groups, current = {}, None
    for line in part_voxels_obj(prediction).splitlines():
        if line.startswith("g "):
            current = line[2:]
            groups[current] = []
        elif line.startswith("v "):
            groups[current].append([float(v) for v in line.split()[1:]])
    assert list(groups) == ["head", "torso", "right_arm", "left_arm", "right_leg", "left_leg"]
    head, torso = np.array(groups["head"]), np.array(groups["torso"])
    assert len(head) and len(torso) and not any(groups[name] for name in list(groups)[2:])
    assert head[:, 1].mean() < torso[:, 1].mean()  # camera y points down: the head above
    assert abs(head[:, 2].mean() - 3.0) < 0.3 and abs(torso[:, 2].mean() - 3.0) < 0.3  # at the root's depth
