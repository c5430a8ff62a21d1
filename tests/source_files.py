"""Local stand-ins for the data sources, written by the tests: an HTTP server of files
(ranges, dropped connections, failures, a password), archives, and CMU's ASF/AMC files."""

import base64
import io
import tarfile
import threading
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


class Files(BaseHTTPRequestHandler):
    """Serves `files` with Range support; can drop a connection, fail, or ask for a password."""

    files: dict[str, bytes] = {}
    cut_after: dict[str, int] = {}  # path -> bytes sent before dropping the first connection
    failures: dict[str, int] = {}  # path -> HTTP 503 answers before serving
    password: str | None = None
    requests: list[dict] = []
    redirects: dict[str, str] = {}  # path -> Location of a 302 answer (after the password check)
    etags: dict[str, str] = {}  # path -> its ETag; a Range whose If-Range differs gets the whole file

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        type(self).requests.append(
            {
                "path": self.path,
                "range": self.headers.get("Range"),
                "if_range": self.headers.get("If-Range"),
                "authorization": self.headers.get("Authorization"),
                "port": self.server.server_address[1],
            }
        )
        if self.password is not None:
            expected = "Basic " + base64.b64encode(f"user:{self.password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="files"')
                self.end_headers()
                return
        if self.path in self.redirects:
            self.send_response(302)
            self.send_header("Location", self.redirects[self.path])
            self.send_header("Content-Length", "0")
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
        etag = self.etags.get(self.path)
        if_range = self.headers.get("If-Range")
        if self.headers.get("Range") and (if_range is None or if_range == etag):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if etag is not None:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        cut = self.cut_after.pop(self.path, None)
        self.wfile.write(body[:cut] if cut is not None else body)


def reset_files() -> None:
    """Empty every table of `Files`: what one test serves is not seen by the next."""
    Files.files, Files.cut_after, Files.failures, Files.password, Files.requests = {}, {}, {}, None, []
    Files.redirects, Files.etags = {}, {}


@contextmanager
def serve_files():
    """The URL of a local server of `Files`, reset, for the duration of the block."""
    reset_files()
    with serving() as url:
        yield url


@contextmanager
def serving(poll_interval: float = 0.05):
    """The URL of a local server of `Files` as they stand (not reset), on a port of its own (a
    second one is another origin), for the duration of the block; it stops within
    `poll_interval` seconds."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, args=(poll_interval,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
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
