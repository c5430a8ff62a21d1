"""Downloading and unpacking the real data sources: resumable, verified, retried, safe.

A download goes to `<dest>.part` and is renamed to `<dest>` only once its size, SHA-256 and
MD5 (those that are known) match; without a pinned SHA-256 the one it got is logged, to pin.
The server's Content-Length is checked on every transfer. An interrupted download resumes
where it stopped (HTTP Range) only while the server still has the same version of the file:
the version's validator (a strong ETag, else a strong Last-Modified) is kept in
`<dest>.part.validator` and sent as If-Range, so a changed file comes back whole instead of
being spliced; a partial file without a validator is started over. Connection failures and
server errors are retried with growing pauses.

Credentials (HTTP basic auth, as SURREAL's server asks) come from the environment or
`~/.netrc`, never from the URL (a `user:password@` URL is refused: it would show in commands,
logs and MLflow); they go only to the origin they were given for, not along a redirect to
another scheme, host or port. Messages show URLs through `redact_url`.

Archives are unpacked into a temporary folder next to the target and renamed when complete;
a member whose path would land outside the target (absolute, `..`, a drive letter, a
backslash root, links, devices) stops the extraction with an error naming it, and so does a
truncated or corrupt archive: nothing is left behind.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import logging
import lzma
import netrc
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import urlsplit

from pipeline.atomic import atomic_output, write_text
from pipeline.errors import InputError
from pipeline.listing import sha256_of

log = logging.getLogger("pipeline.sources")
CHUNK = 1 << 20
USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")  # scheme://user:password@
DEFAULT_PORTS = {"http": 80, "https": 443}


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


def redact_url(url: str) -> str:
    """`url` with its `user:password@` part, if any, shown as `***@`: the form every message,
    log record and tracked parameter uses."""
    return USERINFO.sub(r"\1***@", url)


def check_url(url: str) -> None:
    """A DownloadError unless `url` is an http(s) URL without credentials in it."""
    shown = redact_url(url)
    if shown != url:
        raise DownloadError(
            f"{shown}: a user name or password in the URL is not accepted (it would show in commands and "
            "logs); give the credentials through the environment or ~/.netrc"
        )
    origin = _origin(url)
    if origin is None:
        raise DownloadError(f"{shown}: not a valid URL")
    scheme, host, _ = origin
    if scheme not in DEFAULT_PORTS or not host:
        raise DownloadError(f"{shown}: not an http(s) URL")


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of `url`, the port made explicit; None for an unreadable URL."""
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None


class _OriginBoundRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, taking the credentials along only while they stay on their origin.

    urllib copies the headers of `add_header` onto any redirect, and those of
    `add_unredirected_header` onto none: the credentials are sent unredirected, and put back
    here for a redirect to the same scheme, host and port.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if USERINFO.match(newurl):
            raise DownloadError(f"{redact_url(req.full_url)}: redirected to an address with credentials in it")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        authorization = req.unredirected_hdrs.get("Authorization")
        if new is not None and authorization is not None:
            origin = _origin(req.full_url)
            if origin is not None and origin == _origin(new.full_url):
                new.add_unredirected_header("Authorization", authorization)
        return new


OPENER = urllib.request.build_opener(_OriginBoundRedirects)


def _digests(path: Path) -> dict[str, str]:
    """{"SHA-256": hex, "MD5": hex} of a file, read once."""
    digests = {"SHA-256": hashlib.sha256(), "MD5": hashlib.md5(usedforsecurity=False)}
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            for digest in digests.values():
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _verify(path: Path, shown: str, size: int | None, sha256: str | None, md5: str | None) -> None:
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise DownloadError(f"{shown}: got {actual} bytes, expected {size}")
    expected = {name: value.lower() for name, value in (("SHA-256", sha256), ("MD5", md5)) if value is not None}
    if expected:
        digests = _digests(path)
        for name, value in expected.items():
            if digests[name] != value:
                raise DownloadError(f"{shown}: {name} mismatch (expected {value})")


# --- resuming ----------------------------------------------------------------------------


def _validator_file(part: Path) -> Path:
    return part.with_name(part.name + ".validator")


