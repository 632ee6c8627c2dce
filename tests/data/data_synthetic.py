"""Synthetic episodes shaped like sim observations (no dependency on sim/)."""

from __future__ import annotations

import numpy as np

from robot_rl import keys

CAMERA = keys.image_key("front")


def make_episode(seed: int, length: int | None = None, image_hw: int = 16, cameras: int = 1) -> dict:
    """A deterministic episode: the same seed gives the same arrays bit for bit."""
    rng = np.random.default_rng(seed)
    t = int(length if length is not None else rng.integers(5, 40))
    q = np.cumsum(rng.normal(scale=0.05, size=(t, 6)), axis=0).astype(np.float32)
    ep = {
        keys.JOINT_POS: q,
        keys.JOINT_VEL: rng.normal(size=(t, 6)).astype(np.float32),
        keys.GRIPPER_POS: rng.uniform(size=(t, 1)).astype(np.float32),
        keys.ACTION: np.concatenate([q, rng.uniform(size=(t, 1))], axis=1).astype(np.float32),
        keys.REWARD: rng.normal(size=t).astype(np.float32),
        keys.TERMINAL: np.arange(t) == t - 1,
        keys.INTERVENTION: rng.uniform(size=t) < 0.2,
        keys.TIMESTAMP: 1000.0 + seed + np.arange(t) * 0.05,
    }
    for c in range(cameras):
        name = CAMERA if c == 0 else keys.image_key(f"cam{c}")
        ep[name] = rng.integers(0, 255, (t, image_hw, image_hw, 3), dtype=np.uint8)
    return ep
