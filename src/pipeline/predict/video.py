"""A trained mesh-video model on your own video: a mesh per frame, and the video with the mesh
drawn over it (Liu, Akhtar & Mian, "Temporally Coherent Full 3D Mesh Human Pose Recovery from
Monocular Video", 2019; `pipeline.video_mesh`).

    python -m pipeline.predict.video walk.mp4 --model results/video_mesh/video/model.pt \\
        --body resources/body_models/anny/smpl_neutral.pkl --out predictions/ [--box x0,y0,x1,y1] [--obj]

INPUT is a video file OpenCV reads (mp4, avi, ...) or a folder of frame images (JPEG, PNG, BMP,
WebP, TIFF), taken in their names' natural order (frame2 before frame10). --model is a
checkpoint of `python -m pipeline.video_mesh train`: a frame model runs frame by frame, a
video model over the whole sequence at once. --body is the body model it was trained with
(`video_mesh train --body`: the config's video_mesh.gender, neutral by default).

In --out, after the input's name (the file's stem, or the folder's name):
    <name>.npz           per frame (T of them): vertices (T, V, 3) float32 and joints (T, 24, 3)
                         in the model's camera frame, pelvis-relative metres (x to the image's
                         left, y down, z away from the camera: the image's x is -x), faces
                         (F, 3); Θ as theta (T, P), rotations (T, 24, 3, 3) and pose (T, 72,
                         axis-angle; the first joint's the body's own turn in the camera frame),
                         betas (T, 10), camera (T, 3: s, tx, ty, the weak-perspective camera to
                         the crop's [-1, 1]); boxes (T, 4: x0, y0, x1, y1, the square crop in
                         image pixels) and found_by (T,: box, detector, detector filled, frame);
                         fps, image_size (H, W) and kind (frame or video)
    <name>_overlay.mp4   the input with the mesh drawn over each frame, at its rate
    <name>_000000.obj …  with --obj, each frame's mesh (the npz's vertices and faces)

The crop: the model was trained on clips whose camera follows the pelvis through a telephoto
lens, the person filling PERSON_SHARE (about 0.8) of the frame's side. The person's box, given
(--box, the same for every frame) or found by OpenCV's HOG people detector in each frame
(followed from frame to frame, gaps filled, a running median and mean over SMOOTHING_FRAMES
frames), is cut as the square about its centre whose side is the box's longer side over
PERSON_SHARE (black past the frame's edge); where no frame has a detection, the frame's
centred square. A video model reads the whole sequence at once: its memory grows with it.

Refused with a line naming the file: a video OpenCV decodes no frame of, a folder without frame
images or with one of another size, an image that is truncated or corrupt, a checkpoint that is
no mesh-video model, a --box wholly outside the frames. A video's files appear together or not
at all (written into a hidden folder, then renamed in); files of an earlier run of the same name
that this one does not write (its OBJ files) are removed.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.cli import Parser, add_device_arguments, pixel_box, run_command
from pipeline.errors import InputError
from pipeline.images import IMAGE_SUFFIXES, read_rgb
from pipeline.predict.body import detections
from pipeline.predict.write import BodyPainter, blend, check_writable, move_in, obj_text, staged
from pipeline.video_mesh.data import FLIP_X, telephoto_focal
from pipeline.video_mesh.losses import posed
from pipeline.video_mesh.network import FrameModel, VideoModel, split_parameters
from pipeline.video_mesh.train import images

log = logging.getLogger("pipeline.predict")

# The training clips' framing (config.yaml's video_mesh.dataset: a 180 mm lens on a 32 mm
# sensor, 12 m from the pelvis): a person 1.7 m tall spans 180/32 · 1.7/12 ≈ 0.80 of the
# frame's side. The checkpoint does not hold the clips' settings, so these are the defaults'.
TRAINING_LENS_MM = 180.0
TRAINING_DISTANCE_M = 12.0
PERSON_HEIGHT_M = 1.7
PERSON_SHARE = telephoto_focal(TRAINING_LENS_MM, 1) * PERSON_HEIGHT_M / TRAINING_DISTANCE_M
# HOG's boxes jump by a tenth of their size from frame to frame, and now and then one is not
# the person: a running median (for the odd box), then a running mean (for the jitter), each
# over a third of a second at 25–30 frames/s, hold the crop about as steady as the training
# clips' camera
SMOOTHING_FRAMES = 9
DEFAULT_RATE = 30.0  # frames per second of a folder of frames
FRAME_BATCH = 64  # frames a frame model reads at once
# The overlay draws the body this far away through a pinhole whose focal length makes it the
# weak-perspective camera's size: a body 0.5 m deep is off the weak perspective by z/depth,
# under half a percent (the renderer sees 0.1 to 1000 m)
OVERLAY_DEPTH_M = 100.0


def natural_key(name: str) -> list:
    """A sort key of a file name that orders its digit runs as numbers (frame2 < frame10)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of frame images, read anew at each pass (frames are not held)."""

    path: Path
    files: tuple[Path, ...]  # a folder's images in natural order; empty for a video file
    rate: float  # frames per second

    @property
    def name(self) -> str:
        return self.path.name if self.files else self.path.stem

    def frames(self) -> Iterator[tuple[str, np.ndarray]]:
        """Each frame in order: what names it in an error, and the frame (H, W, 3) RGB uint8."""
        from pipeline.realtime.track import open_video

        if self.files:
            for file in self.files:
                yield str(file), read_rgb(file)
            return
        _, frames = open_video(self.path)
        for index, frame in enumerate(frames):
            yield f"{self.path} (frame {index})", frame


def open_source(path: Path, fps: float | None = None) -> FrameSource:
    """The frames at `path` (a video file or a folder of images) at `fps` (None: a video's
    own rate, else DEFAULT_RATE); an InputError naming a path that holds no frames."""
    from pipeline.realtime.track import open_video

    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
            key=lambda p: natural_key(p.name),
        )
        files = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise InputError(f"{path}: no frame images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder")
        return FrameSource(path, tuple(files), fps or DEFAULT_RATE)
    if not path.is_file():
        raise InputError(f"{path}: no such video file or folder of frames")
    rate, _ = open_video(path)
    return FrameSource(path, (), fps or rate)


def scan(source: FrameSource, detect: bool, progress: bool = True) -> tuple[tuple[int, int], list[list[tuple]]]:
    """Every frame read once: their size (H, W) and per frame the HOG detector's people boxes
    (x0, y0, x1, y1; none looked for unless `detect`); an InputError naming a frame whose size
    is not the first's."""
    from tqdm import tqdm

    size, found = None, []
    frames = source.frames()
    bar = tqdm(frames, total=len(source.files) or None, desc=f"{source.name} read", unit="frame", disable=not progress)
    for label, image in bar:
        if size is None:
            size = image.shape[:2]
        elif image.shape[:2] != size:
            (h, w), (height, width) = image.shape[:2], size
            raise InputError(
                f"{label}: {w}×{h} pixels, the first frame {width}×{height}: a video's frames share a size"
            )
        found.append(detections(image) if detect else [])
    return size, found


