"""A trained BodyNet on the user's own images: find the person, crop as training did, run
the networks, fit the body model to their voxels and 3D joints, and write what came out
(joints, body parameters, meshes, pictures). `predict.video` runs a trained mesh-video model
(`pipeline.video_mesh`) over the user's own video: a mesh per frame and an overlay video.

Without a known depth the body's distance is an estimate: the one at which the predicted
skeleton's bones have the lengths of the body model's own (`estimate_root_depth`), through
the given focal length or an assumed one. Metric positions are only as good as both.
"""
