"""The CMU motion-capture database (ASF skeletons, AMC motions) as SMPL motions.

CMU's skeleton rests in a T-pose in a y-up world, facing +z with its left side at +x, as
SMPL does. Each bone's world rotation (the rotation its motion applies to the rest pose) is
taken as the world rotation of the SMPL joint the bone stands for; SMPL's local rotations
follow down the tree. Motions are captured at 120 Hz; SURREAL keeps every 4th frame.

ASF/AMC follow the Acclaim format as CMU writes it: per bone a rest `direction`, a `length`
in 1/0.45 inch units, an `axis` orientation (degrees, XYZ) and the degrees of freedom its
AMC lines give, in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body_model.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from pipeline.errors import InputError
from pipeline.synthesis.motion import FPS, Y_UP_TO_Z_UP, Motion

UNIT_METRES = 2.54 / 100 / 0.45  # CMU's ASF length unit
CAPTURE_FPS = 120.0

# CMU bones whose world rotation drives each SMPL joint
SMPL_FROM_CMU = {
    "pelvis": "root",
    "left_hip": "lfemur",
    "right_hip": "rfemur",
    "spine1": "lowerback",
    "left_knee": "ltibia",
    "right_knee": "rtibia",
    "spine2": "upperback",
    "left_ankle": "lfoot",
    "right_ankle": "rfoot",
    "spine3": "thorax",
    "left_foot": "ltoes",
    "right_foot": "rtoes",
    "neck": "lowerneck",
    "left_collar": "lclavicle",
    "right_collar": "rclavicle",
    "head": "head",
    "left_shoulder": "lhumerus",
    "right_shoulder": "rhumerus",
    "left_elbow": "lradius",
    "right_elbow": "rradius",
    "left_wrist": "lwrist",
    "right_wrist": "rwrist",
    "left_hand": "lhand",
    "right_hand": "rhand",
}


class CmuError(InputError):
    """An ASF or AMC file that cannot be parsed."""


@dataclass
class Bone:
    name: str
    axis: np.ndarray  # (3, 3) the bone's orientation at rest
    dofs: list[str] = field(default_factory=list)  # e.g. ['rx', 'ry', 'rz']
    parent: str | None = None


@dataclass
class Skeleton:
    bones: dict[str, Bone]
    order: list[str]  # parents before children

    def __contains__(self, name: str) -> bool:
        return name in self.bones


def _euler_degrees(values) -> np.ndarray:
    """Acclaim's XYZ Euler angles in degrees: R = Rz Ry Rx (fixed axes)."""
    return Rotation.from_euler("xyz", np.asarray(values, dtype=np.float64), degrees=True).as_matrix()


def parse_asf(path: str | Path) -> Skeleton:
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError as error:
        raise CmuError(f"{path}: cannot read ({error})") from error
    bones: dict[str, Bone] = {}
    section, current, children = None, None, {}
    root_axis = np.eye(3)
    try:
        for line in lines:
            if not line or line.startswith("#"):
                continue
            if line.startswith(":"):
                section = line.split()[0]
                continue
            words = line.split()
            if section == ":root" and words[0] == "orientation":
                root_axis = _euler_degrees([float(w) for w in words[1:4]])
            elif section == ":bonedata":
                if words[0] == "begin":
                    current = {}
                elif words[0] == "end":
                    bones[current["name"]] = Bone(
                        current["name"], _euler_degrees(current["axis"]), current.get("dof", [])
                    )
                elif words[0] in ("name",):
                    current["name"] = words[1]
                elif words[0] == "axis":
                    current["axis"] = [float(w) for w in words[1:4]]
                elif words[0] == "dof":
                    current["dof"] = [w.lower() for w in words[1:]]
            elif section == ":hierarchy" and words[0] not in ("begin", "end"):
                children[words[0]] = words[1:]
    except (KeyError, IndexError, ValueError) as error:
        raise CmuError(f"{path}: malformed ASF ({error!r})") from error
    bones["root"] = Bone("root", root_axis, ["tx", "ty", "tz", "rx", "ry", "rz"])
    order, queue = [], ["root"]
    while queue:
        name = queue.pop(0)
        if name not in bones:
            raise CmuError(f"{path}: the hierarchy names unknown bone {name!r}")
        order.append(name)
        for child in children.get(name, []):
            if child not in bones:
                raise CmuError(f"{path}: the hierarchy names unknown bone {child!r}")
            bones[child].parent = name
            queue.append(child)
    missing = sorted(set(SMPL_FROM_CMU.values()) - set(order))
    if missing:
        raise CmuError(f"{path}: not CMU's skeleton, no bone(s) {missing}")
    return Skeleton(bones, order)