def square_around(box: tuple) -> np.ndarray:
    """The crop (3,: centre x, centre y, side, pixels) of a person's box (x0, y0, x1, y1): the
    person fills PERSON_SHARE of it, as in the training clips."""
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / PERSON_SHARE])


def follow(found: list[list[tuple]]) -> list[tuple | None]:
    """Per frame the detection that continues the person, or None: the tallest in the first
    frame with any, then the one whose centre lies nearest the last followed, if within that
    box's height of it (farther, it is someone else)."""
    followed, last = [], None
    for boxes in found:
        pick = None
        if boxes and last is None:
            pick = max(boxes, key=lambda b: b[3] - b[1])
        elif boxes:
            centre = square_around(last)[:2]
            pick = min(boxes, key=lambda b: np.linalg.norm(square_around(b)[:2] - centre))
            if np.linalg.norm(square_around(pick)[:2] - centre) > last[3] - last[1]:
                pick = None
        followed.append(pick)
        last = pick if pick is not None else last
    return followed


def filled_squares(followed: list[tuple | None]) -> np.ndarray:
    """(T, 3) crops (`square_around`) of the followed boxes, frames without one filled in
    linearly between their neighbours (held before the first and after the last), then the
    running median and the running mean over SMOOTHING_FRAMES."""
    from scipy.ndimage import median_filter, uniform_filter1d

    known = [t for t, box in enumerate(followed) if box is not None]
    squares = np.stack([square_around(followed[t]) for t in known])
    frames = np.arange(len(followed))
    filled = np.stack([np.interp(frames, known, squares[:, k]) for k in range(3)], axis=1)
    steady = median_filter(filled, size=(SMOOTHING_FRAMES, 1), mode="nearest")
    return uniform_filter1d(steady, SMOOTHING_FRAMES, axis=0, mode="nearest")


