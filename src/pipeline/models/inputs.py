"""What the 3D-pose and voxel networks may read, and what BodyNet's read: names only, so that
the workflow can name them without importing torch."""

INPUTS = ("rgb", "pose2d", "segm", "pose3d", "flow")
IMAGES = ("rgb", "flow")  # inputs read from the sample itself, not predicted
BODYNET_INPUTS = {"pose3d": ("rgb", "pose2d", "segm"), "voxels": ("rgb", "pose2d", "segm", "pose3d")}  # the paper's
