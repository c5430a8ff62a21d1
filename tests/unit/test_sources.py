"""Downloads against a local HTTP server the tests start, safe unpacking, CMU motions."""

import base64
import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import snakemake, tiny_config, write_config
from pipeline.sources import cmu
from pipeline.sources.download import Credentials, DownloadError, download, extract, find_credentials
from pipeline.synthesis.motion import load_motions


class Files(BaseHTTPRequestHandler):
    """Serves `files` with Range support; can drop a connection, fail, or ask for a password."""

    files: dict[str, bytes] = {}
    cut_after: dict[str, int] = {}  # path -> bytes sent before dropping the first connection
    failures: dict[str, int] = {}  # path -> HTTP 503 answers before serving
    password: str | None = None
    requests: list[dict] = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        type(self).requests.append({"path": self.path, "range": self.headers.get("Range")})
        if self.password is not None:
            expected = "Basic " + base64.b64encode(f"user:{self.password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="files"')
                self.end_headers()
                return
        if self.failures.get(self.path, 0) > 0:
            self.failures[self.path] -= 1
            self.send_response(503)
            self.end_headers()
            return
        data = self.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.end_headers()
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        cut = self.cut_after.pop(self.path, None)
        self.wfile.write(body[:cut] if cut is not None else body)


@pytest.fixture
def server():
    Files.files, Files.cut_after, Files.failures, Files.password, Files.requests = {}, {}, {}, None, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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
    Files.files["/data.bin"] = PAYLOAD
    Files.cut_after["/data.bin"] = 100_000
    path = download(f"{server}/data.bin", tmp_path / "data.bin", sha256=DIGEST, backoff=0.01, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert [r["range"] for r in Files.requests] == [None, "bytes=100000-"]


def test_a_partial_file_from_an_earlier_run_is_continued(server, tmp_path):
    Files.files["/data.bin"] = PAYLOAD
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:12345])
    download(f"{server}/data.bin", tmp_path / "data.bin", sha256=DIGEST, progress=False)
    assert Files.requests[0]["range"] == "bytes=12345-"


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


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            bundle.addfile(info)
    return buffer.getvalue()


def test_archives_unpack_whole(tmp_path):
    for name, data in (
        ("a.zip", _zip({"x/1.txt": b"one", "x/y/2.txt": b"two"})),
        ("a.tar.gz", _tar({"x/1.txt": b"one"})),
    ):
        archive = tmp_path / name
        archive.write_bytes(data)
        out = extract(archive, tmp_path / f"out_{name}")
        assert (out / "x/1.txt").read_bytes() == b"one"