def whole_pixels(squares: np.ndarray) -> np.ndarray:
    """(T, 3) crops (centre x, centre y, side) -> (T, 4) int boxes x0, y0, x1, y1 in whole
    pixels, square: the crop is cut without resampling twice."""
    side = np.maximum(np.round(squares[:, 2]), 1).astype(np.int64)
    x0 = np.round(squares[:, 0] - side / 2).astype(np.int64)
    y0 = np.round(squares[:, 1] - side / 2).astype(np.int64)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def person_crops(
    found: list[list[tuple]], image_size: tuple[int, int], box: tuple | None = None
) -> tuple[np.ndarray, list[str]]:
    """Each frame's crop (T, 4: x0, y0, x1, y1 int, square) and what placed it: the given
    `box` ('box'), else the person the detector's boxes `found` follow ('detector'; 'detector
    filled' where a frame's was filled in), else the frame's centred square ('frame')."""
    frames = len(found)
    if box is not None:
        return whole_pixels(np.tile(square_around(box), (frames, 1))), ["box"] * frames
    followed = follow(found)
    if all(b is None for b in followed):
        height, width = image_size
        side = min(height, width)
        x0, y0 = (width - side) // 2, (height - side) // 2
        return np.tile(np.array([x0, y0, x0 + side, y0 + side], np.int64), (frames, 1)), ["frame"] * frames
    by = ["detector" if b is not None else "detector filled" for b in followed]
    return whole_pixels(filled_squares(followed)), by


def check_box(source: FrameSource, box: tuple | None, image_size: tuple[int, int]) -> None:
    """An InputError naming the input where the given `box` lies wholly outside its frames."""
    height, width = image_size
    if box is not None and (box[2] <= 0 or box[3] <= 0 or box[0] >= width or box[1] >= height):
        text = ",".join(f"{v:g}" for v in box)
        raise InputError(f"{source.path}: the box {text} (--box) lies outside the {width}×{height} frames")


