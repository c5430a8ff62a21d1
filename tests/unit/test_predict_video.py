"""A trained mesh-video model on a video file or a folder of frames: the meshes it writes are
the model's on the crops training saw, the overlay is the video's, the crops are placed as
documented, and bad inputs are named. At toy sizes, on a rendered clip."""

import re

import cv2
import numpy as np
import pytest
import torch

from pipeline.body_model.model import BodyModel, check_model_arrays, write_model_file
from pipeline.clips import Clip
from pipeline.errors import InputError
from pipeline.models.checkpoint import save_checkpoint
from pipeline.predict import video
from pipeline.predict.write import BodyPainter
from pipeline.synthesis.backgrounds import package_photos
from pipeline.synthesis.motion import deepmimic_files, load_deepmimic, save_motions
from pipeline.video_mesh import data, losses, train
from pipeline.video_mesh.network import FrameModel, MeshNetworkConfig, VideoModel, mean_parameters
from toy_models import toy_arrays

FRAMES, SIZE = 8, 48
SETTINGS = data.MeshClipSettings(
    seed=0,
    performances=1,
    azimuths=(0.0,),
    frames=FRAMES,
    size=SIZE,
    lens=180.0,
    cam_dist=(12.0, 0.5),
    speed=(0.8, 1.2),
    jitter=0.1,
    mirror=0.0,
    shapes=2,
    outfits=2,
)
NETWORK = MeshNetworkConfig(
    input_size=32, width=4, features=16, hidden=32, iterations=2, dropout=0.0, lstm=16, attention=8
)


def toy_body() -> BodyModel:
    return BodyModel(check_model_arrays(toy_arrays(), "toy.pkl")).float()


def save(model, kind: str, path):
    """A checkpoint as `video_mesh train` writes it."""
    save_checkpoint(path, {"state": model.state_dict(), "kind": kind, "network": vars(model.config)})
    return path


@torch.no_grad()
def normalise(model: FrameModel, frames: torch.Tensor) -> None:
    """Set the batch norms' statistics to the frames' (B, 3, S, S), as training would: with the
    fresh ones an untrained encoder tells the clip's frames apart by a millionth."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # the plain mean of what it sees
    model.train()
    model(frames)
    model.eval()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One rendered clip (its mp4, and its frames as PNGs named out of lexical order), read back
    as training reads it, and a frame and a video model of it saved as checkpoints."""
    root = tmp_path_factory.mktemp("predict_video")
    files = {path.stem.removeprefix("humanoid3d_"): path for path in deepmimic_files()}
    save_motions(root / "motions.npz", [load_deepmimic(files["walk"], min_seconds=1)])
    manifest = data.render(
        "train", SETTINGS, root / "motions.npz", {"female": toy_body()}, package_photos("train")[:1], root
    )
    clips = data.load_clips(root, manifest, NETWORK.input_size)
    mp4 = (root / manifest["info"][0]).with_name(f"{manifest['stem'][0]}.mp4")
    folder = root / "walk_frames"
    folder.mkdir()
    capture = cv2.VideoCapture(str(mp4))
    for t in range(FRAMES):
        ok, frame = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"frame{5 * t}.png"), frame)  # frame5 after frame10 in lexical order
    capture.release()
    torch.manual_seed(0)
    frame = FrameModel(NETWORK, mean_parameters(clips.rotations.flatten(0, 1), clips.betas, train.camera_scale(clips)))
    torch.nn.init.normal_(frame.regressor.mlp[-1].weight, std=0.1)  # an estimate that depends on the frame
    normalise(frame, train.images(clips.images[0]))
    moving = VideoModel.from_frame_model(frame)
    torch.nn.init.normal_(moving.read.weight, std=0.1)  # and one that depends on the frames before
    write_model_file(root / "toy.pkl", toy_arrays())
    return {
        "body": root / "toy.pkl",
        "clips": clips,
        "mp4": mp4,
        "folder": folder,
        "frame": frame.eval(),
        "video": moving.eval(),
        "frame_path": save(frame, "frame", root / "frame.pt"),
        "video_path": save(moving, "video", root / "video.pt"),
    }


def run(clip, tmp_path, source, kind="frame", *options) -> tuple[dict, object]:
    """The command line on `source`; the npz it wrote and the output folder."""
    out = tmp_path / "out"
    video.main(
        [str(source), "--model", str(clip[f"{kind}_path"]), "--body", str(clip["body"]), "--out", str(out), *options]
    )
    name = source.name if source.is_dir() else source.stem
    with np.load(out / f"{name}.npz") as npz:
        return dict(npz), out


