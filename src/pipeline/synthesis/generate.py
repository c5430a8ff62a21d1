"""Synthetic clips, SURREAL's way: plan every random draw from the clip's identity, pose the
body through the motion, render every pass, and write the clip in SURREAL's layout.

A sequence (one motion) is cut into clips of `clip_length` frames overlapping by the run's
overlap (SURREAL's runs 0, 1, 2 overlap by 50, 70 and 30 %). Per clip, as in SURREAL:
gender (even odds), a body shape from the split's shape bank, an outfit from the split's
bank, a background photograph from the split's list, 9 spherical-harmonic light
coefficients from the split's ranges, the camera distance ~ N(8 m, 1 m) and the body's
rotation about the vertical `zrot` ~ U(0, 2π). The camera looks at the pelvis of the first
frame and stays still. A clip whose camera cannot see the person (on, inside or behind the
body, or too far for a pixel of it) is refused, named, before anything of it is written
(`check_person_seen`).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline import clips
from pipeline.body_model.model import BodyModel
from pipeline.body_model.skeleton import voxel_part_labels
from pipeline.errors import InputError
from pipeline.seeding import seeded_generator
from pipeline.synthesis import appearance, camera
from pipeline.synthesis.backgrounds import crop_to, read_rgb
from pipeline.synthesis.motion import Motion
from pipeline.synthesis.renderer import NEAR, BodyRenderer, Frame

GENDER_CODES = {"female": 0, "male": 1}  # SURREAL's `gender` field
RUN_OVERLAPS = (0.5, 0.7, 0.3)  # SURREAL's clip overlaps for runs 0, 1, 2
PASSES = ("segm", "depth", "gtflow", "flow", "normal")


@dataclass
class SynthesisSettings:
    """How clips are drawn and rendered. The fields without a default are the config's
    (`seed`, `synthesis.*`: docs/config.md); the others are SURREAL's own unless a study or
    the action clips set them."""

    seed: int
    clip_length: int
    shapes: int  # per split and gender
    outfits: int  # per split
    passes: tuple[str, ...]
    lossless: bool  # PNG frames beside the mp4
    light: appearance.LightRange
    # 0: the whole bank; else each clip wears its drawn outfit modulo this, all else drawn as
    # with the whole bank (SURREAL's clothing study)
    camera_distance: tuple[float, float]  # metres: the normal's mean and deviation
    outfits_used: int = 0
    width: int = camera.WIDTH
    height: int = camera.HEIGHT


@dataclass
class ClipPlan:
    """Everything random about one clip."""

    split: str
    run: int
    sequence: str
    clip: int  # 1-based, as in SURREAL's file names
    start: int  # first frame in the motion
    frames: int
    stride: int
    gender: str
    shape_index: int
    outfit_index: int
    background_index: int
    light: np.ndarray = field(repr=False)
    cam_dist: float = 8.0
    zrot: float = 0.0
    crop_seed: int = 0

    @property
    def stem(self) -> str:
        return clips.clip_stem(self.sequence, self.clip)


def clip_starts(length: int, clip_length: int, stride: int) -> list[int]:
    """First frames of a sequence's clips (SURREAL: the last clip may be shorter)."""
    count = max(1, math.ceil((length - (clip_length - stride)) / stride))
    return [k * stride for k in range(count)]


def run_stride(clip_length: int, run: int) -> int:
    return max(1, int(round(clip_length * (1.0 - RUN_OVERLAPS[run % len(RUN_OVERLAPS)]))))


def plan_clips(
    motions: list[Motion],
    split: str,
    run: int,
    settings: SynthesisSettings,
    genders: list[str],
    num_backgrounds: int,
) -> list[ClipPlan]:
    stride = run_stride(settings.clip_length, run)
    plans = []
    for motion in motions:
        for index, start in enumerate(clip_starts(len(motion), settings.clip_length, stride)):
            rng = seeded_generator(settings.seed, "clip", split, run, motion.name, index + 1)
            plans.append(
                ClipPlan(
                    split=split,
                    run=run,
                    sequence=motion.name,
                    clip=index + 1,
                    start=start,
                    frames=min(settings.clip_length, len(motion) - start),
                    stride=stride,
                    gender=genders[int(rng.integers(len(genders)))],
                    shape_index=int(rng.integers(settings.shapes)),
                    outfit_index=int(rng.integers(settings.outfits)) % (settings.outfits_used or settings.outfits),
                    background_index=int(rng.integers(num_backgrounds)),
                    light=appearance.sample_light(rng, settings.light),
                    cam_dist=float(rng.normal(*settings.camera_distance)),
                    zrot=float(rng.uniform(0.0, 2.0 * math.pi)),
                    crop_seed=int(rng.integers(2**31)),
                )
            )
    return plans


