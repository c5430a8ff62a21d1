"""Action clips from the renderer: each performance of a named motion seen by several
synchronised cameras.

A performance is one person (gender and body shape from the split's bank), one outfit, one
light, one background photograph and one take of an embedded motion (`walk`, `punch`, ...;
`pipeline.synthesis.motion`): mirrored by chance, played at a drawn speed, each joint turned
by its own slow drift (`motion.jitter`), started at a drawn frame. The body is posed once;
cameras at the given azimuths about the vertical axis, measured from the person's front at
the first frame (0°: facing the camera, as the NTU views v1, v2, v3 of 0°, 45°, 90° in
Varol's thesis, chapter 6), all at the same distance and aimed at the performance's mean
pelvis, render it: the same frames in time, the same world joints, other images.

Splits are disjoint by construction in everything drawn: people, outfits and backgrounds
come from the split's own banks (`generate.shape_bank`, `generate.outfit_bank`,
`backgrounds.package_photos`), performances are named by split. The motions themselves are
shared: every action has one capture, so a test performance is a new take (speed, start,
mirroring, joint drift, person) of the captured motion, not another capture.

Layout: SURREAL's (`pipeline.clips`), one sequence folder per performance, clip k its view vk:

    <root>/cmu/<split>/run0/<performance>/<performance>_c<view:04d>.mp4, _info.mat (joints3D in
        world coordinates, camLoc, and the view's camera as `intrinsics` and `extrinsics`:
        it is not SURREAL's fixed one, `pipeline.clips`), _segm.mat, _flow.mat, _camera.mat
        (rotation, translation, intrinsics, azimuth)

and a manifest CSV, one row per clip (`MANIFEST_COLUMNS`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline import clips
from pipeline.body_model.model import BodyModel
from pipeline.errors import InputError
from pipeline.seeding import seeded_generator
from pipeline.synthesis import appearance, camera, generate
from pipeline.synthesis.backgrounds import crop_to, read_rgb
from pipeline.synthesis.motion import FPS, Motion, deepmimic_files, jitter, load_deepmimic, mirror, retime

RUN = 0  # every performance is written as run 0 of its split
LEFT_HIP, RIGHT_HIP = 1, 2  # SMPL joints
UP = np.array([0.0, -1.0, 0.0])  # SURREAL's world has y pointing down
MANIFEST_COLUMNS = (
    "split",
    "performance",
    "action",
    "label",
    "view",
    "azimuth",
    "stem",
    "info",
    "gender",
    "shape_index",
    "outfit",
    "background",
    "speed",
    "start",
    "mirrored",
    "frames",
    "cam_dist",
    "zrot",
)


@dataclass(frozen=True)
class ActionSettings:
    """What the action clips of one split are drawn from (config: `actions.dataset`)."""

    seed: int
    actions: tuple[str, ...]  # embedded motion names; an action's label is its index here
    performances: int  # per action in this split
    azimuths: tuple[float, ...]  # degrees from the person's front; view k+1 is azimuths[k]
    frames: int
    width: int
    height: int
    focal: float  # pixels
    cam_dist: tuple[float, float]  # metres: mean and standard deviation
    speed: tuple[float, float]  # play-back speed factor, drawn uniformly
    jitter: float  # radians: each joint's drift (`motion.jitter`)
    mirror: float  # chance that a performance is mirrored
    shapes: int  # the split's body-shape bank, per gender
    outfits: int  # the split's outfit bank
    passes: tuple[str, ...] = ("segm", "flow")
    light: appearance.LightRange = appearance.SURREAL_LIGHT
    # cameras that follow the pelvis (the mesh-video clips, `pipeline.video_mesh`): the same
    # images as still cameras watching a body whose root path is taken away, the backdrop being
    # a flat photograph either way, so each view keeps one camera and SURREAL's annotations
    tracked: bool = False
    # azimuths from the world's east (its x axis), not from the person's front: cameras that
    # stand still in the world while the person faces where the drawn `zrot` turns them
    world_azimuths: bool = False


@dataclass(frozen=True)
class Performance:
    """Everything drawn for one performance; its views share all of it."""

    split: str
    action: str
    label: int
    index: int
    gender: str
    shape_index: int
    outfit_index: int
    background_index: int
    light: np.ndarray
    cam_dist: float
    zrot: float
    speed: float
    start_fraction: float  # where in the re-timed motion the clip starts, of the frames to spare
    mirrored: bool
    seed: int  # the joint drift's and the background crops' generator

    @property
    def name(self) -> str:
        return f"{self.split}_{self.action}_{self.index:03d}"


def plan_performances(
    settings: ActionSettings, split: str, genders: list[str], num_backgrounds: int
) -> list[Performance]:
    """Every performance of a split, each drawn from its own identity (seed, split, action, index)."""
    if not genders:
        raise InputError("no body model given: the performances need at least one gender")
    if num_backgrounds < 1:
        raise InputError(f"split {split!r} has no background photograph")
    plans = []
    for label, action in enumerate(settings.actions):
        for index in range(settings.performances):
            rng = seeded_generator(settings.seed, "action performance", split, action, index)
            plans.append(
                Performance(
                    split=split,
                    action=action,
                    label=label,
                    index=index,
                    gender=genders[int(rng.integers(len(genders)))],
                    shape_index=int(rng.integers(settings.shapes)),
                    outfit_index=int(rng.integers(settings.outfits)),
                    background_index=int(rng.integers(num_backgrounds)),
                    light=appearance.sample_light(rng, settings.light),
                    cam_dist=float(rng.normal(*settings.cam_dist)),
                    zrot=float(rng.uniform(0.0, 2.0 * math.pi)),
                    speed=float(rng.uniform(*settings.speed)),
                    start_fraction=float(rng.uniform()),
                    mirrored=bool(rng.random() < settings.mirror),
                    seed=int(rng.integers(2**31)),
                )
            )
    return plans


def base_motions(settings: ActionSettings) -> dict[str, Motion]:
    """The embedded captures of the actions, looping ones repeated to outlast the fastest take."""
    files = {path.stem.removeprefix("humanoid3d_"): path for path in deepmimic_files()}
    unknown = [name for name in settings.actions if name not in files]
    if unknown:
        raise InputError(f"actions.dataset.actions: unknown motion(s) {unknown}; available: {sorted(files)}")
    seconds = 2 * settings.frames * max(settings.speed) / FPS
    return {name: load_deepmimic(files[name], min_seconds=seconds) for name in settings.actions}


def performance_motion(
    base: Motion, performance: Performance, frames: int, sigma: float, tracked: bool = False
) -> tuple[Motion, int]:
    """The take of `base` a performance plays, exactly `frames` long, and its first frame.

    A one-shot capture shorter than the take (a kick played fast) holds its last pose: the
    person stands still after the action, as people in real clips do. `tracked`: the root
    held where it starts, as a camera following the pelvis sees it."""
    motion = mirror(base) if performance.mirrored else base
    motion = retime(motion, performance.speed)
    if sigma > 0:
        motion = jitter(motion, seeded_generator(performance.seed, "drift"), sigma)
    start = int(performance.start_fraction * max(0, len(motion) - frames))
    index = np.minimum(np.arange(start, start + frames), len(motion) - 1)
    trans = np.repeat(motion.trans[index[:1]], frames, axis=0) if tracked else motion.trans[index]
    return replace(motion, name=performance.name, pose=motion.pose[index], trans=trans), start


def facing(joints: np.ndarray) -> np.ndarray:
    """The horizontal direction (3,) a body faces, from its joints (24, 3) in SURREAL's world:
    SMPL's body frame has x to the left, y up and z forward, so forward = left × up."""
    forward = np.cross(joints[LEFT_HIP] - joints[RIGHT_HIP], UP)
    forward[1] = 0.0
    return forward / max(np.linalg.norm(forward), 1e-9)


