"""Downloads against a local HTTP server the tests start, safe unpacking, CMU motions."""

import hashlib

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.sources import cmu
from pipeline.sources.download import Credentials, DownloadError, download, extract, find_credentials
from source_files import Files, cmu_amc, cmu_asf, tar_bytes, zip_bytes

PAYLOAD = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verifies_size_and_checksum(server, tmp_path):
    Files.files["/data.bin"] = PAYLOAD
    path = download(f"{server}/data.bin", tmp_path / "data.bin", sha256=DIGEST, size=len(PAYLOAD), progress=False)
    assert path.read_bytes() == PAYLOAD
    # a verified copy is not fetched again
    download(f"{server}/data.bin", path, sha256=DIGEST, progress=False)
    assert len(Files.requests) == 1


def test_a_wrong_checksum_fails_and_leaves_nothing(server, tmp_path):
    Files.files["/data.bin"] = PAYLOAD
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download(f"{server}/data.bin", tmp_path / "data.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_dropped_connection_resumes_where_it_stopped(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = PAYLOAD, '"v1"'
    Files.cut_after["/data.bin"] = 100_000
    path = download(f"{server}/data.bin", tmp_path / "data.bin", sha256=DIGEST, backoff=0.01, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert [r["range"] for r in Files.requests] == [None, "bytes=100000-"]


def test_a_partial_file_from_an_earlier_run_is_continued(server, tmp_path):
    Files.files["/data.bin"], Files.etags["/data.bin"] = PAYLOAD, '"v1"'
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:12345])
    (tmp_path / "data.bin.part.validator").write_text('"v1"')  # the version those bytes came from
    download(f"{server}/data.bin", tmp_path / "data.bin", sha256=DIGEST, progress=False)
    assert Files.requests[0]["range"] == "bytes=12345-" and Files.requests[0]["if_range"] == '"v1"'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_server_errors_are_retried_then_reported(server, tmp_path):
    Files.files["/data.bin"] = PAYLOAD
    Files.failures["/data.bin"] = 2
    download(f"{server}/data.bin", tmp_path / "data.bin", backoff=0.01, progress=False)
    assert len(Files.requests) == 3
    Files.failures["/other.bin"] = 10
    Files.files["/other.bin"] = PAYLOAD
    with pytest.raises(DownloadError, match="other.bin: HTTP 503"):
        download(f"{server}/other.bin", tmp_path / "other.bin", retries=3, backoff=0.01, progress=False)
    with pytest.raises(DownloadError, match="missing.bin: HTTP 404"):
        download(f"{server}/missing.bin", tmp_path / "missing.bin", progress=False)


def test_credentials_come_from_the_environment_or_netrc(server, tmp_path, monkeypatch):
    Files.files["/private.bin"] = PAYLOAD
    Files.password = "s3cret"
    with pytest.raises(DownloadError, match="access refused \\(HTTP 401\\)"):
        download(f"{server}/private.bin", tmp_path / "a.bin", progress=False)
    monkeypatch.setenv("SURREAL_USERNAME", "user")
    monkeypatch.setenv("SURREAL_PASSWORD", "s3cret")
    credentials = find_credentials(f"{server}/private.bin", "SURREAL")
    assert "s3cret" not in repr(credentials)
    download(f"{server}/private.bin", tmp_path / "a.bin", credentials=credentials, progress=False)
    monkeypatch.delenv("SURREAL_USERNAME")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert find_credentials(f"{server}/private.bin", "SURREAL") == Credentials("user", "s3cret")


def test_archives_unpack_whole(tmp_path):
    for name, data in (
        ("a.zip", zip_bytes({"x/1.txt": b"one", "x/y/2.txt": b"two"})),
        ("a.tar.gz", tar_bytes({"x/1.txt": b"one"})),
    ):
        archive = tmp_path / name
        archive.write_bytes(data)
        out = extract(archive, tmp_path / f"out_{name}")
        assert (out / "x/1.txt").read_bytes() == b"one"


@pytest.mark.parametrize(
    "data",
    [
        zip_bytes({"../escape.txt": b"x"}),
        zip_bytes({"/etc/escape.txt": b"x"}),
        tar_bytes({"ok.txt": b"x", "../../escape.txt": b"x"}),
        tar_bytes({"ok.txt": b"x"}, link=("link", "/etc/passwd")),
    ],
)
def test_archives_that_reach_outside_are_refused(tmp_path, data):
    archive = tmp_path / "evil.archive"
    archive.write_bytes(data)
    with pytest.raises(DownloadError, match="evil.archive: member"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "escape.txt").exists()


# --- CMU ---------------------------------------------------------------------------------


def test_cmu_motions_keep_each_bones_world_rotation(tmp_path):
    (tmp_path / "07").mkdir()
    (tmp_path / "07/07.asf").write_text(cmu_asf())
    text, _ = cmu_amc(12, np.random.default_rng(0))
    (tmp_path / "07/07_01.amc").write_text(text)
    skeleton = cmu.parse_asf(tmp_path / "07/07.asf")
    values = cmu.parse_amc(tmp_path / "07/07_01.amc", skeleton)
    world = cmu.world_rotations(skeleton, values)
    (motion,) = cmu.convert_folder(tmp_path)
    assert motion.name == "07_01" and motion.pose.shape == (3, 72) and motion.fps == 30.0
    # SMPL's forward kinematics on the converted pose gives back each bone's world rotation
    from pipeline.body_model.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS

    local = Rotation.from_rotvec(motion.pose.reshape(-1, 24, 3).reshape(-1, 3)).as_matrix().reshape(3, 24, 3, 3)
    to_y_up = Rotation.from_euler("x", -90, degrees=True).as_matrix()
    chain = [to_y_up @ local[:, 0]]
    for joint in range(1, 24):
        chain.append(chain[SMPL_PARENTS[joint]] @ local[:, joint])
    for joint, name in enumerate(SMPL_JOINT_NAMES):
        assert np.allclose(chain[joint], world[cmu.SMPL_FROM_CMU[name]][::4], atol=1e-5), name


def test_broken_cmu_files_are_named(tmp_path):
    (tmp_path / "bad.asf").write_text(":bonedata\n  begin\n     id 1\n  end\n")
    with pytest.raises(cmu.CmuError, match="bad.asf"):
        cmu.parse_asf(tmp_path / "bad.asf")
    asf = tmp_path / "01.asf"
    asf.write_text(cmu_asf())
    (tmp_path / "01_01.amc").write_text(":DEGREES\n1\nroot 0 0 0 0 0 zero\n2\n")
    with pytest.raises(cmu.CmuError, match="01_01.amc: malformed AMC"):
        cmu.parse_amc(tmp_path / "01_01.amc", cmu.parse_asf(asf))
