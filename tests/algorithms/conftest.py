"""Fixtures for the RL algorithm tests: a small policy and batches in the batch contract."""

import pytest
import torch

from robot_rl.algorithms.common import ACTION, MC_RETURN, NEXT_OBS, OBS, REWARD, TERMINAL
from robot_rl.models.actor import ActorPolicy

OBS_DIM, ACT_DIM = 6, 2


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These nets are tiny: with two OpenMP threads on a loaded 2-core machine they run 10-50x
    slower (spin-waiting), with one they take a few seconds. Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_policy():
    def make(hidden=(32, 32)) -> ActorPolicy:
        return ActorPolicy([OBS], [OBS_DIM], [-1.0] * ACT_DIM, [1.0] * ACT_DIM, hidden=hidden)

    torch.manual_seed(0)
    return make


@pytest.fixture
def make_batch():
    def make(size: int = 64, terminal: float = 0.0, reward: float | None = None, seed: int = 1):
        g = torch.Generator().manual_seed(seed)
        return {
            OBS: torch.randn(size, OBS_DIM, generator=g),
            NEXT_OBS: torch.randn(size, OBS_DIM, generator=g),
            ACTION: torch.rand(size, ACT_DIM, generator=g) * 2 - 1,
            REWARD: torch.randn(size, generator=g) if reward is None else torch.full((size,), reward),
            TERMINAL: torch.full((size,), terminal),
            MC_RETURN: torch.randn(size, generator=g),
        }

    return make