def turn_about_vertical(direction: np.ndarray, degrees: float) -> np.ndarray:
    """A horizontal direction (3,) turned by `degrees` about the world's vertical axis."""
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    x, _, z = direction
    return np.array([c * x + s * z, 0.0, -s * x + c * z])


def clip_plan(performance: Performance, view: int, frames: int) -> generate.ClipPlan:
    """The synthesis plan of one view (1-based) of a performance: its sequence is the
    performance, its clip number the view."""
    return generate.ClipPlan(
        split=performance.split,
        run=RUN,
        sequence=performance.name,
        clip=view,
        start=0,
        frames=frames,
        stride=frames,
        gender=performance.gender,
        shape_index=performance.shape_index,
        outfit_index=performance.outfit_index,
        background_index=performance.background_index,
        light=performance.light,
        cam_dist=performance.cam_dist,
        zrot=performance.zrot,
        crop_seed=performance.seed,
    )


@dataclass(frozen=True)
class ViewCamera:
    """One camera of a performance: where it stands and how it projects."""

    azimuth: float  # degrees from the person's front
    location: np.ndarray  # (3,) world, metres
    rotation: np.ndarray  # (3, 3) world → camera
    translation: np.ndarray  # (3,)
    intrinsics: np.ndarray  # (3, 3) pixels

    def mat(self) -> dict[str, np.ndarray]:
        """`_camera.mat`'s variables."""
        return {
            "rotation": self.rotation,
            "translation": self.translation.reshape(3, 1),
            "intrinsics": self.intrinsics,
            "azimuth": np.full((1, 1), self.azimuth),
        }


