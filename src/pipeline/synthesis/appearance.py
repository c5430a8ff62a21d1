"""What a synthetic person looks like: clothing, skin, hair, and the light on them.

Clothing is procedural and solid: each garment's pattern is a function of the point's
position on the body at rest (SMPL's T-pose, metres), evaluated per pixel in the fragment
shader, so it needs no UV map and works on any SMPL-topology mesh, the anny-derived one or
SMPL's own. A person wears a shirt (sleeve length, two colours, a pattern: plain, stripes
across or along, checks, heather noise or dots), trousers or shorts (length, colours,
pattern), shoes, and has skin and hair colours. A split's clothing is a bank of such
outfits drawn from the split's own random stream, so train and test never share one.

Light is SURREAL's: 9 spherical-harmonic coefficients per clip, sh = 0.7 (2 U − 1) with
sh[0] = 0.5 + 0.9 U (ambient) and sh[1] = −0.7 U (light from above, y being down), shading
the albedo through the irradiance formula of SURREAL's `sh.osl` with the world normal; the
result is emitted, without shadows, as SURREAL's Emission shader does. A split may draw its
light from other ranges (`LightRange`): a domain the training light never covered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pipeline.body_model.skeleton import SMPL_JOINT_NAMES
from pipeline.errors import InputError

J = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}
PATTERNS = ("plain", "stripes_across", "stripes_along", "checks", "heather", "dots")

SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.92, 0.74, 0.60],
        [0.85, 0.64, 0.50],
        [0.76, 0.55, 0.42],
        [0.64, 0.45, 0.33],
        [0.52, 0.36, 0.26],
        [0.40, 0.27, 0.19],
        [0.30, 0.20, 0.14],
    ]
)
HAIR_COLOURS = np.array(
    [
        [0.05, 0.04, 0.04],
        [0.16, 0.10, 0.06],
        [0.32, 0.20, 0.11],
        [0.55, 0.40, 0.22],
        [0.78, 0.64, 0.40],
        [0.55, 0.26, 0.12],
        [0.62, 0.62, 0.60],
    ]
)

SH_GLSL = """
float sh_irradiance(vec3 n) {
    // SURREAL's sh.osl: coefficients ordered L00, L1-1, L10, L11, L2-2, L2-1, L20, L21, L22
    const float c1 = 0.429043, c2 = 0.511664, c3 = 0.743125, c4 = 0.886227, c5 = 0.247708;
    return c1 * sh[8] * (n.x * n.x - n.y * n.y) + c3 * sh[6] * n.z * n.z + c4 * sh[0]
         - c5 * sh[6]
         + 2.0 * c1 * (sh[4] * n.x * n.y + sh[7] * n.x * n.z + sh[5] * n.y * n.z)
         + 2.0 * c2 * (sh[3] * n.x + sh[1] * n.y + sh[2] * n.z);
}
"""

CLOTHING_GLSL = """
uniform vec3 skin, hair, shoe;
uniform vec3 shirt_a, shirt_b, pants_a, pants_b;
uniform int shirt_pattern, pants_pattern;
uniform float shirt_scale, pants_scale, sleeve, trouser, hair_length;
uniform float shoulder_x, wrist_x, waist_y, hip_y, ankle_y, neck_y, head_y, head_z;

float hash(vec3 p) {
    p = fract(p * 0.3183099 + 0.1);
    p *= 17.0;
    return fract(p.x * p.y * p.z * (p.x + p.y + p.z));
}

float value_noise(vec3 p) {
    vec3 i = floor(p), f = fract(p);
    f = f * f * (3.0 - 2.0 * f);
    return mix(mix(mix(hash(i), hash(i + vec3(1, 0, 0)), f.x),
                   mix(hash(i + vec3(0, 1, 0)), hash(i + vec3(1, 1, 0)), f.x), f.y),
               mix(mix(hash(i + vec3(0, 0, 1)), hash(i + vec3(1, 0, 1)), f.x),
                   mix(hash(i + vec3(0, 1, 1)), hash(i + vec3(1, 1, 1)), f.x), f.y), f.z);
}

