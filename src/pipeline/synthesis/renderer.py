"""Offscreen OpenGL renderer of posed bodies with SURREAL's ground-truth passes.

One draw per frame writes every pass at once (multiple render targets): the lit, clothed
RGB over the background photograph, depth (metres along the optical axis, 1e10 on the
background), the SMPL part of each pixel (0 = background), the surface normal (world
frame) and the forward optical flow to the next frame, computed from the true motion of the
surface point seen at each pixel (the renderer's velocity pass).

Runs through EGL on any OpenGL 3.3 driver: Mesa's llvmpipe on a CPU, or a GPU's.

Camera: OpenCV's convention (x right, y down, z forward), pixel (u, v) centred at integer
coordinates, u = fx x/z + cx.
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

BACKGROUND_DEPTH = 1e10
NEAR, FAR = 0.1, 1000.0
PART_TEXTURE_WIDTH = 1024

_VERTEX_SHADER = """
#version 330
uniform mat3 rotation;          // world -> camera
uniform vec3 translation;
uniform vec4 intrinsics;        // fx, fy, cx, cy
uniform vec2 image_size;        // width, height

in vec3 position;               // world, this frame
in vec3 previous_position;      // world, previous frame
in vec3 next_position;          // world, next frame
in vec3 normal;                 // world
in vec3 rest_position;          // body frame at rest, for clothing patterns

out vec3 v_camera;
out vec3 v_previous_camera;
out vec3 v_next_camera;
out vec3 v_normal_world;
out vec3 v_rest;

vec4 clip_position(vec3 camera) {
    // pixel centres at integer coordinates; GL's row 0 is image row 0
    float u = intrinsics.x * camera.x / camera.z + intrinsics.z;
    float v = intrinsics.y * camera.y / camera.z + intrinsics.w;
    vec2 ndc = (2.0 * vec2(u, v) + 1.0) / image_size - 1.0;
    float a = (%(far)s + %(near)s) / (%(far)s - %(near)s);
    float b = -2.0 * %(far)s * %(near)s / (%(far)s - %(near)s);
    return vec4(ndc * camera.z, a * camera.z + b, camera.z);
}

void main() {
    v_camera = rotation * position + translation;
    v_previous_camera = rotation * previous_position + translation;
    v_next_camera = rotation * next_position + translation;
    v_normal_world = normal;
    v_rest = rest_position;
    gl_Position = clip_position(v_camera);
}
""" % {"near": f"{NEAR:.1f}", "far": f"{FAR:.1f}"}  # noqa: UP031 (GLSL braces)

_FRAGMENT_SHADER = """
#version 330
uniform mat3 rotation;
uniform vec4 intrinsics;
uniform float sh[9];                 // spherical-harmonic light, world frame
uniform usampler2D face_parts;       // SMPL part (1..24) of each triangle, row-major

%(lighting)s
%(clothing)s

in vec3 v_camera;
in vec3 v_previous_camera;
in vec3 v_next_camera;
in vec3 v_normal_world;
in vec3 v_rest;

layout(location = 0) out vec4 out_colour;
layout(location = 1) out float out_depth;
layout(location = 2) out uint out_part;
layout(location = 3) out vec4 out_normal;
layout(location = 4) out vec4 out_flow;

vec2 project(vec3 camera) {
    return intrinsics.xy * camera.xy / camera.z + intrinsics.zw;
}

