"""Artifacts appear whole or not at all: write to a temporary name, then rename."""

import glob
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """A hidden sibling of `path` that keeps its suffix (libraries pick formats by suffix)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporaries of `path` whose writers died (a process killed mid-write)."""
    prefix = f".{path.stem}.tmp-"
    for stale in path.parent.glob(glob.escape(prefix) + "*" + glob.escape(path.suffix)):
        pid = stale.name[len(prefix) : len(stale.name) - len(path.suffix)]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(stale)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename.

    Works for files and directories. If the block raises (or the process dies), `path` is
    left as it was and the temporary is removed (or, after a kill, left hidden until the
    next write of `path` clears it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    _remove(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written for {path}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_json(path: str | Path, data: object) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