def resume_validator(headers: Mapping[str, str]) -> str | None:
    """What names this version of the file in If-Range: its ETag when strong, else its
    Last-Modified when that is at least a second before the response's Date (a strong date);
    None when there is neither (a weak ETag, which If-Range must not carry, rules out the
    date too)."""
    etag = headers.get("ETag")
    if etag:
        return None if etag.startswith("W/") else etag
    modified, date = headers.get("Last-Modified"), headers.get("Date")
    try:
        strong = (email.utils.parsedate_to_datetime(date) - email.utils.parsedate_to_datetime(modified)).total_seconds()
    except (TypeError, ValueError):
        return None
    return modified if strong >= 1 else None


def _saved_validator(part: Path) -> str | None:
    try:
        value = _validator_file(part).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value if value and value.isprintable() else None


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _validator_file(part).unlink(missing_ok=True)


def _resume_point(part: Path) -> tuple[int, str | None]:
    """(bytes to keep, validator to send) for a partial file: (0, None) starts over, and a
    partial file without a validator is dropped, since the server could not tell whether it
    still has the file those bytes came from."""
    if not part.exists():
        return 0, None
    validator = _saved_validator(part)
    if validator is None:
        _discard(part)
        return 0, None
    return part.stat().st_size, validator


def _start_over(part: Path, validator: str | None) -> None:
    """Empty `part` for a whole new transfer and save the validator of what will fill it
    (removed first: a validator never sits beside bytes of another version)."""
    _validator_file(part).unlink(missing_ok=True)
    part.write_bytes(b"")
    if validator is not None:
        write_text(_validator_file(part), validator)


def _content_length(headers: Mapping[str, str]) -> int | None:
    try:
        length = int(headers.get("Content-Length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None


def _unsatisfiable_total(headers: Mapping[str, str] | None) -> int | None:
    """The size a 416 answer gives (`Content-Range: bytes */<total>`), or None."""
    found = re.fullmatch(r"bytes \*/(\d+)", (headers or {}).get("Content-Range", "").strip())
    return int(found[1]) if found else None


def _fetch(url: str, part: Path, credentials: Credentials | None, timeout: float, progress: bool) -> None:
    """One attempt: continue `part` if the server still has the same version, else fill it anew."""
    have, validator = _resume_point(part)
    request = urllib.request.Request(url, headers={"User-Agent": "pipeline.sources"})
    if have:
        request.add_header("Range", f"bytes={have}-")
        request.add_header("If-Range", validator)
    if credentials is not None:
        request.add_unredirected_header("Authorization", credentials.header())
    try:
        response = OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not have:
            raise
        error.close()
        if _unsatisfiable_total(error.headers) == have:
            return  # the partial file is already the whole file
        _discard(part)  # it holds more, or other, bytes than the server's file
        _fetch(url, part, credentials, timeout, progress)
        return
    with response:
        _receive(response, part, have, progress)


def _receive(response, part: Path, have: int, progress: bool) -> None:
    """Append the response's body to `part` (after its first `have` bytes when it answers the
    range, else in place of them); a ConnectionError when it ends short of Content-Length."""
    from tqdm import tqdm

    if not (have and response.status == 206):
        have = 0
        _start_over(part, resume_validator(response.headers))
    length = _content_length(response.headers)
    total = length + have if length is not None else None
    with (
        open(part, "ab") as handle,
        tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name, disable=not progress) as bar,
    ):
        while block := response.read(CHUNK):
            handle.write(block)
            bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size != total:
        raise ConnectionError(f"connection closed after {size} of {total} bytes")


def _fetch_with_retries(
    url: str, part: Path, credentials: Credentials | None, retries: int, timeout: float, backoff: float, progress: bool
) -> None:
    shown = redact_url(url)
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, part, credentials, timeout, progress)
            return
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                raise DownloadError(f"{shown}: access refused (HTTP {error.code}); check the credentials") from None
            if error.code < 500 or attempt == retries:
                raise DownloadError(f"{shown}: HTTP {error.code} {error.reason}") from None
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as error:
            if attempt == retries:
                raise DownloadError(f"{shown}: failed after {retries} attempts ({error})") from None
            reason = str(error)
        pause = backoff ** (attempt - 1)
        log.warning("%s: attempt %d failed (%s); retrying in %.1f s", shown, attempt, reason, pause)
        time.sleep(pause)


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
    md5: str | None = None,
) -> Path:
    """Fetch `url` to `dest` unless a verified copy is already there."""
    check_url(url)
    shown = redact_url(url)
    dest = Path(dest)
    if dest.exists():
        _verify(dest, shown, size, sha256, md5)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch_with_retries(url, part, credentials, retries, timeout, backoff, progress)
    try:
        _verify(part, shown, size, sha256, md5)
    except DownloadError:
        _discard(part)  # a wrong file cannot be resumed into a right one
        raise
    os.replace(part, dest)
    _validator_file(part).unlink(missing_ok=True)
    if sha256:
        log.info("%s: %d bytes, SHA-256 %s (checked)", shown, dest.stat().st_size, sha256.lower())
    else:
        log.info("%s: %d bytes, SHA-256 %s (not pinned)", shown, dest.stat().st_size, sha256_of(dest))
    return dest


