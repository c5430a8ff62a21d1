"""Temporally coherent meshes from video (Liu, Akhtar & Mian, "Temporally Coherent Full 3D Mesh
Human Pose Recovery from Monocular Video", 2019): clips seen by four telephoto cameras that
follow the pelvis, a frame model that regresses SMPL's parameters with iterative error
feedback, the video model built on it (soft attention and an LSTM), and the paper's tables."""
