"""The online actor/learner loop on the real push task: interventions, mixing, run identity."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import sim
from robot_rl import keys
from robot_rl.algorithms.sac import SAC, SACConfig
from robot_rl.models.actor import ActorPolicy
from robot_rl.training.online import EnvActor, Learner, OnlineConfig, run_online

OBS_KEYS = [keys.JOINT_POS, keys.GRIPPER_POS, keys.OBJECT_POSE, keys.GOAL_POS]


class EveryThirdStepHuman(gym.Wrapper):
    """Fault-injection stand-in for a teleoperator: takes over every third step with its own action."""

    def __init__(self, env):
        super().__init__(env)
        self.t = 0

    def step(self, action):
        self.t += 1
        if self.t % 3:
            return self.env.step(action)
        human = np.full_like(np.asarray(action, np.float32), 0.5)
        obs, reward, terminated, truncated, info = self.env.step(human)
        return obs, reward, terminated, truncated, {**info, keys.INTERVENTION: True, keys.ACTION: human}


def _policy(env) -> ActorPolicy:
    dims = [env.observation_space[k].shape[0] for k in OBS_KEYS]
    return ActorPolicy(OBS_KEYS, dims, env.action_space.low, env.action_space.high, hidden=(16,))


def test_interventions_are_stored_with_the_human_action_and_always_sampled():
    env = EveryThirdStepHuman(sim.make_env("push", reward="sparse", max_episode_steps=9))
    algo = SAC(_policy(env), SACConfig(hidden=(16,), critic_members=2))
    config = OnlineConfig(batch_size=32, intervention_fraction=0.25, replay_capacity=1000)
    learner = Learner(algo, config)
    actor = EnvActor(env, algo.policy, seed=0)
    for _ in range(27):  # three episodes of nine steps
        transitions, stats = actor.step()
        if transitions is not None:
            learner.add(transitions)
            assert stats["length"] == 9
    assert len(learner.online) == 27
    assert len(learner.interventions) == 9
    stored = learner.interventions.take(np.arange(9))
    assert stored[keys.INTERVENTION].all()
    np.testing.assert_allclose(stored[keys.ACTION], 0.5)
    assert learner.sampler.counts(32).tolist() == [24, 8]
    info = learner.train(2)
    assert np.isfinite(info["critic_loss"])


def test_curve_png_and_a_different_run_refused(tmp_path):
    env = sim.make_env("push", reward="sparse", max_episode_steps=10)
    torch.manual_seed(0)
    algo = SAC(_policy(env), SACConfig(hidden=(16,), critic_members=2))
    config = OnlineConfig(
        env_steps=30, random_steps=10, batch_size=16, eval_every=10, checkpoint_every=10, progress=False
    )
    evaluations = []
    curve = run_online(
        algo, env, tmp_path, config, evaluator=lambda p, step: evaluations.append(step) or {"x": 1.0}
    )
    assert [row["env_step"] for row in curve] == [0, 10, 20, 30] and evaluations == [0, 10, 20, 30]
    assert (tmp_path / "curve.png").stat().st_size > 0
    lines = (tmp_path / "curve.csv").read_text().splitlines()
    assert lines[0] == "env_step,actor_loss,alpha,critic_loss,entropy,q_mean,train_success,x"
    # The learner's scalars, averaged since the last evaluation: none before the first update
    # (uniform steps up to 10), then each row its own window.
    assert "critic_loss" not in curve[1] and lines[2].startswith("10,nan,")
    assert all(np.isfinite(row["critic_loss"]) and 0 < row["alpha"] <= 1.0 for row in curve[2:])
    other = OnlineConfig(env_steps=30, random_steps=5, batch_size=16, eval_every=10, checkpoint_every=10)
    with pytest.raises(ValueError, match="different run"):
        run_online(algo, env, tmp_path, other)


@pytest.mark.parametrize(("actor_every", "actor_updates"), [(0, 3), (1, 12), (2, 6)])
def test_the_actor_updates_once_per_env_step_or_every_kth_critic_step(actor_every, actor_updates):
    env = sim.make_env("push", reward="sparse", max_episode_steps=9)
    algo = SAC(_policy(env), SACConfig(hidden=(16,), critic_members=2, actor_every=actor_every))
    learner = Learner(algo, OnlineConfig(batch_size=8, utd=4, replay_capacity=100))
    actor = EnvActor(env, algo.policy, seed=0)
    transitions = None
    while transitions is None:
        transitions, _ = actor.step()
    learner.add(transitions)
    info = learner.train(4 * 3)  # three env steps' worth at UTD 4
    assert algo.steps == actor_updates
    assert "actor_loss" in info  # the last step of a multiple of actor_every updates the actor


class SucceedsAtStep(gym.Wrapper):
    """Fault-injection stand-in for a task: reward 1 and termination at step `at`, else the env's."""

    def __init__(self, env, at: int):
        super().__init__(env)
        self.at, self.t = at, 0

    def reset(self, **kwargs):
        self.t = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        self.t += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.t == self.at:
            return obs, 1.0, True, False, info
        return obs, reward, terminated, truncated, info