def overlay_frames(path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    capture.release()
    return np.stack(frames)


def check_meshes(result: dict, theta: torch.Tensor) -> None:
    """The npz holds Θ (T, P) and the toy body's meshes at it, split as documented."""
    np.testing.assert_allclose(result["theta"], theta.numpy(), atol=1e-5, rtol=0)
    assert np.ptp(result["theta"], axis=0).max() > 1e-3  # the frames' Θ differ: the check means something
    rotations = torch.as_tensor(result["rotations"])
    vertices, joints = losses.posed(toy_body(), rotations, torch.as_tensor(result["betas"]))
    assert result["vertices"].shape == (FRAMES, 72, 3) and result["vertices"].dtype == np.float32
    np.testing.assert_allclose(result["vertices"], vertices.numpy(), atol=1e-5)
    np.testing.assert_allclose(result["joints"], joints.numpy(), atol=1e-5)
    np.testing.assert_array_equal(result["faces"], toy_arrays()["f"])
    np.testing.assert_allclose(result["camera"], theta[:, -3:].numpy(), atol=1e-5)
    from scipy.spatial.transform import Rotation

    turned = Rotation.from_rotvec(result["pose"].reshape(-1, 3)).as_matrix().reshape(rotations.shape)
    np.testing.assert_allclose(turned, result["rotations"], atol=1e-4)


def test_a_video_file_gives_the_frame_models_meshes_on_the_crops_training_saw(clip, tmp_path):
    result, out = run(clip, tmp_path, clip["mp4"], "frame", "--obj")
    # no detector fits a 48-pixel frame: the whole (square) frame is the crop, as in training
    assert (result["boxes"] == [0, 0, SIZE, SIZE]).all() and set(result["found_by"]) == {"frame"}
    check_meshes(result, train.predict(clip["frame"], clip["clips"])[0])
    assert result["fps"] == 30.0 and list(result["image_size"]) == [SIZE, SIZE] and result["kind"] == "frame"
    drawn = overlay_frames(out / f"{clip['mp4'].stem}_overlay.mp4")
    assert drawn.shape == (FRAMES, SIZE, SIZE, 3)
    # the mesh is drawn where the weak-perspective camera puts its vertices, nowhere else
    original = clip["clips"].images[0].numpy()  # the frames at 32 pixels: compare at that size
    changed = (
        np.abs(
            np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in drawn]).astype(int) - original
        ).max(-1)
        > 60
    )
    pixels = video.crop_to_pixels(
        losses.project(torch.as_tensor(result["vertices"]), torch.as_tensor(result["camera"])).numpy(), result["boxes"]
    ) * (32 / SIZE)
    low, high = np.floor(pixels.min(1)) - 2, np.ceil(pixels.max(1)) + 2
    ys, xs = np.mgrid[:32, :32]
    inside = (
        (xs >= low[:, None, None, 0])
        & (xs <= high[:, None, None, 0])
        & (ys >= low[:, None, None, 1])
        & (ys <= high[:, None, None, 1])
    )
    assert changed.sum() > 10 * FRAMES and not (changed & ~inside).any()
    objs = sorted(out.glob("*.obj"))
    assert len(objs) == FRAMES and objs[0].name == f"{clip['mp4'].stem}_000000.obj"
    lines = objs[3].read_text().splitlines()
    vertices = np.array([[float(v) for v in line.split()[1:]] for line in lines if line.startswith("v ")])
    np.testing.assert_allclose(vertices, result["vertices"][3], atol=1e-5)


def test_a_folder_of_frames_in_natural_order_gives_the_video_models_meshes(clip, tmp_path):
    result, out = run(clip, tmp_path, clip["folder"], "video", "--fps", "25")
    check_meshes(result, train.predict(clip["video"], clip["clips"])[0])
    assert result["fps"] == 25.0 and result["kind"] == "video"
    assert overlay_frames(out / "walk_frames_overlay.mp4").shape == (FRAMES, SIZE, SIZE, 3)
    assert sorted(p.name for p in out.iterdir()) == ["walk_frames.npz", "walk_frames_overlay.mp4"]


