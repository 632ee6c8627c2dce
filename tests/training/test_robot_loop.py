"""The robot side of online RL without ROS: episodes built step by step on the actor, sent over
the real learner link, logged to a real episode store, turned into transitions; interventions
reach the learner's intervention buffer (or, for DSRL, are logged and kept out)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from robot_rl.models.actor import ActorPolicy
from robot_rl.training.actor_link import ActorClient, LearnerLink
from robot_rl.training.online import Learner, OnlineConfig
from robot_rl.training.robot_loop import EpisodeBuilder, RobotActors, episode_spec

OBS = {keys.JOINT_POS: 6, keys.GOAL_POS: 3}


def _policy() -> ActorPolicy:
    return ActorPolicy(list(OBS), list(OBS.values()), -np.ones(7), np.ones(7), hidden=(16,))


def _episode(builder: EpisodeBuilder, steps: int, intervene: set[int], success: bool):
    rng = np.random.default_rng(steps)
    for t in range(steps):
        builder.open_step({k: rng.normal(size=n) for k, n in OBS.items()}, rng.uniform(-1, 1, 7))
        if t in intervene:
            builder.mark_intervention(np.full(7, 0.5))
        if success and t == steps - 1:
            builder.add_reward(1.0)
    return builder.finish(terminal=success, success=success, env_steps=steps)


def _actors(tmp_path, learn_from_interventions=True, reward_offset=0.0, n_step=1):
    policy = _policy()
    link = LearnerLink("tcp://127.0.0.1:*", episode_spec(policy), insecure_loopback=True)
    pushed = []
    store = EpisodeStore.create(tmp_path / "log.zarr")
    actors = RobotActors(
        link,
        policy.obs_keys,
        0.99,
        push=lambda w, v: pushed.append(v) or v,
        log_store=store,
        served_version=7,
        learn_from_interventions=learn_from_interventions,
        task="push",
        reward_offset=reward_offset,
        n_step=n_step,
    )
    return policy, actors, pushed, store


def _receive(actors, n: int) -> list:
    got = []
    for _ in range(200):
        transitions, stats = actors.step()
        if transitions is not None:
            got.append((transitions, stats))
        if len(got) == n:
            return got
    raise AssertionError(f"received {len(got)} of {n} episodes")


def _one_successful_episode(actors, steps: int) -> dict:
    """Send one successful episode from a robot over the real link; its transitions."""
    client = ActorClient(actors.link.endpoint, timeout_s=10)
    try:
        client.send_transitions(*_episode(EpisodeBuilder(list(OBS)), steps, intervene=set(), success=True))
        ((transitions, _),) = _receive(actors, 1)
    finally:
        client.close()
        actors.close()
    return transitions


def test_episodes_reach_the_store_and_the_intervention_buffer(tmp_path):
    policy, actors, pushed, store = _actors(tmp_path)
    client = ActorClient(actors.link.endpoint, timeout_s=10)
    builder = EpisodeBuilder(list(OBS))
    try:
        client.send_transitions(*_episode(builder, 12, intervene={3, 4, 5}, success=True))
        client.send_transitions(*_episode(builder, 8, intervene=set(), success=False))
        (first, s1), (second, s2) = _receive(actors, 2)
    finally:
        client.close()
        actors.close()
    assert len(first[keys.ACTION]) == 12 and first[keys.TERMINAL][-1]  # terminal: every step a transition
    assert len(second[keys.ACTION]) == 7  # truncated: the last step has no successor
    assert s1["success"] == 1.0 and s1["interventions"] == 3.0 and actors.last_env_steps == 8
    # The transitions chain: the next observation of step t is the observation of step t + 1.
    np.testing.assert_array_equal(
        first[f"next_obs/{keys.JOINT_POS}"][:-1], first[f"obs/{keys.JOINT_POS}"][1:]
    )
    np.testing.assert_array_equal(first[keys.ACTION][3:6], np.full((3, 7), 0.5, np.float32))
    assert first[keys.REWARD].sum() == 1.0
    # The store holds what the robot did, interventions marked, success in the metadata.
    reopened = EpisodeStore.open(tmp_path / "log.zarr")
    assert len(reopened) == 2 and list(reopened.all_meta()["success"]) == [1, 0]
    assert reopened.episode(0)[keys.INTERVENTION].tolist() == [t in {3, 4, 5} for t in range(12)]
    # The learner's replay copies the intervention steps to the buffer every batch samples.
    learner = Learner(_Algo(policy), OnlineConfig(batch_size=4, progress=False))
    learner.add(first)
    assert len(learner.interventions) == 3 and len(learner.online) == 12


def test_dsrl_logs_interventions_but_does_not_learn_from_them(tmp_path):
    _, actors, _, store = _actors(tmp_path, learn_from_interventions=False)
    client = ActorClient(actors.link.endpoint, timeout_s=10)
    try:
        client.send_transitions(*_episode(EpisodeBuilder(list(OBS)), 10, intervene={6, 7}, success=True))
        ((transitions, _),) = _receive(actors, 1)
    finally:
        client.close()
        actors.close()
    assert not transitions[keys.INTERVENTION].any()
    assert len(transitions[keys.ACTION]) == 5  # steps 0..5 before the person took over, minus the cut
    assert actors.dropped_interventions == 2
    assert EpisodeStore.open(tmp_path / "log.zarr").episode(0)[keys.INTERVENTION].sum() == 2


def test_the_reward_offset_reaches_the_learner_and_the_log_keeps_the_robots_rewards(tmp_path):
    _, actors, _, _ = _actors(tmp_path, reward_offset=1.0)
    transitions = _one_successful_episode(actors, steps=6)
    np.testing.assert_array_equal(transitions[keys.REWARD], [-1, -1, -1, -1, -1, 0])
    logged = EpisodeStore.open(tmp_path / "log.zarr").episode(0)[keys.REWARD]
    np.testing.assert_array_equal(logged, [0, 0, 0, 0, 0, 1])


def test_robot_episodes_become_n_step_transitions_for_an_n_step_learner(tmp_path):
    policy, actors, _, _ = _actors(tmp_path, n_step=3)
    transitions = _one_successful_episode(actors, steps=6)
    g = 0.99  # success on the last of 6 steps: the 3-step window of steps 3-5 reaches it
    np.testing.assert_allclose(transitions["n_step_return"], [0, 0, 0, g**2, g, 1], rtol=1e-6)
    np.testing.assert_allclose(transitions["discount_n"], [g**3, g**3, g**3, 0, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(
        transitions[f"next_obs_n/{keys.JOINT_POS}"][:3], transitions[f"obs/{keys.JOINT_POS}"][3:6]
    )
    learner = Learner(_Algo(policy), OnlineConfig(batch_size=4, n_step=3, progress=False))
    learner.add(transitions)
    assert len(learner.online) == 6


def test_versions_continue_from_the_served_one_and_bad_episodes_are_refused(tmp_path):
    _, actors, pushed, _ = _actors(tmp_path)
    client = ActorClient(actors.link.endpoint, timeout_s=10)
    try:
        actors.load_weights({}, 1)
        actors.load_weights({}, 2)
        assert pushed == [8, 9] and actors.served_version == 9
        episode, stats = _episode(EpisodeBuilder(list(OBS)), 5, set(), False)
        episode[keys.ACTION] = episode[keys.ACTION][:, :6]
        with pytest.raises(Exception, match="action"):
            client.send_transitions(episode, stats)
        del episode[keys.GOAL_POS]
        with pytest.raises(Exception, match="missing"):
            client.send_transitions(episode, stats)
    finally:
        client.close()
        actors.close()
    assert actors.link.rejected == 2


class _Algo:
    def __init__(self, policy):
        self.policy = policy