vec3 fabric(vec3 p, int pattern, float scale, vec3 a, vec3 b) {
    vec3 q = p / scale;
    float t = 0.0;
    if (pattern == 1) t = step(0.5, fract(q.y));
    else if (pattern == 2) t = step(0.5, fract(q.x + q.z));
    else if (pattern == 3) t = 0.5 * (step(0.5, fract(q.y)) + step(0.5, fract(q.x + q.z)));
    else if (pattern == 4) t = value_noise(q * 3.0) * 0.7 + value_noise(q * 9.0) * 0.3;
    else if (pattern == 5) t = step(length(fract(q) - 0.5), 0.22);
    // a faint weave so that even plain fabric is not flat
    float weave = 0.94 + 0.06 * value_noise(p * 400.0);
    return mix(a, b, t) * weave;
}

vec3 clothing(vec3 p, uint part) {
    // SMPL parts (1-based): 16 head, 13 neck, 21-24 hands, 8/9/11/12 feet and toes,
    // 14/15 collars, 17-20 arms, 2/3/5/6 legs, 1/4/7/10 hips and spine
    if (part == 16u) {
        float crown = head_y + 0.11;
        bool back = p.z < head_z + 0.02 && p.y > crown - 0.04 - 0.16 * hair_length;
        return p.y > crown || back ? hair * (0.9 + 0.2 * value_noise(p * 300.0)) : skin;
    }
    if (part >= 21u) return skin;
    if (part == 8u || part == 9u || part == 11u || part == 12u) return shoe;
    if (part == 13u) return p.y < neck_y - 0.02 ? fabric(p, shirt_pattern, shirt_scale, shirt_a, shirt_b) : skin;
    if (part == 14u || part == 15u || (part >= 17u && part <= 20u)) {
        float reach = shoulder_x + sleeve * (wrist_x - shoulder_x);
        return abs(p.x) < reach ? fabric(p, shirt_pattern, shirt_scale, shirt_a, shirt_b) : skin;
    }
    if (part == 2u || part == 3u || part == 5u || part == 6u) {
        float hem = hip_y - trouser * (hip_y - ankle_y);
        return p.y > hem ? fabric(p, pants_pattern, pants_scale, pants_a, pants_b) : skin;
    }
    return p.y > waist_y ? fabric(p, shirt_pattern, shirt_scale, shirt_a, shirt_b)
                         : fabric(p, pants_pattern, pants_scale, pants_a, pants_b);
}
"""


@dataclass(frozen=True)
class Outfit:
    """One clothing texture: garment shapes, colours and patterns, skin and hair."""

    name: str
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_length: float
    shoe: tuple[float, float, float]
    shirt_a: tuple[float, float, float]
    shirt_b: tuple[float, float, float]
    shirt_pattern: int
    shirt_scale: float
    sleeve: float
    pants_a: tuple[float, float, float]
    pants_b: tuple[float, float, float]
    pants_pattern: int
    pants_scale: float
    trouser: float


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _fabric_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    kind = rng.choice(["colour", "dark", "light", "denim"], p=[0.5, 0.2, 0.15, 0.15])
    if kind == "dark":
        return _hsv(rng.uniform(), rng.uniform(0, 0.3), rng.uniform(0.05, 0.25))
    if kind == "light":
        return _hsv(rng.uniform(), rng.uniform(0, 0.15), rng.uniform(0.75, 0.95))
    if kind == "denim":
        return _hsv(rng.uniform(0.58, 0.64), rng.uniform(0.4, 0.7), rng.uniform(0.25, 0.6))
    return _hsv(rng.uniform(), rng.uniform(0.35, 0.9), rng.uniform(0.3, 0.9))


def sample_outfit(rng: np.random.Generator, name: str) -> Outfit:
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.95, 1.05)
    return Outfit(
        name=name,
        skin=tuple(float(c) for c in np.clip(skin, 0, 1)),
        hair=tuple(float(c) for c in HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]),
        hair_length=float(rng.uniform(0.0, 1.0)),
        shoe=_hsv(rng.uniform(), rng.uniform(0, 0.5), rng.uniform(0.05, 0.7)),
        shirt_a=_fabric_colour(rng),
        shirt_b=_fabric_colour(rng),
        shirt_pattern=int(rng.integers(len(PATTERNS))),
        shirt_scale=float(rng.uniform(0.02, 0.12)),
        sleeve=float(rng.choice([0.0, rng.uniform(0.1, 0.4), 1.0], p=[0.15, 0.45, 0.4])),
        pants_a=_fabric_colour(rng),
        pants_b=_fabric_colour(rng),
        pants_pattern=int(rng.choice(len(PATTERNS), p=[0.55, 0.05, 0.1, 0.1, 0.15, 0.05])),
        pants_scale=float(rng.uniform(0.02, 0.1)),
        trouser=float(rng.choice([rng.uniform(0.3, 0.6), 1.0], p=[0.3, 0.7])),
    )


def outfit_bank(seed_rng_factory, split: str, count: int) -> list[Outfit]:
    """`count` outfits of a split, each from its own random stream."""
    return [sample_outfit(seed_rng_factory(split, index), f"procedural_{split}_{index:04d}") for index in range(count)]


def body_landmarks(rest_joints: np.ndarray) -> dict[str, float]:
    """Garment boundaries from a body's T-pose joints (24, 3), SMPL's frame."""
    joint = {name: rest_joints[index] for name, index in J.items()}
    return {
        "shoulder_x": float(abs(joint["left_shoulder"][0])),
        "wrist_x": float(abs(joint["left_wrist"][0])),
        "waist_y": float(0.4 * joint["pelvis"][1] + 0.6 * joint["spine1"][1]),
        "hip_y": float(joint["left_hip"][1]),
        "ankle_y": float(joint["left_ankle"][1]),
        "neck_y": float(joint["neck"][1]),
        "head_y": float(joint["head"][1]),
        "head_z": float(joint["head"][2]),
    }


def outfit_uniforms(outfit: Outfit, landmarks: dict[str, float]) -> dict[str, object]:
    values = {key: value for key, value in asdict(outfit).items() if key != "name"}
    return {**values, **landmarks}


@dataclass(frozen=True)
class LightRange:
    """Where a split's light coefficients are drawn from (config `synthesis.light.<split>`)."""

    ambient: tuple[float, float]  # sh[0]
    from_above: tuple[float, float]  # −sh[1]
    others: float  # the other seven ~ U(−others, others)

    def __post_init__(self) -> None:
        for name in ("ambient", "from_above"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise InputError(f"light {name} range must be [low, high] with 0 ≤ low ≤ high, got {[low, high]}")
        if self.others < 0.0:
            raise InputError(f"light others must be ≥ 0, got {self.others}")


# SURREAL's own ranges: the config's default for every split, and the light of the action and
# mesh-video clips, which have no light settings of their own
SURREAL_LIGHT = LightRange(ambient=(0.5, 1.4), from_above=(0.0, 0.7), others=0.7)


def sample_light(rng: np.random.Generator, light: LightRange) -> np.ndarray:
    """A clip's 9 spherical-harmonic coefficients (9,), drawn as SURREAL draws them."""
    sh = light.others * (2.0 * rng.uniform(size=9) - 1.0)
    sh[0] = light.ambient[0] + (light.ambient[1] - light.ambient[0]) * rng.uniform()
    sh[1] = -(light.from_above[0] + (light.from_above[1] - light.from_above[0]) * rng.uniform())
    return sh