def shape_bank(seed: int, split: str, gender: str, count: int, num_betas: int = 10) -> np.ndarray:
    """A split's body shapes (count, num_betas); SMPL's coefficients are ~ N(0, I) over people."""
    return seeded_generator(seed, "shapes", split, gender).normal(size=(count, num_betas))


def outfit_bank(seed: int, split: str, count: int) -> list[appearance.Outfit]:
    return [
        appearance.sample_outfit(seeded_generator(seed, "outfit", split, index), f"procedural_{split}_{index:04d}")
        for index in range(count)
    ]


def vertex_normals(vertices: torch.Tensor, incidence: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (T, V, 3) of meshes (T, V, 3); `incidence` is the
    sparse (V, F) vertex-face matrix of `faces` (F, 3)."""
    frames = len(vertices)
    by_vertex = vertices.permute(1, 0, 2).reshape(vertices.shape[1], -1)  # gathers rows, not columns
    corners = [by_vertex[faces[:, k]].reshape(len(faces), frames, 3) for k in range(3)]
    (ax, ay, az), (bx, by, bz) = (corners[1] - corners[0]).unbind(-1), (corners[2] - corners[0]).unbind(-1)
    # written out: twice as fast as torch.linalg.cross on these shapes
    face_normals = torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=-1)
    normals = torch.sparse.mm(incidence, face_normals.reshape(len(faces), -1)).reshape(-1, frames, 3)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return normals.permute(1, 0, 2)


def vertex_face_incidence(faces: np.ndarray, num_vertices: int) -> torch.Tensor:
    rows = torch.as_tensor(faces.reshape(-1), dtype=torch.long)
    cols = torch.arange(len(faces)).repeat_interleave(3)
    values = torch.ones(len(rows), dtype=torch.float32)
    indices = torch.stack([rows, cols])
    return torch.sparse_coo_tensor(indices, values, (num_vertices, len(faces)), check_invariants=True).coalesce()


def face_parts(model: BodyModel) -> np.ndarray:
    """The SMPL part of each triangle: the part most of its vertices belong to."""
    corners = model.smpl_parts[model.faces]
    majority = np.where(corners[:, 1] == corners[:, 2], corners[:, 1], corners[:, 0])
    return majority.astype(np.uint8)


CAMERA_SETTING = "synthesis.camera_distance (--camera-distance)"


def check_person_seen(
    stem: str,
    parts: np.ndarray,
    joints2d: np.ndarray,
    joints_camera: np.ndarray,
    cam_dist: float,
    setting: str = CAMERA_SETTING,
) -> None:
    """Raise an InputError naming the clip and the setting to change (`setting`, the camera's
    distance) unless some frame shows its person: every joint in front of the camera's near
    plane, a joint inside the image and body pixels in the segmentation. parts: (T, H, W) SMPL
    part per pixel, 0 = background; joints2d: (T, J, 2) pixels; joints_camera: (T, J, 3) camera
    metres, z forward. Non-finite joints anywhere refuse the clip too: they would poison every
    sample made of it."""
    height, width = parts.shape[1:]
    where = f"clip {stem}: "
    camera_change = f" (camera {cam_dist:.3g} m from the pelvis): change {setting}"
    if not np.isfinite(joints_camera).all():
        raise InputError(
            f"{where}non-finite 3D joints: its motion (synthesis.motions) or the body model is not numbers"
        )
    if not np.isfinite(joints2d).all():
        raise InputError(f"{where}non-finite 2D joints{camera_change}")
    in_front = (joints_camera[..., 2] > NEAR).all(axis=1)
    u, v = joints2d[..., 0], joints2d[..., 1]
    in_image = ((u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)).any(axis=1)
    seen = (parts > 0).any(axis=(1, 2))
    for frames_hold, problem in (
        (in_front, "the body reaches the camera or lies behind it in every frame"),
        (in_image, f"the person is outside the {width}×{height} image in every frame"),
        (seen, "no person pixels in any frame"),
        (in_front & in_image & seen, "no frame shows the person in front of the camera, in the image and segmented"),
    ):
        if not frames_hold.any():
            raise InputError(f"{where}{problem}{camera_change}")


@dataclass
class ClipData:
    plan: ClipPlan
    frames: list[Frame]
    info: dict
    world_vertices: np.ndarray  # (T, V, 3)
    cam_loc: np.ndarray


class ClipRenderer:
    """Poses and renders clips; holds the GL context and the body models."""

    def __init__(self, models: dict[str, BodyModel], settings: SynthesisSettings) -> None:
        self.models = {gender: model.float() for gender, model in models.items()}
        self.settings = settings
        reference = next(iter(self.models.values()))
        self.faces = torch.as_tensor(reference.faces.astype(np.int64))
        self.incidence = vertex_face_incidence(reference.faces, reference.num_vertices)
        self.renderer = BodyRenderer(
            reference.faces.astype(np.int64),
            face_parts(reference),
            appearance.CLOTHING_GLSL,
            appearance.SH_GLSL,
            width=settings.width,
            height=settings.height,
        )
        self.k = camera.intrinsics(settings.width, settings.height)

    def pose(self, plan: ClipPlan, motion: Motion, betas: np.ndarray):
        """World vertices (T, V, 3) and joints (T, 24, 3) of the clip, and the camera location."""
        model = self.models[plan.gender]
        frames = slice(plan.start, plan.start + plan.frames)
        pose = torch.as_tensor(motion.pose[frames], dtype=torch.float32)
        trans = torch.as_tensor(motion.trans[frames], dtype=torch.float32)
        shape = torch.as_tensor(betas, dtype=torch.float32).expand(len(pose), -1)
        with torch.no_grad():
            out = model(shape, pose)
        root = out.joints[:1, :1]  # the pelvis: every rotation turns about it
        start = trans[:1] * torch.tensor([1.0, 1.0, 0.0])  # keep the height above the floor
        to_world = torch.as_tensor(camera.body_to_world(plan.zrot), dtype=torch.float32)
        offset = (trans - start)[:, None] - root
        vertices = (out.vertices + offset) @ to_world.T
        joints = (out.joints + offset) @ to_world.T
        cam_loc = camera.camera_location(joints[0, 0].numpy().astype(np.float64), plan.cam_dist)
        return vertices, joints, cam_loc

    def render(
        self,
        plan: ClipPlan,
        motion: Motion,
        betas: np.ndarray,
        outfit: appearance.Outfit,
        background: np.ndarray,
        background_name: str,
    ) -> ClipData:
        vertices, joints, cam_loc = self.pose(plan, motion, betas)
        normals = vertex_normals(vertices, self.incidence, self.faces)
        model = self.models[plan.gender]
        with torch.no_grad():
            rest = model(torch.as_tensor(betas, dtype=torch.float32)[None], torch.zeros(1, 72))
        landmarks = appearance.body_landmarks(rest.joints[0].numpy())
        renderer = self.renderer
        renderer.set_static(rest.vertices[0].numpy(), appearance.outfit_uniforms(outfit, landmarks))
        renderer.set_parts(face_parts(model))
        rotation, translation = camera.extrinsics(cam_loc)
        renderer.set_camera(rotation, translation, self.k)
        renderer.set_light(plan.light)
        crop = crop_to(background, self.settings.width, self.settings.height, np.random.default_rng(plan.crop_seed))
        renderer.set_background(crop)
        v, n = vertices.numpy(), normals.numpy()
        last = len(v) - 1
        frames = [renderer.render(v[t], v[max(t - 1, 0)], v[min(t + 1, last)], n[t]) for t in range(len(v))]
        joints3d = joints.numpy().astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):  # a joint on the camera: refused below
            joints2d = np.round(camera.project(joints3d, cam_loc, self.k))
        parts = np.stack([frame.parts for frame in frames])
        check_person_seen(plan.stem, parts, joints2d, camera_frame(joints3d, cam_loc), plan.cam_dist)
        info = clips.info_variables(
            sequence=plan.sequence,
            clip=plan.clip,
            backgrounds=[background_name] * len(v),
            gender=GENDER_CODES[plan.gender],
            light=plan.light,
            stride=plan.stride,
            cam_dist=plan.cam_dist,
            cam_loc=cam_loc,
            joints2d=joints2d,
            joints3d=joints3d,
            pose=motion.pose[plan.start : plan.start + plan.frames],
            zrot=plan.zrot,
            cloths=[outfit.name] * len(v),
            shape=betas,
            intrinsics=self.k,
            extrinsics=np.column_stack([rotation, translation]),
        )
        return ClipData(plan, frames, info, v, cam_loc)


def frame_mats(frames: list[Frame], passes: tuple[str, ...]) -> dict[str, dict[str, np.ndarray]]:
    """The per-frame `.mat` files of a clip: file suffix → variables."""
    conversions = {
        "segm": lambda f: f.parts,
        "depth": lambda f: f.depth,
        "gtflow": lambda f: f.gtflow,
        "flow": lambda f: f.forward_flow,
        "normal": lambda f: f.normals,
    }
    return {name: clips.frame_variables(name, [conversions[name](frame) for frame in frames]) for name in passes}


def write_video(path: Path, frames_bgr: list[np.ndarray], fps: float = 30.0) -> None:
    height, width = frames_bgr[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write mp4 video")
    for frame in frames_bgr:
        writer.write(frame)
    writer.release()


def write_clip(clip: ClipData, root: Path, settings: SynthesisSettings, extra_mats: dict | None = None) -> Path:
    """Write a clip's files into its sequence folder; `_info.mat` comes last and marks it whole.

    The files are written in a hidden temporary folder and moved into place, so a killed
    job leaves no file under a final name that is incomplete, and a clip without its
    `_info.mat` is incomplete and gets rendered again.
    """
    plan = clip.plan
    folder = clips.clip_directory(root, plan.split, plan.run, plan.sequence)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".{plan.stem}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        bgr = [frame.bgr for frame in clip.frames]
        write_video(staging / f"{plan.stem}.mp4", bgr)
        if settings.lossless:
            frames_dir = staging / f"{plan.stem}_frames"
            frames_dir.mkdir()
            for index, image in enumerate(bgr):
                cv2.imwrite(str(frames_dir / f"{index + 1:04d}.png"), image)
        mats = frame_mats(clip.frames, settings.passes) | (extra_mats or {})
        for suffix, variables in mats.items():
            clips.write_mat(staging / f"{plan.stem}_{suffix}.mat", variables)
        clips.write_mat(staging / f"{plan.stem}_info.mat", clip.info)
        info = staging / f"{plan.stem}_info.mat"
        for item in sorted(staging.iterdir(), key=lambda p: p == info):  # info last
            target = folder / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / f"{plan.stem}_info.mat"


def load_background(paths: list[Path], index: int, root: Path | None) -> tuple[np.ndarray, str]:
    path = paths[index]
    name = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else path.name
    return read_rgb(path), name


def camera_frame(vertices: np.ndarray, cam_loc: np.ndarray) -> np.ndarray:
    """World points (..., 3) in the camera's frame (x right, y down, z forward)."""
    rotation, translation = camera.extrinsics(cam_loc)
    return vertices @ rotation.T + translation


def voxel_frames(frames: int, which: str) -> list[int]:
    if which == "all":
        return list(range(frames))
    if which == "middle":
        return [(frames - 1) // 2]
    return []


@dataclass
class RenderJob:
    """What one render job makes: a split's run, from its motions and backgrounds."""

    split: str
    run: int
    motions: list[Motion]
    backgrounds: list[Path]
    background_root: Path
    models: dict[str, BodyModel]
    settings: SynthesisSettings
    voxel_resolution: int = 0
    voxel_which: str = "none"


def _manifest_row(plan: ClipPlan, outfit: appearance.Outfit, background: Path) -> dict:
    return {
        "split": plan.split,
        "run": plan.run,
        "sequence": plan.sequence,
        "clip": plan.clip,
        "stem": plan.stem,
        "start": plan.start,
        "frames": plan.frames,
        "gender": plan.gender,
        "shape_index": plan.shape_index,
        "outfit": outfit.name,
        "background": background.name,
        "cam_dist": plan.cam_dist,
        "zrot": plan.zrot,
    }


class JobWorker:
    """Renders and writes the clips of one job; one per process."""

    def __init__(self, job: RenderJob, root: Path) -> None:
        settings = job.settings
        self.job, self.root = job, Path(root)
        genders = sorted(job.models)
        self.plans = plan_clips(job.motions, job.split, job.run, settings, genders, len(job.backgrounds))
        self.motions = {motion.name: motion for motion in job.motions}
        self.shapes = {g: shape_bank(settings.seed, job.split, g, settings.shapes) for g in genders}
        self.outfits = outfit_bank(settings.seed, job.split, settings.outfits)
        self.renderer = ClipRenderer(job.models, settings)

    def render(self, index: int) -> tuple[ClipData, dict]:
        from pipeline.synthesis.voxels import voxelize

        plan, job = self.plans[index], self.job
        image, name = load_background(job.backgrounds, plan.background_index, job.background_root)
        betas = self.shapes[plan.gender][plan.shape_index]
        clip = self.renderer.render(
            plan, self.motions[plan.sequence], betas, self.outfits[plan.outfit_index], image, name
        )
        extra = {}
        chosen = voxel_frames(plan.frames, job.voxel_which) if job.voxel_resolution else []
        if chosen:
            faces = self.renderer.faces.numpy()
            camera_vertices = camera_frame(clip.world_vertices, clip.cam_loc)
            parts = voxel_part_labels(self.renderer.models[plan.gender].smpl_parts)
            labelled = {t: voxelize(camera_vertices[t], faces, job.voxel_resolution, parts) for t in chosen}
            extra["voxels"] = {f"voxels_{t + 1}": (labels > 0).astype(np.uint8) for t, labels in labelled.items()}
            extra["partvoxels"] = {f"partvoxels_{t + 1}": labels for t, labels in labelled.items()}
        return clip, extra

    def row(self, index: int) -> dict:
        plan = self.plans[index]
        return _manifest_row(plan, self.outfits[plan.outfit_index], self.job.backgrounds[plan.background_index])

    def make(self, index: int) -> dict:
        clip, extra = self.render(index)
        write_clip(clip, self.root, self.job.settings, extra)
        return self.row(index)


_WORKER: JobWorker | None = None


def _start_worker(job: RenderJob, root: Path) -> None:
    global _WORKER
    os.environ.setdefault("LP_NUM_THREADS", "1")  # Mesa: one thread per worker process
    torch.set_num_threads(1)
    _WORKER = JobWorker(job, root)


def _make_clip(index: int) -> dict:
    return _WORKER.make(index)


def render_job(job: RenderJob, root: Path, resume: bool = True, progress: bool = True, workers: int = 1) -> list[dict]:
    """Render and write every clip of a job; returns one manifest row per clip, in order.

    With one worker, writing a clip (compression, video encoding) runs in a thread while the
    next clip renders; with more, each worker process renders and writes whole clips (one
    OpenGL context each). Clips already complete under `root` are skipped when `resume`.
    """
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm import tqdm

    worker = JobWorker(job, root) if workers == 1 else None
    plans = plan_clips(job.motions, job.split, job.run, job.settings, sorted(job.models), len(job.backgrounds))
    todo = [i for i, plan in enumerate(plans) if not (resume and _complete(root, plan))]
    bar = tqdm(
        total=len(plans),
        initial=len(plans) - len(todo),
        desc=f"{job.split} run{job.run}",
        unit="clip",
        disable=not progress,
    )
    if worker is not None:
        pending = []
        with ThreadPoolExecutor(max_workers=1) as writer:
            for index in todo:
                clip, extra = worker.render(index)
                pending.append(writer.submit(write_clip, clip, Path(root), job.settings, extra))
                while len(pending) > 1:  # at most one clip waits while the next renders
                    pending.pop(0).result()
                    bar.update()
            for future in pending:
                future.result()
                bar.update()
        rows = [worker.row(i) for i in range(len(plans))]
    else:
        context = get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(job, Path(root))
        ) as pool:
            for future in as_completed([pool.submit(_make_clip, index) for index in todo]):
                future.result()
                bar.update()
        outfits = outfit_bank(job.settings.seed, job.split, job.settings.outfits)
        rows = [
            _manifest_row(plan, outfits[plan.outfit_index], job.backgrounds[plan.background_index]) for plan in plans
        ]
    bar.close()
    return rows


def _complete(root: Path, plan: ClipPlan) -> bool:
    folder = clips.clip_directory(root, plan.split, plan.run, plan.sequence)
    return (folder / f"{plan.stem}_info.mat").exists()
