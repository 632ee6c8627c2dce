"""IQL: expectile value, one-step Q backup, advantage-weighted actor."""

import pytest
import torch

from robot_rl.algorithms.common import ACTION, OBS
from robot_rl.algorithms.iql import IQL, IQLConfig


def test_losses_fall_and_state_round_trips(make_policy, make_batch):
    algo = IQL(make_policy(), IQLConfig(hidden=(32, 32), critic_lr=3e-3, value_lr=3e-3))
    batch = make_batch(terminal=1.0)
    first = algo.update(batch)
    for _ in range(200):
        last = algo.update(batch)
    assert last["critic_loss"] < 0.2 * first["critic_loss"]
    clone = IQL(make_policy(), IQLConfig(hidden=(32, 32)))
    clone.load_state_dict(algo.state_dict())
    assert clone.update(batch) == algo.update(batch)


def test_value_is_an_upper_expectile(make_policy, make_batch):
    """With Q fixed, V of one state settles at the expectile of Q over the dataset actions."""
    algo = IQL(
        make_policy(), IQLConfig(hidden=(32,), expectile=0.9, value_lr=1e-2, critic_lr=0.0, actor_lr=0.0)
    )
    batch = make_batch(size=256)
    batch[OBS] = torch.zeros_like(batch[OBS])
    for _ in range(400):
        algo.update(batch)
    q = algo.critic_target(batch[OBS], batch[ACTION]).min(0).values
    v = algo.value(batch[OBS][:1]).item()
    assert (q < v).float().mean().item() == pytest.approx(0.75, abs=0.15)
    assert v > q.mean().item()


def test_actor_moves_towards_high_advantage_actions(make_policy, make_batch):
    algo = IQL(make_policy(), IQLConfig(hidden=(32, 32), actor_lr=3e-3, critic_lr=3e-3, value_lr=3e-3))
    batch = make_batch(size=256, terminal=1.0)
    batch[OBS] = torch.zeros_like(batch[OBS])
    batch["reward"] = batch[ACTION][:, 0]  # better the larger the first action component
    for _ in range(400):
        algo.update(batch)
    assert algo.actor.mode(batch[OBS][:1])[0, 0].item() > 0.3
