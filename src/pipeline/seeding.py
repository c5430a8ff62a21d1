"""Seeds derived from the config's seed and a sample's identity, so that any one sample
(a body shape, a clip, a pose) is reproducible on its own, whatever else is generated."""

import hashlib

import numpy as np


def stable_hash(*identity: object) -> int:
    """A 63-bit integer from the parts of an identity; the same on every machine and run."""
    text = "/".join(str(part) for part in identity)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def seeded_generator(seed: int, *identity: object) -> np.random.Generator:
    return np.random.default_rng([seed, stable_hash(*identity)])


def torch_seed(seed: int, *identity: object) -> int:
    return stable_hash(seed, *identity)
