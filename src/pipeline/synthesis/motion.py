"""Motion: SMPL pose sequences, and the sources they come from.

A motion is a sequence of SMPL poses at 30 frames per second, as SURREAL renders them:
`pose` (T, 72) axis-angle, whose global rotation maps the body into the motion capture's
z-up world, and `trans` (T, 3), the root's position in that world in metres. Files of
motions use the keys of SURREAL's `smpl_data.npz` (`pose_<name>`, `trans_<name>`), plus
`fps`, so SURREAL's own MoSh'd CMU motions load the same way.

Embedded source: the 20 motion-capture clips pybullet ships for DeepMimic (walk, run,
jump, kick, punch, dances, cartwheel, backflip, roll, crawl, spins, get-ups and five walks
with turns; DeepMimic retargeted them from the CMU and SFU motion-capture databases to a
13-joint humanoid). They are retargeted to SMPL here by transferring each joint's world
rotation: both skeletons rest with world-aligned joint frames, so a DeepMimic joint's world
rotation, taken into SMPL's axes and composed with the fixed rotation between the two rest
poses (arms down in DeepMimic, out sideways in SMPL), is the SMPL joint's world rotation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from pipeline.atomic import atomic_output
from pipeline.body_model.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from pipeline.errors import InputError
from pipeline.seeding import seeded_generator

FPS = 30.0
J = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}

# Y-up to z-up: the motion capture world SURREAL's MoSh poses are expressed in.
Y_UP_TO_Z_UP = Rotation.from_euler("x", 90, degrees=True).as_matrix()


class MotionError(InputError):
    """A motion file that is missing, truncated or malformed."""


@dataclass
class Motion:
    name: str
    pose: np.ndarray  # (T, 72) SMPL axis-angle; pose[:, :3] maps the body into a z-up world
    trans: np.ndarray  # (T, 3) root position in that world, metres
    fps: float = FPS

    def __len__(self) -> int:
        return len(self.pose)


# --- DeepMimic's humanoid ---------------------------------------------------------------

# Per frame: duration, root position (3), root quaternion, then per joint a quaternion
# (w, x, y, z) or, for the knees and elbows, one angle about the joint's z axis.
DEEPMIMIC_JOINTS = (
    ("chest", 4),
    ("neck", 4),
    ("right_hip", 4),
    ("right_knee", 1),
    ("right_ankle", 4),
    ("right_shoulder", 4),
    ("right_elbow", 1),
    ("left_hip", 4),
    ("left_knee", 1),
    ("left_ankle", 4),
    ("left_shoulder", 4),
    ("left_elbow", 1),
)
DEEPMIMIC_PARENTS = {
    "chest": "root",
    "neck": "chest",
    "right_hip": "root",
    "right_knee": "right_hip",
    "right_ankle": "right_knee",
    "right_shoulder": "chest",
    "right_elbow": "right_shoulder",
    "left_hip": "root",
    "left_knee": "left_hip",
    "left_ankle": "left_knee",
    "left_shoulder": "chest",
    "left_elbow": "left_shoulder",
}
DEEPMIMIC_VALUES = 8 + sum(size for _, size in DEEPMIMIC_JOINTS)

# DeepMimic's body frame (y up, facing +x, right side +z) into SMPL's (y up, facing +z,
# left side +x).
DEEPMIMIC_TO_SMPL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])

# SMPL rests with the arms out sideways, DeepMimic with the arms down: turn SMPL's arm
# direction onto DeepMimic's before applying DeepMimic's rotation.
ARM_REST = {
    "left": Rotation.from_euler("z", -90, degrees=True).as_matrix(),
    "right": Rotation.from_euler("z", 90, degrees=True).as_matrix(),
}


def _read_deepmimic(path: Path) -> tuple[np.ndarray, bool]:
    try:
        data = json.loads(Path(path).read_text())
        frames = np.asarray(data["Frames"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MotionError(f"{path}: not a readable DeepMimic motion file ({error})") from error
    if frames.ndim != 2 or frames.shape[1] != DEEPMIMIC_VALUES or len(frames) < 2:
        raise MotionError(f"{path}: expected at least 2 frames of {DEEPMIMIC_VALUES} values, got {frames.shape}")
    if not np.all(np.isfinite(frames)) or np.any(frames[:-1, 0] <= 0):
        raise MotionError(f"{path}: non-finite values or non-positive frame durations")
    return frames, data.get("Loop") == "wrap"


def _deepmimic_rotations(frames: np.ndarray) -> dict[str, Rotation]:
    """Local rotations per joint (root: global) at the file's frames."""
    rotations = {"root": Rotation.from_quat(frames[:, 4:8], scalar_first=True)}
    column = 8
    for name, size in DEEPMIMIC_JOINTS:
        values = frames[:, column : column + size]
        if size == 4:
            rotations[name] = Rotation.from_quat(values, scalar_first=True)
        else:
            rotations[name] = Rotation.from_rotvec(values * [0.0, 0.0, 1.0])
        column += size
    return rotations


