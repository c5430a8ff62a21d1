"""What a prediction leaves on disk: JSON, meshes (OBJ), the parts and the body over the
image (PNG, drawn by the synthesis renderer). An image's files appear together or not at all;
a folder that cannot be written (read-only, a full disk) is named in an InputError."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import measure

from pipeline.atomic import remove_stale_temporaries, temporary_name
from pipeline.body_model.skeleton import VOXEL_PARTS
from pipeline.errors import InputError
from pipeline.evaluation.frames import voxels_to_camera
from pipeline.figures import labels_to_rgb
from pipeline.predict.body import Prediction
from pipeline.synthesis import appearance
from pipeline.synthesis.generate import face_parts, vertex_face_incidence, vertex_normals
from pipeline.synthesis.renderer import BodyRenderer

PART_CLASSES = 14
# the files of one image's prediction, after its name; part voxels only from a model that has them
SET_SUFFIXES = (".json", "_body.obj", "_voxels.obj", "_part_voxels.obj", "_parts.png", "_overlay.png", "_views.png")


def obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """A Wavefront OBJ of a triangle mesh: vertices (V, 3), faces (F, 3) counted from 0."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def part_voxels_obj(prediction: Prediction) -> str:
    """The predicted part voxels as one OBJ, a group (`g <part>`) per body part holding that
    part's surface in camera metres."""
    lines, offset = [], 0
    for label, name in enumerate(VOXEL_PARTS, start=1):
        vertices, faces = voxel_mesh(prediction, (prediction.part_voxels == label).astype(np.float32))
        lines.append(f"g {name}")
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
        lines += [f"f {a + offset + 1} {b + offset + 1} {c + offset + 1}" for a, b, c in faces]
        offset += len(vertices)
    return "\n".join(lines) + "\n"


def voxel_mesh(prediction: Prediction, volume: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The iso-surface at 0.5 of the predicted voxels' probabilities (or of `volume`, (D, D, D)
    in [0, 1] on the same grid) as a mesh in camera metres (empty if none)."""
    probabilities = prediction.voxels if volume is None else volume
    if not (probabilities > 0.5).any():
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    verts, faces, _, _ = measure.marching_cubes(np.pad(probabilities, 1), level=0.5)
    points = (verts - 1.0)[:, ::-1]  # (z, y, x) → (x, y, z)
    height, width = prediction.image_size
    principal = np.array([width / 2, height / 2])
    resolution = probabilities.shape[-1]
    camera = voxels_to_camera(
        points,
        resolution,
        prediction.crop_centre,
        prediction.crop_side,
        prediction.root_depth,
        prediction.focal,
        principal,
    )
    return camera, faces[:, ::-1]  # the axis swap reverses the winding


class BodyPainter:
    """The synthesis renderer set up once for one body (its shape, plainly dressed and lit) at
    one picture size; each `paint` draws the body at other vertices, camera and background.
    One OpenGL context for every view of a body at that size."""

    def __init__(self, model, betas: np.ndarray, width: int, height: int) -> None:
        self.renderer = BodyRenderer(
            model.faces.astype(np.int64), face_parts(model), appearance.CLOTHING_GLSL, appearance.SH_GLSL, width, height
        )
        with torch.no_grad():
            rest = model(torch.as_tensor(betas, dtype=torch.float32)[None], torch.zeros(1, 72))
        outfit = appearance.sample_outfit(np.random.default_rng(0), "overlay")
        landmarks = appearance.body_landmarks(rest.joints[0].numpy())
        self.renderer.set_static(rest.vertices[0].numpy(), appearance.outfit_uniforms(outfit, landmarks))
        self.renderer.set_light(np.array([1.2, -0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
        self.faces = torch.as_tensor(model.faces.astype(np.int64))
        self.incidence = vertex_face_incidence(model.faces, model.num_vertices)

    def paint(
        self,
        vertices: np.ndarray,
        intrinsics: np.ndarray,
        background: np.ndarray,
        rotation: np.ndarray | None = None,
        translation: np.ndarray | None = None,
    ):
        """The body at `vertices` (V, 3, camera metres, or taken there by `rotation` (3, 3) and
        `translation` (3,)) over `background` (H, W, 3 uint8): the renderer's Frame."""
        rotation = np.eye(3) if rotation is None else rotation
        translation = np.zeros(3) if translation is None else translation
        self.renderer.set_camera(rotation, translation, intrinsics)
        self.renderer.set_background(np.ascontiguousarray(background))
        posed = torch.as_tensor(vertices, dtype=torch.float32)[None]
        normals = vertex_normals(posed, self.incidence, self.faces)[0].numpy()
        v = vertices.astype(np.float32)
        return self.renderer.render(v, v, v, normals)

    def __enter__(self) -> BodyPainter:
        return self

    def __exit__(self, *exc) -> None:
        self.renderer.ctx.release()


