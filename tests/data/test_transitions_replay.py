"""Transitions with n-step and Monte-Carlo returns; replay buffers mixed at chosen ratios."""

from __future__ import annotations

import numpy as np
import pytest
from data_synthetic import make_episode

from robot_rl import keys
from robot_rl.data.replay import MixedSampler, ReplayBuffer, to_torch
from robot_rl.data.store import EpisodeStore
from robot_rl.data.transitions import episode_transitions, mc_returns, store_transitions


def _ep(rewards, terminal_last):
    n = len(rewards)
    return {
        keys.JOINT_POS: np.arange(n, dtype=np.float32)[:, None],
        keys.ACTION: np.zeros((n, 2), np.float32),
        keys.REWARD: np.asarray(rewards, np.float32),
        keys.TERMINAL: np.arange(n) == n - 1 if terminal_last else np.zeros(n, bool),
        keys.INTERVENTION: np.zeros(n, bool),
    }


def test_n_step_and_mc_returns_by_hand():
    g = 0.5
    tr = episode_transitions(_ep([1, 2, 4, 8], terminal_last=True), (keys.JOINT_POS,), discount=g, n_step=2)
    assert len(tr[keys.ACTION]) == 4  # the terminal last step is a transition
    np.testing.assert_allclose(tr["n_step_return"], [1 + g * 2, 2 + g * 4, 4 + g * 8, 8])
    np.testing.assert_allclose(tr["discount_n"], [g**2, g**2, 0, 0])
    np.testing.assert_array_equal(tr[f"next_obs_n/{keys.JOINT_POS}"][:, 0], [2, 3, 3, 3])
    np.testing.assert_array_equal(tr[f"next_obs/{keys.JOINT_POS}"][:, 0], [1, 2, 3, 3])
    np.testing.assert_allclose(
        tr["mc_return"], [1 + g * 2 + g**2 * 4 + g**3 * 8, 2 + g * 4 + g**2 * 8, 4 + g * 8, 8]
    )
    trunc = episode_transitions(
        _ep([1, 2, 4, 8], terminal_last=False), (keys.JOINT_POS,), discount=g, n_step=3
    )
    assert len(trunc[keys.ACTION]) == 3  # a truncated last step has no successor
    np.testing.assert_allclose(trunc["n_step_return"], [1 + g * 2 + g**2 * 4, 2 + g * 4, 4])
    np.testing.assert_allclose(trunc["discount_n"], [g**3, g**2, g])  # bootstrap from the last obs
    np.testing.assert_array_equal(trunc[f"next_obs_n/{keys.JOINT_POS}"][:, 0], [3, 3, 3])
    np.testing.assert_allclose(mc_returns(np.ones(3), 1.0), [3, 2, 1])


def test_offline_online_and_intervention_mix(tmp_path):
    store = EpisodeStore.create(tmp_path / "r.zarr")
    for i in range(3):
        store.append_episode(make_episode(i))
    data = store_transitions(store, (keys.JOINT_POS,), discount=0.9)
    offline = ReplayBuffer.from_store(store, (keys.JOINT_POS,), discount=0.9)
    assert len(offline) == len(data[keys.ACTION])
    interventions = ReplayBuffer(100, offline.spec)
    online = ReplayBuffer(64, offline.spec, intervention_buffer=interventions)
    sampler = MixedSampler([(offline, 0.5), (online, 0.3), (interventions, 0.2)])
    rng = np.random.default_rng(0)
    assert list(sampler.counts(10)) == [10, 0, 0]  # empty sources give their share away
    fresh = {k: v[:40].copy() for k, v in data.items()}
    fresh[keys.REWARD][:] = -7.0  # mark online transitions
    fresh[keys.INTERVENTION][:] = np.arange(40) % 4 == 0
    for i in range(40):  # one transition at a time, as an actor adds them
        online.add({k: v[i] for k, v in fresh.items()})
    assert len(online) == 40 and len(interventions) == 10
    assert list(sampler.counts(10)) == [5, 3, 2]
    batch = sampler.sample(200, rng)
    assert len(batch[keys.REWARD]) == 200
    assert np.sum(batch[keys.REWARD] == -7.0) >= 100 * 0.5  # online + intervention draws
    assert batch[keys.INTERVENTION][-40:].all()  # the intervention share is always there
    t = to_torch(batch)
    assert t[keys.ACTION].shape == (200, 7)


def test_ring_buffer_wraps_and_refuses_bad_fields():
    buf = ReplayBuffer(5, {keys.REWARD: ((), np.float32), keys.ACTION: ((2,), np.float32)})
    buf.add({keys.REWARD: np.arange(7, dtype=np.float32), keys.ACTION: np.zeros((7, 2))})
    assert len(buf) == 5 and sorted(buf.take(np.arange(5))[keys.REWARD]) == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="missing fields"):
        buf.add({keys.REWARD: np.float32(1)})
    with pytest.raises(ValueError, match="'action' has shape"):
        buf.add({keys.REWARD: np.float32(1), keys.ACTION: np.zeros(3)})


def test_a_reward_relabel_reaches_every_transition_and_its_returns(tmp_path):
    """store_transitions(reward=...) replaces each episode's stored rewards before the returns
    are summed (the RL CLIs relabel to the sparse success signal, minus --reward-offset)."""
    store = EpisodeStore.create(tmp_path / "r.zarr")
    for i in range(3):
        store.append_episode(make_episode(i))
    g = 0.9
    data = store_transitions(store, (keys.JOINT_POS,), g, n_step=2, reward=lambda ep: ep[keys.TERMINAL] - 1.0)
    expected = data[keys.TERMINAL].astype(np.float32) - 1.0
    np.testing.assert_array_equal(data[keys.REWARD], expected)
    assert (data[keys.REWARD] != store_transitions(store, (keys.JOINT_POS,), g)[keys.REWARD]).any()
    ends = np.flatnonzero(data["discount_n"] == 0)  # windows that reach a terminal step
    assert (data["n_step_return"][ends] > -1 - g).all()  # ... and count its 0 reward, not -1
    buffer = ReplayBuffer.from_store(store, (keys.JOINT_POS,), g, reward=lambda ep: ep[keys.TERMINAL] - 1.0)
    np.testing.assert_array_equal(buffer.take(np.arange(len(buffer)))[keys.REWARD], data[keys.REWARD])
