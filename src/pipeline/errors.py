"""Errors about bad inputs (config, data or model files): each names the file or key."""

import json
from pathlib import Path


class InputError(ValueError):
    """An input that is missing, unreadable or malformed; the message names it."""


def read_json_record(path: str | Path, what: str, required: tuple[str, ...]) -> dict:
    """A JSON object holding the `required` keys, or an InputError naming the file: `what`
    completes "not a readable ..." and "not a(n) ..." ("sparsity analysis")."""
    path = Path(path)
    article = "an" if what[0] in "aeiou" else "a"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable {what} ({error})") from error
    missing = [key for key in required if not isinstance(record, dict) or key not in record]
    if missing:
        raise InputError(f"{path}: not {article} {what} (no {', '.join(missing)})")
    return record