def overlay(image: np.ndarray, prediction: Prediction, model) -> np.ndarray:
    """The fitted body drawn over the image (RGB uint8) where the camera saw it."""
    height, width = image.shape[:2]
    intrinsics = np.array([[prediction.focal, 0, width / 2], [0, prediction.focal, height / 2], [0, 0, 1.0]])
    with BodyPainter(model, prediction.betas, width, height) as painter:
        return blend(image, painter.paint(prediction.vertices, intrinsics, image))


def blend(image: np.ndarray, frame) -> np.ndarray:
    """The painted body (the renderer's Frame) laid over `image` (H, W, 3 RGB uint8), the image
    showing through a little where the body is."""
    drawn = frame.parts > 0
    blended = image.copy()
    blended[drawn] = (0.35 * image[drawn] + 0.65 * frame.rgb[drawn]).astype(np.uint8)
    return blended


def turntable(prediction: Prediction, model, size: int = 256, yaws=(0.0, 90.0, 180.0)) -> np.ndarray:
    """The fitted body as the camera sees it, then turned 90° and 180° about its own vertical
    axis (RGB uint8, size × len(yaws)·size), framed 2.4 m tall at 3 m: a wrong depth or lean
    shows here though the overlay looks right."""
    centre = prediction.vertices.mean(axis=0)
    distance, framed_height = 3.0, 2.4
    focal = size * distance / framed_height
    intrinsics = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
    background = np.full((size, size, 3), 235, np.uint8)
    panels = []
    with BodyPainter(model, prediction.betas, size, size) as painter:
        for yaw in np.radians(yaws):
            c, s = np.cos(yaw), np.sin(yaw)
            turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
            vertices = (prediction.vertices - centre) @ turn.T + np.array([0.0, 0.0, distance])
            panels.append(painter.paint(vertices, intrinsics, background).rgb)
    return np.concatenate(panels, axis=1)


def record(name: str, prediction: Prediction, body_model: str) -> dict:
    """The JSON a prediction is written as."""
    return {
        "image": name,
        "person_box": list(prediction.box),
        "person_found_by": prediction.found_by,
        "whole_body": prediction.whole_body,
        "crop": {"centre": prediction.crop_centre.tolist(), "side": prediction.crop_side},
        "focal_length": prediction.focal,
        "focal_length_given": prediction.focal_given,
        "root_depth": prediction.root_depth,
        "metric_note": "camera-frame metres, x right, y down, z forward. The depth is estimated from the body "
        "model's bone lengths through the focal length"
        + ("" if prediction.focal_given else ", itself assumed (the image's longer side): give --focal")
        + "; sizes and distances are only as good as both.",
        "joints2d": np.round(prediction.joints2d, 2).tolist(),
        "joints3d": np.round(prediction.joints3d, 5).tolist(),
        "body_model": body_model,
        "pose": np.round(prediction.pose, 6).tolist(),
        "betas": np.round(prediction.betas, 6).tolist(),
        "transl": np.round(prediction.transl, 6).tolist(),
        "parameters_note": "pose, betas and transl give the body with x negated (the frame the networks' "
        "training data put bodies in): the mesh is the model's vertices at them, x negated",
        "confidence": prediction.confidence,
    }


