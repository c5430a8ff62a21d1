"""Folders as the inputs of a job: what a folder holds, cheaply for deciding a rerun, and
exactly for the record.

A job that reads a user's folder (background photographs, images to predict on, the SURREAL
release) must rerun when a file in it changes, which the folder's own modification time does
not show (an edited file leaves it alone). `folder_state` is a digest of every file's path,
size and modification time: a stat per file, so it can be taken each time the workflow is
planned. `write_listing` records what a job read with each file's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from pipeline.atomic import atomic_output

CHUNK = 1 << 20


def folder_files(folder: str | Path, suffixes: Iterable[str] | None = None) -> list[Path]:
    """The files below `folder` (any depth, sorted), those whose suffix is one of `suffixes`
    (lower case, with the dot) when given; hidden files and folders are left out."""
    folder = Path(folder)
    wanted = None if suffixes is None else {suffix.lower() for suffix in suffixes}
    files = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for name in names:
            if name.startswith(".") or (wanted is not None and Path(name).suffix.lower() not in wanted):
                continue
            files.append(Path(directory) / name)
    return sorted(files)


def folder_state(folder: str | Path, suffixes: Iterable[str] | None = None) -> str:
    """A digest of the files below `folder` (`folder_files`): each one's path relative to it,
    size and modification time. It changes when a file is added, removed, renamed or written;
    'missing' for a folder that does not exist (the job's own check names it)."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    digest = hashlib.sha256()
    for path in folder_files(folder, suffixes):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_listing(path: str | Path, files: Iterable[str | Path], names: Iterable[str] | None = None) -> None:
    """A tab-separated record of the files a job read, one line each: its name (`names`, else
    its path), size in bytes and SHA-256; written atomically."""
    files = [Path(file) for file in files]
    names = [str(file) for file in files] if names is None else list(names)
    lines = ["path\tbytes\tsha256"]
    lines += [f"{name}\t{file.stat().st_size}\t{sha256_of(file)}" for file, name in zip(files, names, strict=True)]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