@pytest.mark.parametrize("ends", ["terminal", "truncated"])
def test_actor_n_step_transitions_sum_rewards_and_bootstrap_m_steps_on(ends):
    g, n = 0.9, 3
    env = sim.make_env("push", reward="dense", max_episode_steps=7)  # dense: no two rewards alike
    env = SucceedsAtStep(env, at=5 if ends == "terminal" else 99)
    actor = EnvActor(env, _policy(env), seed=0, discount=g, n_step=n)
    transitions = None
    while transitions is None:
        transitions, stats = actor.step()
    length = 5 if ends == "terminal" else 7
    assert stats["length"] == length
    r, nxt = transitions[keys.REWARD], transitions["next_obs/" + keys.JOINT_POS]
    for t in range(length):
        m = min(n, length - t)
        expected = sum(g**k * r[t + k] for k in range(m))
        np.testing.assert_allclose(transitions["n_step_return"][t], expected, rtol=1e-5)
        reaches_end = ends == "terminal" and t + m == length
        assert transitions["discount_n"][t] == pytest.approx(0.0 if reaches_end else g**m)
        np.testing.assert_array_equal(transitions["next_obs_n/" + keys.JOINT_POS][t], nxt[t + m - 1])


def test_n_step_learner_trains_and_refuses_one_step_offline_data():
    env = sim.make_env("push", reward="sparse", max_episode_steps=9)
    algo = SAC(_policy(env), SACConfig(hidden=(16,), critic_members=2))
    actor = EnvActor(env, algo.policy, seed=0, n_step=3)
    one_step = EnvActor(env, algo.policy, seed=1)
    episodes = []
    for source in (actor, one_step):
        transitions = None
        while transitions is None:
            transitions, _ = source.step()
        episodes.append(transitions)
    config = OnlineConfig(batch_size=8, n_step=3, replay_capacity=100)
    learner = Learner(algo, config)
    learner.add(episodes[0])
    assert np.isfinite(learner.train(2)["critic_loss"])
    from robot_rl.data.replay import ReplayBuffer

    plain = ReplayBuffer(100, {k: (v.shape[1:], v.dtype) for k, v in episodes[1].items()})
    plain.add(episodes[1])
    with pytest.raises(ValueError, match="offline data fields"):
        Learner(algo, config, offline=plain)


@pytest.mark.parametrize("explore_uniform", [True, False])
def test_a_relative_actor_moves_the_arm_a_step_from_where_it_is_and_learns_from_what_it_did(explore_uniform):
    """Actions relative to joint_pos: each executed target is within the actor's bounds of the
    observed joint positions, the transitions keep that absolute target, and the learner's
    batch turns it back into the actor's own [-1, 1] action."""
    from robot_rl.algorithms.common import ACTION, from_replay

    env = sim.make_env("push", reward="sparse", max_episode_steps=12)
    dims = [env.observation_space[k].shape[0] for k in OBS_KEYS]
    step = env.unwrapped.max_action_step
    low, high = np.append(-step[:6], env.action_space.low[6]), np.append(step[:6], env.action_space.high[6])
    policy = ActorPolicy(OBS_KEYS, dims, low, high, (16,), relative_to=keys.JOINT_POS)
    actor = EnvActor(env, policy, seed=0)
    transitions = None
    while transitions is None:
        transitions, _ = actor.step(explore_uniform=explore_uniform)
    change = transitions[keys.ACTION][:, :6] - transitions["obs/" + keys.JOINT_POS]
    assert np.abs(change).max() <= step[0] + 1e-5
    assert np.abs(transitions[keys.ACTION][:, :6]).max() > 1.0  # targets near the arm, not near 0
    batch = from_replay(transitions, policy)
    again = policy.to_env_action(batch[ACTION], {keys.JOINT_POS: transitions["obs/" + keys.JOINT_POS]})
    np.testing.assert_allclose(again.numpy(), transitions[keys.ACTION], atol=1e-5)


def test_online_config_names_the_setting_that_is_out_of_range():
    with pytest.raises(ValueError, match="n_step = 0: must be >= 1"):
        OnlineConfig(n_step=0)
    with pytest.raises(ValueError, match=r"^utd = 0, batch_size = -1: must be >= 1$"):
        OnlineConfig(utd=0, batch_size=-1)
