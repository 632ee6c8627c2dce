"""A small real episode store (zarr on disk) whose actions are a learnable function of state."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl import keys


def make_store(path, episodes: int = 12, length: int = 30, seed: int = 0):
    """Episodes where the arm moves toward a goal: action_t = joint_pos_t + 0.1 * (goal - joint_pos_t)."""
    from robot_rl.data.store import EpisodeStore

    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path)
    for _ in range(episodes):
        goal = rng.uniform(-1, 1, 6).astype(np.float32)
        q = rng.uniform(-1, 1, 6).astype(np.float32)
        qs, acts = [], []
        for t in range(length):
            target = q + 0.1 * (goal - q)
            grip = np.float32(1.0 if t < length // 2 else 0.0)
            qs.append(q.copy())
            acts.append(np.append(target, grip).astype(np.float32))
            q = target
        store.append_episode(
            {
                keys.JOINT_POS: np.stack(qs),
                keys.GOAL_POS: np.repeat(goal[None, :3], length, 0),
                keys.ACTION: np.stack(acts),
            },
            {"task": "synthetic", "source": "sim", "success": True},
        )
    return store


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "demos.zarr"
    make_store(path)
    return path


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (tests/conftest.py)."""