def parse_amc(path: str | Path, skeleton: Skeleton) -> dict[str, np.ndarray]:
    """Per bone, its degrees of freedom per frame (T, n_dofs); missing bones keep zeros."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        raise CmuError(f"{path}: cannot read ({error})") from error
    frames: list[dict[str, list[float]]] = []
    try:
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ":")):
                continue
            words = line.split()
            if len(words) == 1 and words[0].isdigit():
                frames.append({})
                continue
            if not frames:
                raise ValueError("values before the first frame number")
            frames[-1][words[0]] = [float(w) for w in words[1:]]
    except ValueError as error:
        raise CmuError(f"{path}: malformed AMC ({error})") from error
    if len(frames) < 2:
        raise CmuError(f"{path}: fewer than 2 frames")
    values = {}
    for name, bone in skeleton.bones.items():
        data = np.zeros((len(frames), len(bone.dofs)))
        for index, frame in enumerate(frames):
            if name in frame:
                row = frame[name]
                if len(row) != len(bone.dofs):
                    raise CmuError(
                        f"{path}: frame {index + 1}, bone {name}: {len(row)} values, expected {len(bone.dofs)}"
                    )
                data[index] = row
        values[name] = data
    return values


def _motion_rotation(bone: Bone, values: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation of a bone's degrees of freedom, in its own axis frame."""
    angles = np.zeros((len(values), 3))
    for column, dof in enumerate(bone.dofs):
        if dof in ("rx", "ry", "rz"):
            angles[:, "xyz".index(dof[1])] = values[:, column]
    return Rotation.from_euler("xyz", angles, degrees=True).as_matrix()


def world_rotations(skeleton: Skeleton, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each bone's world rotation from rest, (T, 3, 3): M = M_parent C L C^T."""
    world = {}
    for name in skeleton.order:
        bone = skeleton.bones[name]
        local = bone.axis @ _motion_rotation(bone, values[name]) @ bone.axis.T
        world[name] = local if bone.parent is None else world[bone.parent] @ local
    return world


def to_smpl(skeleton: Skeleton, values: dict[str, np.ndarray], name: str, step: int = 4) -> Motion:
    """An SMPL motion at 120/step fps (SURREAL: step 4, 30 fps)."""
    world = world_rotations(skeleton, values)
    count = len(values["root"])
    frames = slice(0, count, step)
    global_ = np.zeros((NUM_JOINTS, len(range(count)[frames]), 3, 3))
    local = np.zeros_like(global_)
    for joint, joint_name in enumerate(SMPL_JOINT_NAMES):
        global_[joint] = world[SMPL_FROM_CMU[joint_name]][frames]
        if joint == 0:
            local[0] = Y_UP_TO_Z_UP @ global_[0]
        else:
            local[joint] = np.swapaxes(global_[SMPL_PARENTS[joint]], -1, -2) @ global_[joint]
    pose = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(NUM_JOINTS, -1, 3)
    root = values["root"][frames]
    translation = root[:, [skeleton.bones["root"].dofs.index(k) for k in ("tx", "ty", "tz")]]
    trans = (translation * UNIT_METRES) @ Y_UP_TO_Z_UP.T
    return Motion(
        name=name,
        pose=pose.transpose(1, 0, 2).reshape(-1, 3 * NUM_JOINTS).astype(np.float32),
        trans=trans.astype(np.float32),
        fps=CAPTURE_FPS / step,
    )


def convert_folder(folder: str | Path, names: list[str] | None = None) -> list[Motion]:
    """SMPL motions of the AMC files under a folder (each with its subject's ASF beside it),
    named `<subject>_<trial>` as CMU names them (e.g. 01_01)."""
    folder = Path(folder)
    motions = []
    for amc in sorted(folder.rglob("*.amc")):
        name = amc.stem
        if names and name not in names:
            continue
        subject = name.split("_")[0]
        asf = next(iter(sorted(amc.parent.glob(f"{subject}.asf"))), None)
        if asf is None:
            raise CmuError(f"{amc}: no {subject}.asf beside it")
        skeleton = parse_asf(asf)
        motions.append(to_smpl(skeleton, parse_amc(amc, skeleton), name, int(round(CAPTURE_FPS / FPS))))
    if not motions:
        raise CmuError(f"{folder}: no AMC motion found")
    return motions