def view_camera(
    target: np.ndarray, front: np.ndarray, azimuth: float, distance: float, settings: ActionSettings
) -> ViewCamera:
    """The camera `distance` metres from `target` (3,) at `azimuth` degrees from the horizontal
    direction `front` (3,), aimed at the target, with the settings' frame size and focal length."""
    location, rotation, translation = camera.orbit_extrinsics(target, turn_about_vertical(front, azimuth), distance)
    k = camera.intrinsics(settings.width, settings.height, settings.focal)
    return ViewCamera(azimuth, location, rotation, translation, k)


def view_info(
    performance: Performance,
    view: int,
    seen_by: ViewCamera,
    joints3d: np.ndarray,
    pose: np.ndarray,
    betas: np.ndarray,
    outfit_name: str,
    background_name: str,
) -> dict[str, object]:
    """`_info.mat`'s variables of one view (1-based) of a performance: world joints (T, 24, 3)
    projected through the view's camera, which the file stores (it is not SURREAL's)."""
    frames = len(joints3d)
    plan = clip_plan(performance, view, frames)
    return clips.info_variables(
        sequence=plan.sequence,
        clip=plan.clip,
        backgrounds=[background_name] * frames,
        gender=generate.GENDER_CODES[performance.gender],
        light=performance.light,
        stride=frames,
        cam_dist=performance.cam_dist,
        cam_loc=seen_by.location,
        joints2d=np.round(camera.project_through(joints3d, seen_by.rotation, seen_by.translation, seen_by.intrinsics)),
        joints3d=joints3d,
        pose=pose,
        zrot=performance.zrot,
        cloths=[outfit_name] * frames,
        shape=betas,
        intrinsics=seen_by.intrinsics,
        extrinsics=np.column_stack([seen_by.rotation, seen_by.translation]),
    )


@dataclass
class ViewClip:
    """One view of a performance, rendered: what `generate.write_clip` writes, and its camera."""

    clip: generate.ClipData
    camera: dict[str, np.ndarray]  # `_camera.mat`'s variables
    azimuth: float


def render_views(
    renderer: generate.ClipRenderer,
    performance: Performance,
    motion: Motion,
    betas: np.ndarray,
    outfit: appearance.Outfit,
    background: np.ndarray,
    background_name: str,
    settings: ActionSettings,
) -> list[ViewClip]:
    """Pose the body once and render it from every camera of `settings.azimuths`."""
    frames = len(motion)
    plan = clip_plan(performance, 1, frames)
    vertices, joints, _ = renderer.pose(plan, motion, betas)
    normals = generate.vertex_normals(vertices, renderer.incidence, renderer.faces)
    model = renderer.models[performance.gender]
    with torch.no_grad():
        rest = model(torch.as_tensor(betas, dtype=torch.float32)[None], torch.zeros(1, 72))
    body = renderer.renderer
    body.set_static(
        rest.vertices[0].numpy(), appearance.outfit_uniforms(outfit, appearance.body_landmarks(rest.joints[0].numpy()))
    )
    body.set_parts(generate.face_parts(model))
    body.set_light(performance.light)
    v, n = vertices.numpy(), normals.numpy()
    joints3d = joints.numpy().astype(np.float64)
    target = joints3d[:, 0].mean(axis=0)  # a walker stays in view of a still camera
    front = np.array([1.0, 0.0, 0.0]) if settings.world_azimuths else facing(joints3d[0])
    crops = seeded_generator(performance.seed, "background crops")
    last = frames - 1
    views = []
    for index, azimuth in enumerate(settings.azimuths):
        seen_by = view_camera(target, front, azimuth, performance.cam_dist, settings)
        body.set_camera(seen_by.rotation, seen_by.translation, seen_by.intrinsics)
        # each camera sees its own part of the room behind the person
        body.set_background(crop_to(background, settings.width, settings.height, crops))
        rendered = [body.render(v[t], v[max(t - 1, 0)], v[min(t + 1, last)], n[t]) for t in range(frames)]
        info = view_info(performance, index + 1, seen_by, joints3d, motion.pose, betas, outfit.name, background_name)
        generate.check_person_seen(
            clip_plan(performance, index + 1, frames).stem,
            np.stack([frame.parts for frame in rendered]),
            info["joints2D"].transpose(2, 1, 0),
            joints3d @ seen_by.rotation.T + seen_by.translation,
            performance.cam_dist,
            setting="actions.dataset.camera_distance (--camera-distance)",
        )
        clip = generate.ClipData(clip_plan(performance, index + 1, frames), rendered, info, v, seen_by.location)
        views.append(ViewClip(clip, seen_by.mat(), azimuth))
    return views


