import numpy as np

from pipeline.body_model import skeleton


def test_kintree_table_is_smpls():
    table = skeleton.kintree_table()
    assert table.shape == (2, 24)
    assert table[0, 0] == skeleton.KINTREE_ROOT_PARENT
    assert list(table[0, 1:]) == list(skeleton.SMPL_PARENTS[1:])
    # every parent comes before its child, as forward kinematics needs
    assert all(skeleton.SMPL_PARENTS[j] < j for j in range(1, 24))


def test_left_right_joints_mirror_through_the_tree():
    names = skeleton.SMPL_JOINT_NAMES
    for joint, name in enumerate(names):
        if name.startswith("left_"):
            mirror = names.index("right_" + name[5:])
            parent, mirror_parent = skeleton.SMPL_PARENTS[joint], skeleton.SMPL_PARENTS[mirror]
            assert names[parent].replace("left_", "") == names[mirror_parent].replace("right_", "")


def test_bodynet_parts_merge_surreal_parts():
    # SURREAL's part ids are 1-based joint ids; BodyNet merges them into 14 classes
    smpl_parts = np.arange(25)
    merged = skeleton.bodynet_part_labels(smpl_parts)
    assert merged[0] == 0  # background stays background
    assert set(merged[1:]) == set(range(1, 15))
    names = skeleton.BODYNET_PART_NAMES
    assert names[merged[16] - 1] == "head"  # SMPL part 16 is the head joint's
    assert names[merged[17] - 1] == "left_upper_arm"  # leftArm
    assert names[merged[5] - 1] == "left_lower_leg"  # leftLeg
    assert names[merged[1] - 1] == "torso"  # hips


def test_bodynet_joints_are_mpii_order():
    names = [skeleton.SMPL_JOINT_NAMES[j] for j in skeleton.BODYNET_JOINTS]
    assert names[:3] == ["left_ankle", "left_knee", "left_hip"]
    assert names[6:10] == ["pelvis", "spine2", "neck", "head"]
    assert len(set(names)) == 16


def test_part_labels_follow_the_heaviest_weight():
    weights = np.zeros((3, 24))
    weights[0, 15] = 1.0
    weights[1, [4, 7]] = [0.4, 0.6]
    weights[2, 0] = 1.0
    assert list(skeleton.smpl_part_labels(weights)) == [16, 8, 1]


def test_the_part_voxels_group_bodynets_parts_by_limb_and_side():
    smpl = np.arange(1, 25)
    for bodynet, voxel in zip(skeleton.bodynet_part_labels(smpl), skeleton.voxel_part_labels(smpl)):
        name, group = skeleton.BODYNET_PART_NAMES[bodynet - 1], skeleton.VOXEL_PARTS[voxel - 1]
        if group in ("head", "torso"):
            assert name == group
        else:
            side, limb = group.split("_")
            ends = {"arm": ("arm", "hand"), "leg": ("leg", "foot")}[limb]
            assert name.startswith(side) and name.endswith(ends), (name, group)
    assert skeleton.voxel_part_labels(np.array([0])).tolist() == [0]