def _resample(times: np.ndarray, rotations: dict[str, Rotation], positions: np.ndarray, fps: float):
    targets = np.arange(0.0, times[-1] + 1e-9, 1.0 / fps)
    resampled = {name: Slerp(times, rotation)(targets) for name, rotation in rotations.items()}
    position = np.stack([np.interp(targets, times, positions[:, k]) for k in range(3)], axis=1)
    return resampled, position


def _root_motion(rotation: Rotation, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cycle's root displacement: heading change (rad) and horizontal translation."""
    forward = rotation.apply([1.0, 0.0, 0.0])
    heading = np.arctan2(-forward[:, 2], forward[:, 0])
    return heading[-1] - heading[0], position[-1] - position[0]


def _loop(rotations, positions, cycles: int):
    """Repeat a looping clip, each cycle continuing from where the last one ended."""
    if cycles <= 1:
        return rotations, positions
    turn, shift = _root_motion(rotations["root"], positions)
    shift[1] = 0.0
    all_rotations = {name: [] for name in rotations}
    all_positions = []
    heading, offset = Rotation.identity(), np.zeros(3)
    for cycle in range(cycles):
        frames = slice(0 if cycle == 0 else 1, None)  # the last frame repeats the first
        for name, rotation in rotations.items():
            all_rotations[name].append((heading * rotation if name == "root" else rotation)[frames])
        all_positions.append(heading.apply(positions[frames] - positions[0] * [1, 0, 1]) + offset)
        offset = offset + heading.apply(shift)
        heading = Rotation.from_euler("y", turn) * heading
    joined = {name: Rotation.concatenate(parts) for name, parts in all_rotations.items()}
    return joined, np.concatenate(all_positions)


def retarget_deepmimic(rotations: dict[str, Rotation], positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL poses (T, 72) and root translations (T, 3), z-up, from DeepMimic's joints."""
    c = DEEPMIMIC_TO_SMPL
    count = len(positions)
    world = {"root": rotations["root"].as_matrix()}
    for name, _ in DEEPMIMIC_JOINTS:
        world[name] = world[DEEPMIMIC_PARENTS[name]] @ rotations[name].as_matrix()
    smpl_world = {name: c @ matrix @ c.T for name, matrix in world.items()}

    def local_fraction(name: str, parts: int) -> np.ndarray:
        matrix = c @ rotations[name].as_matrix() @ c.T
        return Rotation.from_rotvec(Rotation.from_matrix(matrix).as_rotvec() / parts).as_matrix()

    eye = np.broadcast_to(np.eye(3), (count, 3, 3))
    local = np.array(eye)[None].repeat(NUM_JOINTS, axis=0)  # (J, T, 3, 3)
    global_ = np.zeros_like(local)
    global_[0] = smpl_world["root"]
    spine = local_fraction("chest", 3)
    neck = local_fraction("neck", 2)
    targets = {}  # SMPL joints whose world rotation DeepMimic gives directly
    for side in ("left", "right"):
        targets[f"{side}_hip"] = smpl_world[f"{side}_hip"]
        targets[f"{side}_knee"] = smpl_world[f"{side}_knee"]
        targets[f"{side}_ankle"] = smpl_world[f"{side}_ankle"]
        targets[f"{side}_shoulder"] = smpl_world[f"{side}_shoulder"] @ ARM_REST[side]
        targets[f"{side}_elbow"] = smpl_world[f"{side}_elbow"] @ ARM_REST[side]
    for joint in range(1, NUM_JOINTS):
        name = SMPL_JOINT_NAMES[joint]
        parent = global_[SMPL_PARENTS[joint]]
        if name in targets:
            local[joint] = np.swapaxes(parent, -1, -2) @ targets[name]
        elif name in ("spine1", "spine2", "spine3"):
            local[joint] = spine
        elif name in ("neck", "head"):
            local[joint] = neck
        global_[joint] = parent @ local[joint]
    to_z_up = Y_UP_TO_Z_UP @ c
    local[0] = Y_UP_TO_Z_UP @ global_[0]
    pose = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(NUM_JOINTS, count, 3)
    return pose.transpose(1, 0, 2).reshape(count, -1), positions @ to_z_up.T


def load_deepmimic(path: str | Path, min_seconds: float = 0.0, fps: float = FPS) -> Motion:
    """A DeepMimic clip as an SMPL motion; looping clips repeat to last `min_seconds`."""
    path = Path(path)
    frames, loops = _read_deepmimic(path)
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    rotations, positions = _resample(times, _deepmimic_rotations(frames), frames[:, 1:4], fps)
    if loops and min_seconds > 0:
        cycles = int(np.ceil(min_seconds / times[-1]))
        rotations, positions = _loop(rotations, positions, cycles)
    pose, trans = retarget_deepmimic(rotations, positions)
    name = path.stem.removeprefix("humanoid3d_")
    return Motion(name=name, pose=pose.astype(np.float32), trans=trans.astype(np.float32), fps=fps)


def deepmimic_files() -> list[Path]:
    """The motion clips the pybullet package ships."""
    import pybullet_data

    root = Path(pybullet_data.getDataPath()) / "data" / "motions"
    return sorted(root.glob("humanoid3d_*.txt")) + sorted((root / "walker").glob("*.txt"))


def resample(motion: Motion, source_fps: float | None = None) -> Motion:
    """The motion at 30 fps, taking every k-th frame as SURREAL does (120 Hz MoSh: k = 4)."""
    rate = source_fps or motion.fps
    step = rate / FPS
    if abs(step - round(step)) > 1e-6 or step < 1:
        raise MotionError(f"motion {motion.name!r}: {rate} fps is not a multiple of {FPS}")
    k = int(round(step))
    return replace(motion, pose=motion.pose[::k], trans=motion.trans[::k], fps=FPS)


# --- Mirroring ----------------------------------------------------------------------------

_MIRROR_JOINTS = [
    J[name.replace("left_", "right_")]
    if name.startswith("left_")
    else J[name.replace("right_", "left_")]
    if name.startswith("right_")
    else J[name]
    for name in SMPL_JOINT_NAMES
]


def mirror(motion: Motion) -> Motion:
    """The motion performed mirror-wise (left and right exchanged), a new motion.

    Mirroring across the body's sagittal plane swaps left and right joints and negates the
    y and z components of their axis-angle (x for the global rotation's z-up world side).
    """
    pose = motion.pose.reshape(len(motion), NUM_JOINTS, 3)[:, _MIRROR_JOINTS] * [1.0, -1.0, -1.0]
    # The global rotation maps body → world; mirror the world across its x = 0 plane too,
    # which on axis-angle is the same sign pattern in the world's axes.
    root = Rotation.from_rotvec(motion.pose[:, :3]).as_matrix()
    flip = np.diag([-1.0, 1.0, 1.0])
    root = flip @ root @ flip
    pose[:, 0] = Rotation.from_matrix(root).as_rotvec()
    trans = motion.trans * [-1.0, 1.0, 1.0]
    return replace(
        motion,
        name=f"{motion.name}_mirror",
        pose=pose.reshape(len(motion), -1).astype(np.float32),
        trans=trans.astype(np.float32),
    )


# --- Variants -----------------------------------------------------------------------------

# Joints whose rotations an upper-body blend takes from the other motion: the spine up.
UPPER_BODY = [
    J[name]
    for name in SMPL_JOINT_NAMES
    if name.startswith(("spine", "neck", "head"))
    or name.split("_")[-1] in ("collar", "shoulder", "elbow", "wrist", "hand")
]


@dataclass(frozen=True)
class Variation:
    """How far a variant departs from the captured motions it is made of."""

    speed: tuple[float, float]  # play-back speed factor, drawn uniformly
    blend: float  # chance that the upper body comes from another motion
    jitter: float  # radians: std of each joint's slowly drifting rotation offset


def retime(motion: Motion, speed: float) -> Motion:
    """The motion played `speed` times as fast (rotations interpolated on the sphere)."""
    count = len(motion)
    times = np.arange(count) / motion.fps
    targets = np.arange(0.0, times[-1] + 1e-9, speed / motion.fps)
    rotations = Rotation.from_rotvec(motion.pose.reshape(count, NUM_JOINTS, 3).transpose(1, 0, 2).reshape(-1, 3))
    per_joint = [Slerp(times, rotations[j * count : (j + 1) * count])(targets) for j in range(NUM_JOINTS)]
    pose = np.stack([r.as_rotvec() for r in per_joint], axis=1).reshape(len(targets), -1)
    trans = np.stack([np.interp(targets, times, motion.trans[:, k]) for k in range(3)], axis=1)
    return replace(motion, pose=pose.astype(np.float32), trans=trans.astype(np.float32))


def blend_upper_body(lower: Motion, upper: Motion, offset: int) -> Motion:
    """`lower`'s root, legs and path with `upper`'s spine, arms and head (its frames from
    `offset` on, looped to `lower`'s length)."""
    frames = (offset + np.arange(len(lower))) % len(upper)
    pose = lower.pose.reshape(len(lower), NUM_JOINTS, 3).copy()
    pose[:, UPPER_BODY] = upper.pose.reshape(len(upper), NUM_JOINTS, 3)[frames][:, UPPER_BODY]
    return replace(lower, pose=pose.reshape(len(lower), -1))


def jitter(motion: Motion, rng: np.random.Generator, sigma: float) -> Motion:
    """Each joint but the root turned by its own offset: a constant ~ N(0, σ²) per axis plus a
    slow sway of half that size (periods of 1 to 4 s), composed after the joint's rotation."""
    count = len(motion)
    times = np.arange(count)[:, None, None] / motion.fps
    constant = rng.normal(0.0, sigma, size=(1, NUM_JOINTS - 1, 3))
    amplitude = rng.normal(0.0, sigma / 2, size=(1, NUM_JOINTS - 1, 3))
    period = rng.uniform(1.0, 4.0, size=(1, NUM_JOINTS - 1, 3))
    phase = rng.uniform(0.0, 2 * np.pi, size=(1, NUM_JOINTS - 1, 3))
    offsets = constant + amplitude * np.sin(2 * np.pi * times / period + phase)  # (T, J-1, 3)
    pose = motion.pose.reshape(count, NUM_JOINTS, 3).astype(np.float64)
    joints = Rotation.from_rotvec(pose[:, 1:].reshape(-1, 3))
    turned = joints * Rotation.from_rotvec(offsets.reshape(-1, 3))
    pose[:, 1:] = turned.as_rotvec().reshape(count, NUM_JOINTS - 1, 3)
    return replace(motion, pose=pose.reshape(count, -1).astype(np.float32))


def variants(motions: list[Motion], count: int, variation: Variation, seed: int, split: str) -> list[Motion]:
    """`count` new motions made of a split's own: each a motion re-timed, with (by chance)
    the upper body of another one, and every joint slightly turned. Drawn from the seed and
    the split alone, so a split's variants never borrow another split's motions."""
    if count and not motions:
        raise InputError(f"split {split!r} has no motions to make {count} variants of")
    made = []
    for index in range(count):
        rng = seeded_generator(seed, "motion variant", split, index)
        base = motions[int(rng.integers(len(motions)))]
        motion = retime(base, float(rng.uniform(*variation.speed)))
        if len(motions) > 1 and rng.random() < variation.blend:
            donor = motions[int(rng.integers(len(motions)))]
            donor = retime(donor, float(rng.uniform(*variation.speed)))
            motion = blend_upper_body(motion, donor, int(rng.integers(len(donor))))
        if variation.jitter > 0:
            motion = jitter(motion, rng, variation.jitter)
        made.append(replace(motion, name=f"{base.name}_v{index:03d}"))
    return made


# --- Interpolations across motions -------------------------------------------------------
#
# Liu, Akhtar & Mian, "Temporally Coherent Full 3D Mesh Human Pose Recovery from Monocular
# Video" (§3.2), make new motions of atypical poses: between two captured motions they find the
# two most different poses, one in each, and render the poses interpolated from the one to the
# other, as many frames as the distance between them asks. They interpolate the axis-angle
# vectors linearly; here each joint's rotation follows the shortest arc (spherical linear
# interpolation of its quaternion), which the axis-angle line leaves for large rotations. Their
# distance between two poses did not survive in the text: here, the sum over the body's 23
# joints of the angle between the two rotations (the global orientation left out).


def _body_quaternions(pose: np.ndarray) -> np.ndarray:
    """(T, 72) axis-angle poses → (T, 23, 4) unit quaternions of the body joints (no root)."""
    count = len(pose)
    rotations = Rotation.from_rotvec(pose.reshape(count, NUM_JOINTS, 3)[:, 1:].reshape(-1, 3).astype(np.float64))
    return rotations.as_quat().reshape(count, NUM_JOINTS - 1, 4)


def pose_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(Ta, 72), (Tb, 72) poses → (Ta, Tb): for each pair, the summed angle (radians) between
    their body joints' rotations."""
    dots = np.abs(np.einsum("ajk,bjk->abj", _body_quaternions(first), _body_quaternions(second)))
    return (2.0 * np.arccos(np.clip(dots, 0.0, 1.0))).sum(-1)


def interpolate_poses(first: Motion, second: Motion, step: float) -> Motion:
    """The poses from `first`'s frame most different from any of `second`'s to that frame of
    `second`, every joint (the global orientation too) on its shortest arc, with enough frames
    that the summed joint angle moves at most `step` radians a frame. The root keeps `first`'s
    place on the ground and moves in height from one pose's to the other's."""
    if step <= 0:
        raise ValueError(f"the interpolation's step must be positive, got {step}")
    distances = pose_distances(first.pose, second.pose)
    start, end = np.unravel_index(np.argmax(distances), distances.shape)
    count = int(np.ceil(distances[start, end] / step)) + 1
    ends = np.stack([first.pose[start], second.pose[end]]).reshape(2, NUM_JOINTS, 3).astype(np.float64)
    fractions = np.linspace(0.0, 1.0, count)
    pose = np.stack(
        [Slerp([0.0, 1.0], Rotation.from_rotvec(ends[:, joint]))(fractions).as_rotvec() for joint in range(NUM_JOINTS)],
        axis=1,
    )
    trans = np.repeat(first.trans[start][None].astype(np.float64), count, axis=0)
    trans[:, 2] = np.interp(fractions, [0.0, 1.0], [first.trans[start, 2], second.trans[end, 2]])
    return Motion(
        f"{first.name}_to_{second.name}",
        pose.reshape(count, -1).astype(np.float32),
        trans.astype(np.float32),
        first.fps,
    )


def interpolations(motions: list[Motion], count: int, step: float, seed: int, split: str) -> list[Motion]:
    """`count` new motions, each the interpolation between two different motions of the split's
    own (`interpolate_poses`), the pairs drawn from the seed and the split alone."""
    if count and len(motions) < 2:
        raise InputError(f"split {split!r} needs two motions to interpolate between, has {len(motions)}")
    made = []
    for index in range(count):
        rng = seeded_generator(seed, "motion interpolation", split, index)
        first, second = rng.choice(len(motions), 2, replace=False)
        motion = interpolate_poses(motions[first], motions[second], step)
        made.append(replace(motion, name=f"{motion.name}_i{index:03d}"))
    return made


# --- Files -------------------------------------------------------------------------------


def save_motions(path: str | Path, motions: list[Motion]) -> None:
    arrays = {"fps": np.float64(motions[0].fps if motions else FPS)}
    for motion in motions:
        arrays[f"pose_{motion.name}"] = motion.pose
        arrays[f"trans_{motion.name}"] = motion.trans
    with atomic_output(path) as tmp:
        np.savez(tmp, **arrays)


# A motion's name becomes a sequence folder's and its clips' file names: one plain path component
MOTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def load_motions(path: str | Path, fps: float | None = None) -> list[Motion]:
    """Motions of an npz with SURREAL's `smpl_data.npz` keys (`pose_<name>`, `trans_<name>`).

    The frame rate is the file's `fps` entry, else `fps`, else 30. A motion file is user
    input: it is read without unpickling anything (an object array is refused, never run),
    and anything but real, finite (T, 72) poses and (T, 3) translations of T ≥ 1 frames under
    names that are plain file names, at a positive frame rate, is a MotionError naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise MotionError(f"{path}: not a motion file (a single array, not an npz archive of motions)")
            rate = _frame_rate(path, data["fps"]) if "fps" in data.files else (fps or FPS)
            names = sorted(key.removeprefix("pose_") for key in data.files if key.startswith("pose_"))
            motions = [_motion(path, data, name, rate) for name in names]
    except MotionError:
        raise
    except Exception as error:  # numpy, zipfile and zlib raise many types on corrupt archives
        reason = " ".join(str(error).split())  # one line, whatever the library wrote
        raise MotionError(f"{path}: not a readable motion file ({type(error).__name__}: {reason})") from error
    if not motions:
        raise MotionError(f"{path}: no motion (no pose_<name> arrays)")
    return motions


def _frame_rate(path: Path, value: np.ndarray) -> float:
    if value.shape not in ((), (1,)) or value.dtype.kind not in "iuf" or not 0 < float(value.item()) < np.inf:
        raise MotionError(f"{path}: fps must be one positive number, got {value.dtype} {value.shape}")
    return float(value.item())


def _motion(path: Path, data, name: str, fps: float) -> Motion:
    """The motion `name` of an open npz, checked."""
    if not MOTION_NAME.fullmatch(name):
        raise MotionError(f"{path}: motion name {name!r} is not a plain file name (letters, digits, _ . -)")
    if f"trans_{name}" not in data.files:
        raise MotionError(f"{path}: motion {name!r} has pose_{name} but no trans_{name}")
    pose, trans = data[f"pose_{name}"], data[f"trans_{name}"]
    for key, array in ((f"pose_{name}", pose), (f"trans_{name}", trans)):
        if array.dtype.kind not in "iuf":
            raise MotionError(f"{path}: {key} holds {array.dtype}, not real numbers")
    if pose.ndim != 2 or pose.shape[1] != 72 or len(pose) < 1 or trans.shape != (len(pose), 3):
        raise MotionError(
            f"{path}: motion {name!r} has pose {pose.shape}, trans {trans.shape}; expected (T, 72) and (T, 3), T ≥ 1"
        )
    if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(trans))):
        raise MotionError(f"{path}: motion {name!r} has non-finite values")
    return Motion(name, pose, trans, fps)
