"""Downloads and archives under hostile input: credentials that must stay on their origin, a
password in the URL, a file that changes between attempts, a lying 416, and archives whose
member names or bytes are odd or broken. The servers are local (`source_files.Files`)."""

import hashlib
import io
import itertools
import logging
import tarfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.sources.__main__ as sources_main
import pipeline.sources.download as download_module
from pipeline.sources.download import Credentials, DownloadError, download, extract
from source_files import Files, reset_files, serving, tar_bytes, zip_bytes

VERSION_A = bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8))
VERSION_B = bytes(np.random.default_rng(2).integers(0, 256, 200_000, dtype=np.uint8))
SECRET = "s3cret-Pa55"


@pytest.fixture
def server():
    """A fresh server of `Files`, as conftest's, that stops at once."""
    reset_files()
    with serving() as url:
        yield url


# --- credentials -------------------------------------------------------------------------


def test_credentials_do_not_follow_a_redirect_to_another_origin(server, tmp_path):
    with serving() as other:
        Files.files["/data.bin"] = VERSION_A
        Files.redirects["/moved.bin"] = f"{other}/data.bin"
        credentials = Credentials("user", SECRET)
        path = download(f"{server}/moved.bin", tmp_path / "data.bin", credentials=credentials, progress=False)
    assert path.read_bytes() == VERSION_A
    first, second = Files.requests
    assert first["authorization"] == credentials.header()
    assert second["port"] == int(other.rsplit(":", 1)[1])
    assert second["authorization"] is None


def test_credentials_follow_a_redirect_on_the_same_origin(server, tmp_path):
    Files.files["/data.bin"] = VERSION_A
    Files.redirects["/moved.bin"] = "/data.bin"
    Files.password = SECRET
    credentials = Credentials("user", SECRET)
    path = download(f"{server}/moved.bin", tmp_path / "data.bin", credentials=credentials, progress=False)
    assert path.read_bytes() == VERSION_A
    assert [r["authorization"] for r in Files.requests] == [credentials.header()] * 2


class RecordedRun:
    """What `stage_run` yields, doing nothing."""

    def log_metrics(self, *args, **kwargs):
        pass

    def set_tags(self, *args, **kwargs):
        pass


@pytest.fixture
def tracked_params(monkeypatch):
    """The parameters each run of the sources' entry point would log to MLflow."""
    recorded = []

    @contextmanager
    def stage_run(stage, params, rule=None, wildcards=None):
        recorded.append(params)
        yield RecordedRun()

    monkeypatch.setattr(sources_main, "stage_run", stage_run)
    return recorded


def test_a_password_in_the_url_never_shows(server, tmp_path, caplog, tracked_params):
    Files.files["/data.bin"] = VERSION_A
    host = server.removeprefix("http://")
    url, shown = f"http://user:{SECRET}@{host}/data.bin", f"http://***@{host}/data.bin"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DownloadError, match="environment or ~/.netrc") as raised:
        download(url, tmp_path / "a.bin", retries=1, progress=False)
    assert SECRET not in str(raised.value) and shown in str(raised.value)
    with pytest.raises(SystemExit) as exited:
        sources_main.main(["download", "--url", url, "--out", str(tmp_path / "b.bin"), "--retries", "1"])
    assert SECRET not in str(exited.value.code) and shown in str(exited.value.code)
    assert [params["url"] for params in tracked_params] == [shown]
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    assert not list(tmp_path.iterdir())


# --- resuming ----------------------------------------------------------------------------


def cut_off_once(server: str, dest: Path) -> None:
    """One attempt at `/data.bin` that the server cuts off after 80,000 bytes."""
    Files.cut_after["/data.bin"] = 80_000
    with pytest.raises(DownloadError, match="failed after 1 attempts"):
        download(f"{server}/data.bin", dest, retries=1, progress=False)


