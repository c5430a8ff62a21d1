"""Inactive filters of trained networks: found, pruned for real, measured and tabulated."""