# --- archives ----------------------------------------------------------------------------

# what a truncated or corrupt archive, or one whose members collide, raises while unpacking
BROKEN = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    NotImplementedError,  # a zip compression method Python lacks
    RuntimeError,  # an encrypted zip member
)


@contextmanager
def _unpacking(archive: Path, where: str = "") -> Iterator[None]:
    """Turn what a broken archive raises into one DownloadError naming it and, in `where`
    ("member 'a.txt'"), the member when known."""
    try:
        yield
    except BROKEN as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise DownloadError(f"{archive}: {where + ' ' if where else ''}cannot be unpacked ({detail})") from error


def _member_parts(name: str, archive: Path) -> tuple[str, ...]:
    """The folders and file name a member named `name` is written to under the target (`./a`
    is `a`; `.` is the target itself); a DownloadError for a name that leads outside it as
    POSIX or Windows reads it: with `..` (`a/../..`, `a\\..\\..`), absolute or on a drive
    (`/x`, `\\x`, `C:/x`, `C:x`, `\\\\server\\share`). A colon anywhere but after a leading
    single letter (`ab:c.txt`, `x/a:b.txt`) is an ordinary character."""
    path, windows = PurePosixPath(name), PureWindowsPath(name)
    climbs = ".." in path.parts or ".." in windows.parts
    if climbs or path.is_absolute() or windows.drive or windows.root:
        raise DownloadError(f"{archive}: member {name!r} would be written outside the target")
    return path.parts


def _extract_zip(archive: Path, tmp: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            parts = _member_parts(info.filename, archive)
            if ((info.external_attr >> 16) & 0o170000) == 0o120000:
                raise DownloadError(f"{archive}: member {info.filename!r} is a symbolic link")
            out = tmp.joinpath(*parts)
            with _unpacking(archive, f"member {info.filename!r}"):
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(info) as source, open(out, "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)


def _tar_members(bundle: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """Every member's header, read before anything is written: a tar cut short fails here,
    naming the member it ends after."""
    members: list[tarfile.TarInfo] = []
    while True:
        with _unpacking(archive, f"after member {members[-1].name!r}" if members else ""):
            member = bundle.next()
        if member is None:
            return members
        members.append(member)


def _extract_tar(archive: Path, tmp: Path) -> None:
    with tarfile.open(archive) as bundle:
        members = _tar_members(bundle, archive)
        for member in members:  # all checked before anything is written
            _member_parts(member.name, archive)
            if member.issym() or member.islnk() or member.isdev():
                raise DownloadError(f"{archive}: member {member.name!r} is a link or a device")
        for member in members:
            with _unpacking(archive, f"member {member.name!r}"):
                bundle.extract(member, tmp, filter="data")


def extract(archive: str | Path, target: str | Path) -> Path:
    """Unpack a .zip or a tar (any compression) into `target`, whole or not at all."""
    archive, target = Path(archive), Path(target)
    with _unpacking(archive), atomic_output(target) as tmp:
        tmp.mkdir()
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp)
        else:
            raise DownloadError(f"{archive}: neither a zip nor a tar archive")
    return target