def test_a_file_changed_between_attempts_is_not_spliced(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = VERSION_A, '"a"'
    cut_off_once(server, tmp_path / "data.bin")
    assert (tmp_path / "data.bin.part").stat().st_size == 80_000
    Files.files["/data.bin"], Files.etags["/data.bin"] = VERSION_B, '"b"'
    path = download(f"{server}/data.bin", tmp_path / "data.bin", retries=1, progress=False)
    assert path.read_bytes() == VERSION_B
    assert Files.requests[-1]["range"] == "bytes=80000-" and Files.requests[-1]["if_range"] == '"a"'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_an_unchanged_file_is_resumed_with_its_validator(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = VERSION_A, '"a"'
    cut_off_once(server, tmp_path / "data.bin")
    path = download(f"{server}/data.bin", tmp_path / "data.bin", retries=1, progress=False)
    assert path.read_bytes() == VERSION_A
    assert [(r["range"], r["if_range"]) for r in Files.requests] == [(None, None), ("bytes=80000-", '"a"')]


def test_a_partial_file_without_a_validator_is_restarted(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = VERSION_B, '"b"'
    (tmp_path / "data.bin.part").write_bytes(VERSION_A[:12345])
    path = download(f"{server}/data.bin", tmp_path / "data.bin", progress=False)
    assert path.read_bytes() == VERSION_B
    assert Files.requests[0]["range"] is None


def test_a_weak_etag_is_no_validator(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = VERSION_A, 'W/"a"'
    cut_off_once(server, tmp_path / "data.bin")
    path = download(f"{server}/data.bin", tmp_path / "data.bin", retries=1, progress=False)
    assert path.read_bytes() == VERSION_A
    assert [r["range"] for r in Files.requests] == [None, None]


@pytest.mark.parametrize(
    ("headers", "validator"),
    [
        ({"ETag": '"a"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, '"a"'),
        (
            {
                "ETag": 'W/"a"',
                "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
                "Date": "Tue, 02 Jan 2024 00:00:00 GMT",
            },
            None,
        ),
        (
            {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Date": "Tue, 02 Jan 2024 00:00:00 GMT"},
            "Mon, 01 Jan 2024 00:00:00 GMT",
        ),
        ({"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Date": "Mon, 01 Jan 2024 00:00:00 GMT"}, None),
        ({"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, None),
        ({"Last-Modified": "yesterday", "Date": "Tue, 02 Jan 2024 00:00:00 GMT"}, None),
        ({}, None),
    ],
    ids=["strong-etag", "weak-etag", "strong-date", "date-of-the-answer", "no-date", "unreadable-date", "nothing"],
)
def test_only_a_strong_validator_is_kept(headers, validator):
    """If-Range may carry a strong ETag, or a Last-Modified a second or more before the answer's
    Date when there is no ETag at all."""
    assert download_module.resume_validator(headers) == validator


def test_a_416_for_another_size_does_not_become_the_file(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = VERSION_B[:300], '"b"'
    (tmp_path / "data.bin.part").write_bytes(VERSION_A[:500])
    (tmp_path / "data.bin.part.validator").write_text('"b"')
    path = download(f"{server}/data.bin", tmp_path / "data.bin", progress=False)
    assert path.read_bytes() == VERSION_B[:300]
    assert [r["range"] for r in Files.requests] == ["bytes=500-", None]


def test_a_416_for_the_same_size_completes_the_file(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = VERSION_A, '"a"'
    (tmp_path / "data.bin.part").write_bytes(VERSION_A)
    (tmp_path / "data.bin.part.validator").write_text('"a"')
    path = download(f"{server}/data.bin", tmp_path / "data.bin", progress=False)
    assert path.read_bytes() == VERSION_A
    assert len(Files.requests) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_an_unpinned_download_logs_its_sha256(server, tmp_path, caplog):
    Files.files["/data.bin"] = VERSION_A
    caplog.set_level(logging.INFO, logger="pipeline.sources")
    download(f"{server}/data.bin", tmp_path / "data.bin", progress=False)
    assert hashlib.sha256(VERSION_A).hexdigest() in caplog.text


def test_a_pinned_md5_is_checked(server, tmp_path):
    Files.files["/data.bin"] = VERSION_A
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        download(f"{server}/data.bin", tmp_path / "a.bin", md5="0" * 32, progress=False)
    assert not list(tmp_path.iterdir())
    digest = hashlib.md5(VERSION_A).hexdigest()
    assert download(f"{server}/data.bin", tmp_path / "a.bin", md5=digest, progress=False).exists()


# --- archives ----------------------------------------------------------------------------


def tar_of(*members: tuple[str, bytes | None]) -> bytes:
    """An uncompressed tar of (name, data) members; data None makes a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as bundle:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                bundle.addfile(info)
            else:
                info.size = len(data)
                bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_of(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members:
            bundle.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def only_the_archive_is_left(folder: Path, archive: Path) -> bool:
    return list(folder.iterdir()) == [archive]


@pytest.mark.parametrize(
    "data",
    [
        tar_of((".", None), ("./a", None), ("./a/b.txt", b"abc")),
        tar_of(("./a/b.txt", b"abc")),
        zip_of(("./", b""), ("./a/b.txt", b"abc")),
    ],
    ids=["tar-of-dot", "tar-dot-prefix", "zip-dot-prefix"],
)
def test_dot_members_extract_normally(tmp_path, data):
    archive = tmp_path / "dot.archive"
    archive.write_bytes(data)
    out = extract(archive, tmp_path / "out")
    assert (out / "a" / "b.txt").read_bytes() == b"abc"


def truncated_tar() -> bytes:
    data = tar_of(("a.txt", b"x" * 5000))
    return data[:2000]  # the header and part of the member


def truncated_tar_gz() -> bytes:
    data = tar_bytes({"a.txt": bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8))})
    return data[: len(data) // 2]


def zip_with_a_bad_crc() -> bytes:
    data = bytearray(zip_bytes({"a.txt": b"hello world"}))
    data[data.find(b"hello")] = ord("j")
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (truncated_tar(), r"broken\.archive: .*a\.txt"),
        (truncated_tar_gz(), r"broken\.archive"),
        (zip_with_a_bad_crc(), r"broken\.archive: .*a\.txt"),
        (tar_of(("a", b"file"), ("a/b", b"under a file")), r"broken\.archive: .*a/b"),
        (zip_of(("a", b"file"), ("a/b", b"under a file")), r"broken\.archive: .*a/b"),
    ],
    ids=["truncated-tar", "truncated-tar-gz", "zip-bad-crc", "tar-file-then-folder", "zip-file-then-folder"],
)
def test_broken_archives_fail_with_one_named_error(tmp_path, data, match):
    archive = tmp_path / "broken.archive"
    archive.write_bytes(data)
    with pytest.raises(DownloadError, match=match):
        extract(archive, tmp_path / "out")
    assert only_the_archive_is_left(tmp_path, archive)


@pytest.mark.parametrize("pack", [tar_of, zip_of], ids=["tar", "zip"])
def test_a_colon_inside_a_name_is_accepted(tmp_path, pack):
    archive = tmp_path / "colon.archive"
    names = ["ab:c.txt", "d/a:b.txt", "12:30.txt"]
    archive.write_bytes(pack(*[(name, name.encode()) for name in names]))
    out = extract(archive, tmp_path / "out")
    assert all((out / name).read_bytes() == name.encode() for name in names)


# `a:b.txt` is one of these: Windows reads it as `b.txt` on drive A:
@pytest.mark.parametrize(
    "name", ["C:/x.txt", "C:x.txt", "a:b.txt", "c:\\x.txt", "\\x.txt", "\\\\server\\share\\x.txt", "a\\..\\..\\x.txt"]
)
@pytest.mark.parametrize("pack", [tar_of, zip_of], ids=["tar", "zip"])
def test_drive_letters_and_backslash_roots_are_refused(tmp_path, pack, name):
    archive = tmp_path / "evil.archive"
    archive.write_bytes(pack((name, b"x")))
    with pytest.raises(DownloadError, match="evil.archive: member"):
        extract(archive, tmp_path / "out")
    assert only_the_archive_is_left(tmp_path, archive)


NAMES = st.lists(st.sampled_from(["/", ".", "..", ":", "\\", "a", "b", "C"]), min_size=1, max_size=6).map("".join)
DEPTH = 7  # more levels than a generated name can climb with `..`
cases = itertools.count()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=4, unique=True), as_zip=st.booleans())
def test_generated_member_names_stay_inside_or_fail_cleanly(tmp_path, names, as_zip):
    case = tmp_path / f"case{next(cases)}"
    folder = case.joinpath(*["d"] * DEPTH)
    folder.mkdir(parents=True)
    archive = folder / "gen.archive"
    members = [(name, name.encode()) for name in names]
    archive.write_bytes(zip_of(*members) if as_zip else tar_of(*members))
    target = folder / "out"
    try:
        extract(archive, target)
    except DownloadError as error:
        assert "gen.archive" in str(error)
        assert only_the_archive_is_left(folder, archive)
    else:
        assert sorted(p.name for p in folder.iterdir()) == ["gen.archive", "out"]
        for path in target.rglob("*"):
            assert path.resolve().is_relative_to(target.resolve())
    written = {p for p in case.rglob("*") if not p.is_dir()}
    inside = {p for p in written if p.is_relative_to(target)}
    assert written - inside == {archive}
