"""Training BodyNet's networks: samples, losses, the loop, checkpoints."""