void main() {
    int width = textureSize(face_parts, 0).x;
    uint part = texelFetch(face_parts, ivec2(gl_PrimitiveID %% width, gl_PrimitiveID / width), 0).r;
    vec3 n = normalize(v_normal_world);
    if (dot(rotation * n, v_camera) > 0.0) n = -n;  // the inside of a surface, seen through a gap
    vec3 albedo = clothing(v_rest, part);
    out_colour = vec4(clamp(albedo * sh_irradiance(n), 0.0, 1.0).bgr, 1.0);  // BGR, as videos take it
    out_depth = v_camera.z;
    out_part = part;
    out_normal = vec4(n, 1.0);
    // where this surface point was in the previous frame and will be in the next, in pixels;
    // the former as SURREAL stores it (Blender's vector pass: raster y up)
    vec2 here = project(v_camera);
    out_flow = vec4((project(v_previous_camera) - here) * vec2(1.0, -1.0), project(v_next_camera) - here);
}
"""


@dataclass
class Frame:
    """One rendered frame; arrays are (H, W, ...) with row 0 at the top of the image."""

    bgr: np.ndarray  # uint8 (H, W, 3), blue first as OpenCV and videos take it
    depth: np.ndarray  # float32 (H, W), metres along the optical axis, BACKGROUND_DEPTH off the body
    parts: np.ndarray  # uint8 (H, W), SMPL part 1..24, 0 = background
    normals: np.ndarray  # float32 (H, W, 3), world frame, 0 off the body
    gtflow: np.ndarray  # float32 (H, W, 2), to the previous frame, SURREAL's convention (x right, y up)
    forward_flow: np.ndarray  # float32 (H, W, 2), pixels to the next frame (du, dv), 0 off the body

    @property
    def rgb(self) -> np.ndarray:
        return self.bgr[..., ::-1]

    @property
    def backward_flow(self) -> np.ndarray:
        """(du, dv) in image pixels (y down) to the previous frame."""
        return self.gtflow * np.float32([1.0, -1.0])


def create_context() -> moderngl.Context:
    """A headless OpenGL context through EGL (Mesa's llvmpipe on CPUs, the driver on GPUs)."""
    try:
        return moderngl.create_context(standalone=True, backend="egl")
    except Exception as error:  # the driver's own message says what is missing
        raise RuntimeError(
            "cannot create an offscreen OpenGL context through EGL; install Mesa's EGL "
            f"driver (Debian: libegl1 libgl1-mesa-dri) or a GPU driver ({error})"
        ) from error


class BodyRenderer:
    """Renders one mesh topology; the body's pose, camera, light and clothing vary per call."""

    def __init__(
        self,
        faces: np.ndarray,
        face_parts: np.ndarray,
        clothing_glsl: str,
        lighting_glsl: str,
        width: int = 320,
        height: int = 240,
        context: moderngl.Context | None = None,
    ) -> None:
        self.ctx = context or create_context()
        self.width, self.height = width, height
        self.num_vertices = int(faces.max()) + 1
        self.program = self.ctx.program(
            vertex_shader=_VERTEX_SHADER,
            fragment_shader=_FRAGMENT_SHADER % {"clothing": clothing_glsl, "lighting": lighting_glsl},
        )
        size = (width, height)
        self.targets = [
            self.ctx.texture(size, 4, dtype="f1"),  # colour
            self.ctx.texture(size, 1, dtype="f4"),  # depth
            self.ctx.texture(size, 1, dtype="u1"),  # part
            self.ctx.texture(size, 4, dtype="f4"),  # normal
            self.ctx.texture(size, 4, dtype="f4"),  # flow to the previous and next frames
        ]
        self.fbo = self.ctx.framebuffer(color_attachments=self.targets, depth_attachment=self.ctx.depth_texture(size))
        floats = 4 * 3 * self.num_vertices
        self.buffers = {
            name: self.ctx.buffer(reserve=floats)
            for name in ("position", "previous_position", "next_position", "normal", "rest_position")
        }
        self.index_buffer = self.ctx.buffer(np.ascontiguousarray(faces, dtype="u4").tobytes())
        self.vao = self.ctx.vertex_array(
            self.program,
            [(buffer, "3f", name) for name, buffer in self.buffers.items() if name in self.program],
            index_buffer=self.index_buffer,
        )
        self.part_texture = None
        self.set_parts(face_parts)
        self.photo = None

    def set_parts(self, face_parts: np.ndarray) -> None:
        """The SMPL part (1..24) of each triangle, as a row-major integer texture."""
        rows = -(-len(face_parts) // PART_TEXTURE_WIDTH)
        table = np.zeros(rows * PART_TEXTURE_WIDTH, dtype="u1")
        table[: len(face_parts)] = face_parts
        if self.part_texture is not None:
            self.part_texture.release()
        self.part_texture = self.ctx.texture((PART_TEXTURE_WIDTH, rows), 1, table.tobytes(), dtype="u1")
        self.part_texture.filter = (moderngl.NEAREST, moderngl.NEAREST)

    def set_background(self, photo: np.ndarray) -> None:
        """An RGB uint8 photograph (H, W, 3) of the image's size, shown where the body is not."""
        if photo.shape[:2] != (self.height, self.width):
            raise ValueError(f"background is {photo.shape[:2]}, the image {(self.height, self.width)}")
        self.photo = np.ascontiguousarray(photo[..., ::-1])  # BGR, as the colour target

    def set_static(self, rest_vertices: np.ndarray, uniforms: dict) -> None:
        """Per-clip state: the body at rest (for clothing patterns) and shader uniforms."""
        self.buffers["rest_position"].write(np.ascontiguousarray(rest_vertices, dtype="f4").tobytes())
        for name, value in uniforms.items():
            if name in self.program:
                self.program[name].value = value

    def set_camera(self, rotation: np.ndarray, translation: np.ndarray, intrinsics: np.ndarray):
        """World → camera linear map (3, 3; a reflection for SURREAL) and translation (3,); K (3, 3)."""
        self.program["rotation"].write(np.ascontiguousarray(rotation.T, dtype="f4").tobytes())
        self.program["translation"].value = tuple(float(x) for x in translation)
        self.program["intrinsics"].value = (
            float(intrinsics[0, 0]),
            float(intrinsics[1, 1]),
            float(intrinsics[0, 2]),
            float(intrinsics[1, 2]),
        )
        self.program["image_size"].value = (float(self.width), float(self.height))
        # Outward faces wind counter-clockwise; a reflecting camera and the flip that puts
        # image row 0 in GL's row 0 each reverse that on screen.
        flips = int(np.linalg.det(rotation) < 0) + 1
        self.front_face = "ccw" if flips % 2 == 0 else "cw"

    def set_light(self, coefficients: np.ndarray) -> None:
        self.program["sh"].value = tuple(float(c) for c in coefficients)

    def render(
        self,
        vertices: np.ndarray,
        previous_vertices: np.ndarray,
        next_vertices: np.ndarray,
        normals: np.ndarray,
    ) -> Frame:
        """Draw the body (world coordinates, (V, 3) each) over the background."""
        for name, values in (
            ("position", vertices),
            ("previous_position", previous_vertices),
            ("next_position", next_vertices),
            ("normal", normals),
        ):
            self.buffers[name].write(np.ascontiguousarray(values, dtype="f4").tobytes())
        self.fbo.use()
        self.fbo.clear(depth=1.0)
        self.ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        # a closed surface: only its faces turned towards the camera can be seen
        self.ctx.front_face = self.front_face
        self.part_texture.use(location=1)
        self.program["face_parts"].value = 1
        self.vao.render(moderngl.TRIANGLES)
        h, w = self.height, self.width
        bgr = np.empty((h, w, 3), np.uint8)
        depth = np.empty((h, w), np.float32)
        parts = np.empty((h, w), np.uint8)
        normals = np.empty((h, w, 4), np.float32)
        flow = np.empty((h, w, 4), np.float32)
        for attachment, (array, components, dtype) in enumerate(
            ((bgr, 3, "f1"), (depth, 1, "f4"), (parts, 1, "u1"), (normals, 4, "f4"), (flow, 4, "f4"))
        ):
            self.fbo.read_into(array, components=components, attachment=attachment, dtype=dtype)
        # the photograph and the empty depth where no surface was drawn (cheaper on the CPU
        # than a full-screen pass writing every target)
        background = parts == 0
        bgr = np.where(background[..., None], self.photo, bgr)
        depth = np.where(background, np.float32(BACKGROUND_DEPTH), depth)
        return Frame(
            bgr=bgr,
            depth=depth,
            parts=parts,
            normals=normals[..., :3],
            gtflow=flow[..., :2],
            forward_flow=flow[..., 2:],
        )
