"""Body models: SMPL-format models built from anny, read, posed, measured and drawn."""
