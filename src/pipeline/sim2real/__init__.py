"""Motion for sim-to-real 3D pose (Doersch & Zisserman, "Sim2real transfer learning for 3D human
pose estimation: motion to the rescue", NeurIPS 2019): synthetic people composited over video
that moves as a hand-held camera's does, and a temporal model that reads a clip's flow and 2D
keypoints.

    compose   a rendered person over a hand-held camera's background, moved with the scene
              (camera tracking) or not, the composite's flow exact; the person's crop
    inputs    the network's channels: RGB, flow (u, v, |f|) / 20, 12 keypoint heatmaps
    network   a per-frame encoder, a bidirectional LSTM, heads for the current and next frame
    losses    Procrustes-aligned and pelvis-relative 3D joint errors
"""
