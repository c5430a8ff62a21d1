"""The networks' named choices, without the networks: what the 3D-pose and voxel networks may
read and what BodyNet's read, and how the 3D-pose network may be trained. Names only, so that
the workflow and the commands' options name them without importing torch."""

INPUTS = ("rgb", "pose2d", "segm", "pose3d", "flow")
IMAGES = ("rgb", "flow")  # inputs read from the sample itself, not predicted
BODYNET_INPUTS = {"pose3d": ("rgb", "pose2d", "segm"), "voxels": ("rgb", "pose2d", "segm", "pose3d")}  # the paper's
# The 3D-pose network's losses (config bodynet.pose3d_loss): BodyNet's MSE on the volumes, or a
# softmax over each joint's volume trained by cross-entropy, soft-argmax L1, or both summed.
POSE3D_LOSSES = ("mse", "softmax", "integral", "softmax+integral")
# The RGB-fed 2D networks' backbone (config bodynet.backbone_2d): BodyNet's stacked hourglass, or
# SelecSLS (Mehta et al., "XNect", 2020) with a decoder to the heatmaps' resolution.
BACKBONES_2D = ("hourglass", "selecsls")
SELECSLS_DEPTHS = ("42", "60", "84")  # SelecSLS's levels (pipeline.models.selecsls.LEVELS)