@pytest.mark.parametrize(
    "data",
    [
        _zip({"../escape.txt": b"x"}),
        _zip({"/etc/escape.txt": b"x"}),
        _tar({"ok.txt": b"x", "../../escape.txt": b"x"}),
        _tar({"ok.txt": b"x"}, link=("link", "/etc/passwd")),
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

# A skeleton with CMU's bones and rest directions (lengths in CMU's units); every bone can
# turn about its three axes.
CMU_BONES = {
    "lhipjoint": ("root", (0.69, -0.65, 0.32), 2.4),
    "lfemur": ("lhipjoint", (0.34, -0.94, 0), 7.1),
    "ltibia": ("lfemur", (0.34, -0.94, 0), 7.3),
    "lfoot": ("ltibia", (0, 0, 1), 2.2),
    "ltoes": ("lfoot", (0, 0, 1), 1.1),
    "rhipjoint": ("root", (-0.69, -0.65, 0.32), 2.4),
    "rfemur": ("rhipjoint", (-0.34, -0.94, 0), 7.1),
    "rtibia": ("rfemur", (-0.34, -0.94, 0), 7.3),
    "rfoot": ("rtibia", (0, 0, 1), 2.2),
    "rtoes": ("rfoot", (0, 0, 1), 1.1),
    "lowerback": ("root", (0, 1, 0), 2.0),
    "upperback": ("lowerback", (0, 1, 0), 2.0),
    "thorax": ("upperback", (0, 1, 0), 2.0),
    "lowerneck": ("thorax", (0, 1, 0), 1.5),
    "upperneck": ("lowerneck", (0, 1, 0), 1.5),
    "head": ("upperneck", (0, 1, 0), 1.5),
    "lclavicle": ("thorax", (1, 0.2, 0), 3.5),
    "lhumerus": ("lclavicle", (1, 0, 0), 5.0),
    "lradius": ("lhumerus", (1, 0, 0), 3.4),
    "lwrist": ("lradius", (1, 0, 0), 1.7),
    "lhand": ("lwrist", (1, 0, 0), 0.7),
    "rclavicle": ("thorax", (-1, 0.2, 0), 3.5),
    "rhumerus": ("rclavicle", (-1, 0, 0), 5.0),
    "rradius": ("rhumerus", (-1, 0, 0), 3.4),
    "rwrist": ("rradius", (-1, 0, 0), 1.7),
    "rhand": ("rwrist", (-1, 0, 0), 0.7),
}


def cmu_asf() -> str:
    lines = [
        ":version 1.10",
        ":name VICON",
        ":units",
        "  mass 1.0",
        "  length 0.45",
        "  angle deg",
        ":root",
        "   order TX TY TZ RX RY RZ",
        "   axis XYZ",
        "   position 0 0 0",
        "   orientation 0 0 0",
        ":bonedata",
    ]
    for index, (name, (_, direction, length)) in enumerate(CMU_BONES.items(), start=1):
        axis = "0 0 -20" if name.startswith("l") else "0 0 20"
        lines += [
            "  begin",
            f"     id {index}",
            f"     name {name}",
            f"     direction {' '.join(map(str, direction))}",
            f"     length {length}",
            f"     axis {axis} XYZ",
            "     dof rx ry rz",
            "  end",
        ]
    lines += [":hierarchy", "  begin"]
    children = {}
    for name, (parent, _, _) in CMU_BONES.items():
        children.setdefault(parent, []).append(name)
    lines += [f"    {parent} {' '.join(kids)}" for parent, kids in children.items()]
    return "\n".join(lines + ["  end", ""])


def cmu_amc(frames: int, rng: np.random.Generator) -> tuple[str, dict]:
    values = {name: rng.normal(0, 25, size=(frames, 3)) for name in CMU_BONES}
    root = np.concatenate([rng.normal(0, 10, (frames, 3)), rng.normal(0, 20, (frames, 3))], axis=1)
    lines = ["#!OML:ASF", ":FULLY-SPECIFIED", ":DEGREES"]
    for t in range(frames):
        lines.append(str(t + 1))
        lines.append("root " + " ".join(f"{v:.4f}" for v in root[t]))
        lines += [f"{name} " + " ".join(f"{v:.4f}" for v in values[name][t]) for name in CMU_BONES]
    return "\n".join(lines) + "\n", values


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


@pytest.mark.slow
def test_workflow_downloads_unpacks_and_converts_cmu(server, tmp_path):
    """The rules, end to end, against the local server: zip → folder → SMPL motions."""
    rng = np.random.default_rng(1)
    members = {
        "allasfamc/all_asfamc/subjects/07/07.asf": cmu_asf().encode(),
        "allasfamc/all_asfamc/subjects/05/05.asf": cmu_asf().encode(),
    }
    for subject in ("07", "05"):
        members[f"allasfamc/all_asfamc/subjects/{subject}/{subject}_01.amc"] = cmu_amc(8, rng)[0].encode()
    archive = _zip(members)
    Files.files["/allasfamc.zip"] = archive
    config = tiny_config(
        **{
            "sources.cmu_mocap.url": f"{server}/allasfamc.zip",
            "sources.cmu_mocap.sha256": hashlib.sha256(archive).hexdigest(),
            "sources.cmu_mocap.test_subjects": ["05"],
        }
    )
    path = write_config(tmp_path / "config.yaml", config)
    snakemake(
        tmp_path,
        "resources/motions/cmu_train.npz",
        "resources/motions/cmu_test.npz",
        "--cores",
        "1",
        "--configfile",
        str(path),
    )
    assert [m.name for m in load_motions(tmp_path / "resources/motions/cmu_train.npz")] == ["07_01"]
    assert [m.name for m in load_motions(tmp_path / "resources/motions/cmu_test.npz")] == ["05_01"]
    log = (tmp_path / "logs/download_cmu_mocap/download.log").read_text()
    assert "Traceback" not in log
