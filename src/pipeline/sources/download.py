"""Downloading and unpacking the real data sources: resumable, verified, retried, safe.

A download goes to `<dest>.part` and is renamed to `<dest>` only once its size and SHA-256
(when known) match. An interrupted download resumes where it stopped (HTTP Range); a server
that ignores ranges restarts it. Connection failures and server errors are retried with
growing pauses. Credentials (HTTP basic auth, as SURREAL's server asks) come from the
environment or `~/.netrc`, and are never written to logs, MLflow or files.

Archives are unpacked into a temporary folder next to the target and renamed when complete;
a member whose path would land outside the target (absolute, `..`, links pointing out,
devices) stops the extraction with an error naming it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import netrc
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pipeline.atomic import atomic_output
from pipeline.errors import InputError

log = logging.getLogger("pipeline.sources")
CHUNK = 1 << 20


class DownloadError(InputError):
    """A download that failed for good, or an archive that cannot be unpacked safely."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def __repr__(self) -> str:  # never show the password
        return f"Credentials(user={self.user!r}, password=***)"


def find_credentials(url: str, variable_prefix: str | None = None) -> Credentials | None:
    """`<PREFIX>_USERNAME` / `<PREFIX>_PASSWORD` from the environment, else the host's
    `~/.netrc` entry (`NETRC` may point elsewhere), else None."""
    if variable_prefix:
        user = os.environ.get(f"{variable_prefix}_USERNAME")
        password = os.environ.get(f"{variable_prefix}_PASSWORD")
        if user and password:
            return Credentials(user, password)
    host = urlsplit(url).hostname or ""
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if os.path.exists(path):
        try:
            entry = netrc.netrc(path).authenticators(host)
        except (netrc.NetrcParseError, OSError) as error:
            raise DownloadError(f"{path}: cannot read ({error})") from error
        if entry and entry[0] and entry[2]:
            return Credentials(entry[0], entry[2])
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, url: str, size: int | None, sha256: str | None) -> None:
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise DownloadError(f"{url}: got {actual} bytes, expected {size}")
    if sha256 is not None and sha256_of(path).lower() != sha256.lower():
        raise DownloadError(f"{url}: SHA-256 mismatch (expected {sha256})")


def _fetch(url: str, part: Path, credentials: Credentials | None, timeout: float, progress: bool) -> None:
    """One attempt: continue `part` from its current size (or start it)."""
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "pipeline.sources"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    if credentials is not None:
        request.add_header("Authorization", credentials.header())
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to fetch
            return
        raise
    with response:
        resumed = response.status == 206
        if have and not resumed:
            have = 0  # the server ignored the range: start over
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        mode = "ab" if resumed else "wb"
        with (
            open(part, mode) as handle,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name, disable=not progress) as bar,
        ):
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                handle.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    size: int | None = None,
    credentials: Credentials | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
) -> Path:
    """Fetch `url` to `dest` unless a verified copy is already there."""
    dest = Path(dest)
    if dest.exists():
        _verify(dest, url, size, sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, part, credentials, timeout, progress)
            break
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                raise DownloadError(f"{url}: access refused (HTTP {error.code}); check the credentials") from None
            if error.code < 500 or attempt == retries:
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            if attempt == retries:
                raise DownloadError(f"{url}: failed after {retries} attempts ({error})") from None
            reason = str(error)
        pause = backoff ** (attempt - 1)
        log.warning("%s: attempt %d failed (%s); retrying in %.1f s", url, attempt, reason, pause)
        time.sleep(pause)
    try:
        _verify(part, url, size, sha256)
    except DownloadError:
        part.unlink(missing_ok=True)  # a wrong file cannot be resumed into a right one
        raise
    os.replace(part, dest)
    return dest


def _safe_member_path(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")) or ":" in path.parts[0]:
        raise DownloadError(f"{archive}: member {name!r} would be written outside the target")
    return path


def extract(archive: str | Path, target: str | Path) -> Path:
    """Unpack a .zip or a tar (any compression) into `target`, whole or not at all."""
    archive, target = Path(archive), Path(target)
    with atomic_output(target) as tmp:
        tmp.mkdir()
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                for info in bundle.infolist():
                    member = _safe_member_path(info.filename, archive)
                    mode = info.external_attr >> 16
                    if (mode & 0o170000) == 0o120000:
                        raise DownloadError(f"{archive}: member {info.filename!r} is a symbolic link")
                    out = tmp.joinpath(*member.parts)
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with bundle.open(info) as source, open(out, "wb") as sink:
                        shutil.copyfileobj(source, sink, CHUNK)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as bundle:
                members = bundle.getmembers()
                for member in members:
                    _safe_member_path(member.name, archive)
                    if member.issym() or member.islnk() or member.isdev():
                        raise DownloadError(f"{archive}: member {member.name!r} is a link or a device")
                bundle.extractall(tmp, members=members, filter="data")
        else:
            raise DownloadError(f"{archive}: neither a zip nor a tar archive")
    return target
