"""Fixtures for the RL algorithm tests: a small policy and batches in the batch contract."""

import pytest
import torch

from robot_rl.algorithms.common import ACTION, MC_RETURN, NEXT_OBS, OBS, REWARD, TERMINAL
from robot_rl.models.actor import ActorPolicy

OBS_DIM, ACT_DIM = 6, 2


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (tests/conftest.py)."""


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
