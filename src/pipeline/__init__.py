"""SURREAL + BodyNet, end to end: synthetic humans to 3D body shape. One subpackage per stage."""