def cut_crop(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square `box` (x0, y0, x1, y1 whole pixels) of `image` (H, W, 3), black past its
    edge, resized to (size, size, 3) as the training clips were (area averaging, when smaller)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    height, width = image.shape[:2]
    window = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix1 > ix0 and iy1 > iy0:
        window[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = image[iy0:iy1, ix0:ix1]
    interpolation = cv2.INTER_AREA if x1 - x0 >= size else cv2.INTER_LINEAR
    return cv2.resize(window, (size, size), interpolation=interpolation)


def crop_to_pixels(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Points (T, N, 2) in each frame's crop, [-1, 1] across it (the training clips' 2D joints'
    units, where the weak-perspective camera puts the body) -> image pixels (T, N, 2), given
    the crops (T, 4)."""
    side = (boxes[:, 2] - boxes[:, 0]).astype(np.float64)[:, None, None]
    return boxes[:, None, :2] + (points + 1) / 2 * side


def pixels_to_crop(pixels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """`crop_to_pixels`' inverse: image pixels (T, N, 2) -> crop units (T, N, 2)."""
    side = (boxes[:, 2] - boxes[:, 0]).astype(np.float64)[:, None, None]
    return (pixels - boxes[:, None, :2]) / side * 2 - 1


def overlay_intrinsics(camera: np.ndarray, box: np.ndarray, depth: float = OVERLAY_DEPTH_M) -> np.ndarray:
    """The pinhole K (3, 3) that draws a body `depth` metres away where the weak-perspective
    camera (3,: s, tx, ty) puts it in the crop `box` (4,): s·side/2 pixels a metre at that
    depth, the principal point where (tx, ty) puts the pelvis."""
    s, tx, ty = (float(v) for v in camera)
    half = float(box[2] - box[0]) / 2
    focal = s * half * depth
    return np.array([[focal, 0.0, box[0] + half * (1 + tx)], [0.0, focal, box[1] + half * (1 + ty)], [0.0, 0.0, 1.0]])


def draw(painter: BodyPainter, image: np.ndarray, vertices: np.ndarray, camera: np.ndarray, box: np.ndarray):
    """The mesh (V, 3, the model's camera frame) over `image` (H, W, 3 RGB) where the
    weak-perspective `camera` (3,) puts it in the crop `box` (4,); the image as it is where the
    camera's scale is not positive (no body in front of it)."""
    if camera[0] <= 0:
        return image
    intrinsics = overlay_intrinsics(camera, box)
    # FLIP_X turns the model's proper frame back into the one its training frames were drawn in
    frame = painter.paint(vertices, intrinsics, image, FLIP_X, np.array([0.0, 0.0, OVERLAY_DEPTH_M]))
    return blend(image, frame)


@torch.no_grad()
def parameters(model: FrameModel | VideoModel, crops: np.ndarray) -> torch.Tensor:
    """Θ (T, P) of crops (T, S, S, 3) uint8: a frame model's frame by frame, a video model's
    over the whole sequence at once (`pipeline.video_mesh.train.predict`)."""
    model.eval()
    device = next(model.parameters()).device
    frames = torch.from_numpy(crops)
    if isinstance(model, VideoModel):
        return model(images(frames)[None].to(device))[0].cpu()
    return torch.cat(
        [model(images(frames[t : t + FRAME_BATCH]).to(device)).cpu() for t in range(0, len(frames), FRAME_BATCH)]
    )


@torch.no_grad()
def meshes(body, theta: torch.Tensor) -> dict[str, np.ndarray]:
    """Θ (T, P) -> the npz's per-frame arrays: vertices (T, V, 3), joints (T, 24, 3), theta,
    rotations (T, 24, 3, 3), pose (T, 72), betas (T, 10), camera (T, 3)."""
    from scipy.spatial.transform import Rotation

    parts = split_parameters(theta.float())
    posed_frames = [
        posed(body, parts["rotations"][t : t + FRAME_BATCH], parts["betas"][t : t + FRAME_BATCH])
        for t in range(0, len(theta), FRAME_BATCH)
    ]
    rotations = parts["rotations"].numpy()
    pose = Rotation.from_matrix(rotations.reshape(-1, 3, 3).astype(np.float64)).as_rotvec().reshape(len(theta), -1)
    return {
        "vertices": torch.cat([v for v, _ in posed_frames]).float().numpy(),
        "joints": torch.cat([j for _, j in posed_frames]).float().numpy(),
        "theta": theta.float().numpy(),
        "rotations": rotations,
        "pose": pose.astype(np.float32),
        "betas": parts["betas"].numpy(),
        "camera": parts["camera"].numpy(),
    }


def crops_of(source: FrameSource, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each frame's crop (T, size, size, 3) uint8; an InputError naming the input where a
    second reading gives other frames than the first (the file changed)."""
    crops = [cut_crop(image, boxes[t], size) for t, (_, image) in zip(range(len(boxes)), source.frames())]
    if len(crops) != len(boxes):
        raise InputError(f"{source.path}: read again, it gave {len(crops)} frames, not {len(boxes)}")
    return np.stack(crops)


def write_overlay(path: Path, source: FrameSource, result: dict, painter: BodyPainter, progress: bool) -> None:
    """The input with each frame's mesh drawn over it, as mp4 at the input's rate."""
    from tqdm import tqdm

    height, width = result["image_size"]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), source.rate, (int(width), int(height)))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write mp4 video")
    frames = len(result["boxes"])
    try:
        read = zip(range(frames), source.frames())
        for t, (_, image) in tqdm(read, total=frames, desc=f"{source.name} draw", unit="frame", disable=not progress):
            drawn = draw(painter, image, result["vertices"][t], result["camera"][t], result["boxes"][t])
            writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def write_outputs(out: Path, source: FrameSource, result: dict, body, obj: bool, progress: bool = True) -> list[str]:
    """<name>.npz, <name>_overlay.mp4 and with `obj` one OBJ a frame, written as one set into
    `out` (whole or not at all); the files' names."""
    name = source.name
    width = max(6, len(str(len(result["boxes"]) - 1)))
    with staged(out, name) as staging:
        np.savez(staging / f"{name}.npz", **result)
        betas = result["betas"].mean(axis=0)  # the outfit's placement only
        with BodyPainter(body, betas, int(result["image_size"][1]), int(result["image_size"][0])) as painter:
            write_overlay(staging / f"{name}_overlay.mp4", source, result, painter, progress)
        if obj:
            for t, vertices in enumerate(result["vertices"]):
                (staging / f"{name}_{t:0{width}d}.obj").write_text(obj_text(vertices, result["faces"]))
        written = sorted(p.name for p in staging.iterdir())
        earlier = re.compile(rf"{re.escape(name)}(\.npz|_overlay\.mp4|_\d{{6,}}\.obj)")
        stale = [p.name for p in out.iterdir() if earlier.fullmatch(p.name) and p.name not in written]
        move_in(staging, out, stale)
    return written


def predict_video(
    source: FrameSource,
    model: FrameModel | VideoModel,
    body,
    out: Path,
    box: tuple | None = None,
    obj: bool = False,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """The model over every frame of `source`, its meshes and overlay written into `out`
    (`write_outputs`); returns what the npz holds."""
    size, found = scan(source, detect=box is None, progress=progress)
    check_box(source, box, size)
    boxes, found_by = person_crops(found, size, box)
    theta = parameters(model, crops_of(source, boxes, model.config.input_size))
    result = meshes(body, theta) | {
        "faces": np.asarray(body.faces, np.int64),
        "boxes": boxes,
        "found_by": np.array(found_by),
        "fps": np.float64(source.rate),
        "image_size": np.array(size, np.int64),
        "kind": np.array("video" if isinstance(model, VideoModel) else "frame"),
    }
    write_outputs(out, source, result, body, obj, progress)
    return result


def predict(args: argparse.Namespace) -> None:
    from pipeline.body_model.model import BodyModel
    from pipeline.training.loop import pick_device
    from pipeline.video_mesh.__main__ import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    source = open_source(args.input, args.fps)
    model = load_model(args.model).to(pick_device(args.device))
    body = BodyModel.from_file(args.body).float()
    check_writable(args.out)
    result = predict_video(source, model, body, args.out, box=args.box, obj=args.obj)
    placed = ", ".join(sorted({str(by) for by in result["found_by"]}))
    log.info("%s: %d frames (crops: %s) -> %s", source.path, len(result["boxes"]), placed, args.out)


def frame_rate(text: str) -> float:
    """An argument type: frames per second, above 0."""
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not 0 < rate < float("inf"):
        raise argparse.ArgumentTypeError(f"a frame rate is a positive number, got {text!r}")
    return rate


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser."""
    parser = Parser(
        prog="python -m pipeline.predict.video",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="a video file (mp4, avi, ...) or a folder of frame images")
    parser.add_argument(
        "--model", required=True, type=Path, help="a mesh-video checkpoint (video_mesh train's model.pt)"
    )
    parser.add_argument("--body", required=True, type=Path, help="the body model it was trained with (its --body)")
    parser.add_argument("--out", required=True, type=Path, help="the folder the outputs go to")
    parser.add_argument(
        "--box",
        type=pixel_box,
        help="the person's box x0,y0,x1,y1 in pixels, for every frame (--box=-5,0,90,200 where it starts with "
        "a minus); default: found by the HOG detector frame by frame",
    )
    parser.add_argument("--obj", action="store_true", help="also write each frame's mesh as an OBJ file")
    parser.add_argument(
        "--fps", type=frame_rate, help=f"frames per second (default: a video's own, a folder's {DEFAULT_RATE:g})"
    )
    add_device_arguments(parser)
    parser.set_defaults(func=predict)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