@contextmanager
def writing_into(folder: Path) -> Iterator[None]:
    """Turn an OSError of the block (a read-only folder, a full disk) into an InputError naming
    `folder`: `<folder>: cannot write (No space left on device)`."""
    try:
        yield
    except OSError as error:
        raise InputError(f"{folder}: cannot write ({error.strerror or error})") from error


def check_writable(folder: Path) -> None:
    """Create `folder` and write a file into it (removed again), or an InputError naming it:
    before the networks run, not after."""
    with writing_into(folder):
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(folder / "write-check")
        try:
            probe.write_bytes(b"")
        finally:
            probe.unlink(missing_ok=True)


def encode_png(picture: np.ndarray) -> bytes:
    """An RGB uint8 picture (H, W, 3) as PNG bytes."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(picture[..., ::-1]))
    if not ok:
        raise ValueError(f"OpenCV cannot encode a {picture.shape} picture as PNG")
    return data.tobytes()


def write_set(out: Path, name: str, files: dict[str, bytes]) -> None:
    """Write an image's files ({file name: content}) into `out` whole or not at all: into a
    hidden folder beside them first, then each renamed in. Files of an earlier set of `name`
    that this one lacks are removed, so no file of another run stays beside it. An OSError
    (a read-only folder, a full disk) becomes an InputError naming `out`, and leaves none of
    the new files."""
    with staged(out, name) as staging:
        for filename, content in files.items():
            (staging / filename).write_bytes(content)
        move_in(staging, out, [f"{name}{suffix}" for suffix in SET_SUFFIXES if f"{name}{suffix}" not in files])


@contextmanager
def staged(out: Path, name: str) -> Iterator[Path]:
    """A hidden, empty folder in `out` to write a set of files named after `name` into, for
    `move_in` to rename them in; removed after the block. An OSError of the block (a
    read-only folder, a full disk) becomes an InputError naming `out`."""
    with writing_into(out):
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out / name)  # of writers killed mid-set
        staging = temporary_name(out / name)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def move_in(staging: Path, out: Path, stale: list[str]) -> None:
    """Rename every file of `staging` into `out` and remove the `stale` file names there; if a
    rename fails, remove the set's files already renamed in (never a mix of two runs)."""
    moved = []
    try:
        for item in sorted(staging.iterdir()):
            os.replace(item, out / item.name)
            moved.append(out / item.name)
    except OSError:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    for filename in stale:
        (out / filename).unlink(missing_ok=True)


def write_prediction(out: Path, name: str, image: np.ndarray, prediction: Prediction, model, body_model: str) -> dict:
    """<name>.json, _body.obj, _voxels.obj, _parts.png, _overlay.png and _views.png in `out`,
    and _part_voxels.obj where the prediction holds part voxels: all drawn first, then written
    as one set (`write_set`), whole or not at all."""
    data = record(name, prediction, body_model)
    voxel_vertices, voxel_faces = voxel_mesh(prediction)
    parts = labels_to_rgb(prediction.parts, PART_CLASSES)
    side = max(256, prediction.parts.shape[0])
    texts = {
        f"{name}.json": json.dumps(data, indent=1) + "\n",
        f"{name}_body.obj": obj_text(prediction.vertices, model.faces),
        f"{name}_voxels.obj": obj_text(voxel_vertices, voxel_faces),
    }
    if prediction.part_voxels is not None:
        texts[f"{name}_part_voxels.obj"] = part_voxels_obj(prediction)
    pictures = {
        f"{name}_parts.png": cv2.resize(parts, (side, side), interpolation=cv2.INTER_NEAREST),
        f"{name}_overlay.png": overlay(image, prediction, model),
        f"{name}_views.png": turntable(prediction, model),
    }
    files = {filename: text.encode() for filename, text in texts.items()}
    files |= {filename: encode_png(picture) for filename, picture in pictures.items()}
    write_set(out, name, files)
    return data