def manifest_rows(performance: Performance, views: list[ViewClip], start: int, root: Path, **names) -> list[dict]:
    rows = []
    for view in views:
        plan = view.clip.plan
        info = clips.clip_directory(root, plan.split, plan.run, plan.sequence) / f"{plan.stem}_info.mat"
        rows.append(
            {
                "split": performance.split,
                "performance": performance.name,
                "action": performance.action,
                "label": performance.label,
                "view": plan.clip,
                "azimuth": view.azimuth,
                "stem": plan.stem,
                "info": str(info.relative_to(root)),
                "gender": performance.gender,
                "shape_index": performance.shape_index,
                "outfit": names["outfit"],
                "background": names["background"],
                "speed": performance.speed,
                "start": start,
                "mirrored": performance.mirrored,
                "frames": plan.frames,
                "cam_dist": performance.cam_dist,
                "zrot": performance.zrot,
            }
        )
    return rows


def render_split(
    split: str,
    settings: ActionSettings,
    models: dict[str, BodyModel],
    backgrounds: list[Path],
    root: Path,
    progress: bool = True,
    motions: dict[str, Motion] | None = None,
) -> pd.DataFrame:
    """Render and write every view of every performance of a split; the manifest, one row per clip.
    `motions`: the captures `settings.actions` names (None: the embedded ones, `base_motions`).

    Writing a performance's clips (video encoding, compression) runs in a thread while the
    next performance renders, as `generate.render_job` does."""
    from tqdm import tqdm

    root = Path(root)
    genders = sorted(models)
    performances = plan_performances(settings, split, genders, len(backgrounds))
    motions = base_motions(settings) if motions is None else motions
    synthesis = generate.SynthesisSettings(
        seed=settings.seed,
        clip_length=settings.frames,
        shapes=settings.shapes,
        outfits=settings.outfits,
        passes=settings.passes,
        lossless=False,  # the action clips are read as mp4, as the action networks' video is
        width=settings.width,
        height=settings.height,
        light=settings.light,
        camera_distance=settings.cam_dist,  # the performances' cameras are planned above, with it
    )
    renderer = generate.ClipRenderer(models, synthesis)
    shapes = {g: generate.shape_bank(settings.seed, split, g, settings.shapes) for g in genders}
    outfits = generate.outfit_bank(settings.seed, split, settings.outfits)
    rows, pending = [], []
    with ThreadPoolExecutor(max_workers=1) as writer:
        for performance in tqdm(performances, desc=f"actions {split}", unit="performance", disable=not progress):
            motion, start = performance_motion(
                motions[performance.action], performance, settings.frames, settings.jitter, settings.tracked
            )
            path = backgrounds[performance.background_index]
            outfit = outfits[performance.outfit_index]
            views = render_views(
                renderer,
                performance,
                motion,
                shapes[performance.gender][performance.shape_index],
                outfit,
                read_rgb(path),
                path.name,
                settings,
            )
            for view in views:
                pending.append(writer.submit(generate.write_clip, view.clip, root, synthesis, {"camera": view.camera}))
            while len(pending) > len(views):  # at most one performance waits while the next renders
                pending.pop(0).result()
            rows += manifest_rows(performance, views, start, root, outfit=outfit.name, background=path.name)
        for future in pending:
            future.result()
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def read_manifest(path: str | Path) -> pd.DataFrame:
    """An action manifest, or an InputError naming the file and what it lacks."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: not a readable action manifest ({error})") from error
    missing = [column for column in MANIFEST_COLUMNS if column not in frame]
    if missing:
        raise InputError(f"{path}: not an action manifest (no column {', '.join(missing)})")
    if frame.empty:
        raise InputError(f"{path}: an action manifest without clips")
    return frame
