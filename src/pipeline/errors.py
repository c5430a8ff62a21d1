"""Errors about bad inputs (config, data or model files): each names the file or key."""


class InputError(ValueError):
    """An input that is missing, unreadable or malformed; the message names it."""