def assert_squares_about(boxes: np.ndarray, centre: tuple, side: float) -> None:
    """Every crop (T, 4) is the square of `side` (to a pixel) about `centre` (to half a pixel)."""
    sides = boxes[:, 2:] - boxes[:, :2]
    assert (sides == round(side)).all()
    np.testing.assert_allclose((boxes[:, :2] + boxes[:, 2:]) / 2, np.broadcast_to(centre, (len(boxes), 2)), atol=0.5)


def test_a_given_box_is_cut_as_the_training_clips_frame_the_person(clip, tmp_path):
    result, _ = run(clip, tmp_path, clip["mp4"], "frame", "--box", "12,12,36,36")
    assert video.PERSON_SHARE == pytest.approx(0.797, abs=1e-3)
    assert_squares_about(result["boxes"], (24, 24), 24 / video.PERSON_SHARE)  # the person fills PERSON_SHARE of it
    assert set(result["found_by"]) == {"box"}
    x0, y0, x1, y1 = result["boxes"][0]
    frames = overlay_frames(clip["mp4"])  # the mp4 decoded: the frames the command read
    crops = np.stack([cv2.resize(f[y0:y1, x0:x1], (32, 32), interpolation=cv2.INTER_LINEAR) for f in frames])
    with torch.no_grad():
        theta = clip["frame"](train.images(torch.from_numpy(crops)))
    np.testing.assert_allclose(result["theta"], theta.numpy(), atol=1e-5, rtol=0)


def test_the_detectors_person_is_followed_filled_in_and_smoothed():
    person = (100.0, 50.0, 140.0, 170.0)  # 40×120 pixels
    someone_else = (400.0, 60.0, 430.0, 150.0)
    found = [[person, someone_else], [], [person], [someone_else], [person]] + [[person]] * 6
    boxes, by = video.person_crops(found, (240, 480))
    assert_squares_about(boxes, (120, 110), 120 / video.PERSON_SHARE)
    assert by[:5] == ["detector", "detector filled", "detector", "detector filled", "detector"]
    # a person who walks right, the box's foot jumping 5 pixels every other frame: the crop
    # follows the walk and holds still otherwise
    walk = [[(100.0 + 10 * t, 50.0, 140.0 + 10 * t, 170.0 + (5 if t % 2 else 0))] for t in range(40)]
    boxes, _ = video.person_crops(walk, (240, 480))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    np.testing.assert_allclose(centres[10:-10, 0], 120 + 10 * np.arange(10, 30), atol=1)
    assert np.ptp(centres[10:-10, 1]) <= 1 and np.ptp((boxes[:, 3] - boxes[:, 1])[10:-10]) <= 1
    jumpy = video.whole_pixels(np.stack([video.square_around(box[0]) for box in walk]))
    assert np.ptp(jumpy[:, 3] - jumpy[:, 1]) >= 5  # unsmoothed, the crop would jump with it
    # no detection anywhere: the frame's centred square
    boxes, by = video.person_crops([[]] * 3, (240, 480))
    assert (boxes == [120, 0, 360, 240]).all() and by == ["frame"] * 3


def test_a_point_in_the_crop_maps_to_the_image_and_back():
    rng = np.random.default_rng(0)
    boxes = np.array([[-30, 10, 170, 210], [5, -7, 45, 33]])
    points = rng.uniform(-1, 1, size=(2, 50, 2))
    pixels = video.crop_to_pixels(points, boxes)
    np.testing.assert_allclose(video.pixels_to_crop(pixels, boxes), points, atol=1e-12)
    np.testing.assert_allclose(
        video.crop_to_pixels(np.array([[[-1.0, -1.0], [1.0, 1.0]]] * 2), boxes), boxes.reshape(2, 2, 2)
    )
    # a bright pixel of the image is where the cut crop shows it, in the crop's units
    image = np.zeros((120, 160, 3), np.uint8)
    image[70:72, 30:32] = 255  # centred on pixel (31, 71)
    box = np.array([10, 40, 90, 120])  # 80 pixels, past the image's foot: black there
    crop = video.cut_crop(image, box, 40).max(-1).astype(float)
    ys, xs = np.mgrid[:40, :40]
    found = np.array([(xs * crop).sum(), (ys * crop).sum()]) / crop.sum() + 0.5  # pixel centres
    np.testing.assert_allclose(
        video.crop_to_pixels((found / 40 * 2 - 1)[None, None], box[None])[0, 0], [31, 71], atol=0.3
    )
    # a vertex projected by the weak-perspective camera and drawn through the overlay's pinhole
    vertex = torch.tensor([[[0.3, -0.5, 0.2]]])
    camera = torch.tensor([[0.8, 0.1, -0.2]])
    expected = video.crop_to_pixels(losses.project(vertex, camera).numpy(), box[None])[0, 0]
    intrinsics = video.overlay_intrinsics(camera[0].numpy(), box)
    seen = data.FLIP_X @ vertex[0, 0].numpy() + [0, 0, video.OVERLAY_DEPTH_M]
    np.testing.assert_allclose((intrinsics @ seen)[:2] / seen[2], expected, atol=0.1)


