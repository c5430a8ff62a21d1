"""Synthetic humans: motions, backgrounds, rendered clips with their ground truth."""