def test_the_mesh_at_the_true_parameters_is_drawn_over_the_rendered_body(clip):
    """The overlay's geometry end to end: the clip's own body and pose, the camera that puts its
    pelvis at the frame's centre, drawn over the frame set inside a larger image, cover the
    renderer's silhouette of the body; mirrored, they would not."""
    clips, info = clip["clips"], clip["mp4"].with_name(clip["mp4"].stem + "_info.mat")
    body = toy_body()
    vertices, _ = losses.posed(body, clips.rotations[0], clips.betas[0].expand(FRAMES, -1))
    camera = np.array([train.camera_scale(clips), 0.0, 0.0])
    frames, box = Clip(info).video(), np.array([20, 10, 20 + SIZE, 10 + SIZE])
    with BodyPainter(body, clips.betas[0].numpy(), 90, 70) as painter:
        for t in range(0, FRAMES, 3):
            image = np.zeros((70, 90, 3), np.uint8)
            image[10 : 10 + SIZE, 20 : 20 + SIZE] = frames[t]
            drawn = (video.draw(painter, image, vertices[t].numpy(), camera, box) != image).any(-1)
            silhouette = np.zeros_like(drawn)
            silhouette[10 : 10 + SIZE, 20 : 20 + SIZE] = Clip(info).segm(t) > 0
            assert (drawn & silhouette).sum() / (drawn | silhouette).sum() > 0.9
            mirrored = np.zeros_like(drawn)  # about the crop's centre
            mirrored[10 : 10 + SIZE, 20 : 20 + SIZE] = silhouette[10 : 10 + SIZE, 20 + SIZE - 1 : 19 : -1]
            assert (drawn & mirrored).sum() / (drawn | mirrored).sum() < 0.5


def test_bad_inputs_are_named(clip, tmp_path):
    common = ["--model", str(clip["frame_path"]), "--body", str(clip["body"]), "--out", str(tmp_path / "out")]

    def refused(source, *options, match=None):
        args = video.build_parser().parse_args([str(source), *common, *options])
        with pytest.raises(InputError, match=rf"^{re.escape(str(match or source))}: "):
            args.func(args)

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    refused(broken)
    refused(tmp_path / "missing.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no frames")
    refused(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name, size in (("a1.png", 48), ("a2.png", 48), ("a10.png", 40)):
        cv2.imwrite(str(mixed / name), np.zeros((size, size, 3), np.uint8))
    refused(mixed, match=mixed / "a10.png")
    (mixed / "a10.png").write_bytes((mixed / "a1.png").read_bytes()[:-30])  # cut short
    refused(mixed, match=mixed / "a10.png")
    refused(clip["mp4"], "--box=60,0,90,40")  # wholly right of the 48-pixel frames
    not_mesh = tmp_path / "bodynet.pt"
    torch.save({"state": {}}, not_mesh)
    # on the command line: one line naming the file, not a traceback
    with pytest.raises(SystemExit, match=rf"^error: {re.escape(str(not_mesh))}: not a mesh-video checkpoint"):
        video.main([str(clip["mp4"]), "--model", str(not_mesh), *common[2:]])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_videos_files_appear_together_or_not_at_all(clip, tmp_path, monkeypatch):
    _, out = run(clip, tmp_path, clip["mp4"], "frame", "--obj")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == FRAMES + 2

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(video, "obj_text", full_disk)
    with pytest.raises(SystemExit, match=rf"^error: {re.escape(str(out))}: cannot write \(No space left on device\)"):
        run(clip, tmp_path, clip["mp4"], "video", "--obj")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier set, whole; no hidden folder
    monkeypatch.undo()
    result, _ = run(clip, tmp_path, clip["mp4"], "video")
    assert result["kind"] == "video" and sorted(p.name for p in out.iterdir()) == sorted(
        name for name in before if not name.endswith(".obj")
    )
