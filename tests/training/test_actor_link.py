"""Actors in another thread talk to the learner over real ZeroMQ sockets with the wire rules."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import sim
from robot_rl import keys
from robot_rl.algorithms.common import replay_spec
from robot_rl.algorithms.sac import SAC, SACConfig
from robot_rl.models.actor import ActorPolicy
from robot_rl.serving import curve
from robot_rl.training.actor_link import ActorClient, LearnerLink, LinkError, RemoteActors, run_remote_actor
from robot_rl.training.online import OnlineConfig, run_online

OBS_KEYS = [keys.JOINT_POS, keys.GRIPPER_POS, keys.OBJECT_POSE, keys.GOAL_POS]


def _env():
    return sim.make_env("push", reward="sparse", max_episode_steps=10)


def _policy(env) -> ActorPolicy:
    dims = [env.observation_space[k].shape[0] for k in OBS_KEYS]
    return ActorPolicy(OBS_KEYS, dims, env.action_space.low, env.action_space.high, hidden=(16,))


def test_remote_actor_feeds_the_learner_and_gets_new_weights(tmp_path):
    env = _env()
    algo = SAC(_policy(env), SACConfig(hidden=(16,), critic_members=2))
    link = LearnerLink("tcp://127.0.0.1:*", replay_spec(algo.policy), insecure_loopback=True)
    versions = []
    errors = []

    def actor_process():
        client = ActorClient(link.endpoint, timeout_s=20)
        try:
            run_remote_actor(_env(), _policy(env), client, env_steps=40, weights_every=10)
            versions.append(client.fetch_weights(0)[1])
        except LinkError as exc:
            errors.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=actor_process)
    thread.start()
    config = OnlineConfig(
        env_steps=40, batch_size=8, utd=1, eval_every=0, checkpoint_every=40, progress=False
    )
    try:
        run_online(algo, None, tmp_path, config, actor=RemoteActors(link))
        while thread.is_alive():  # keep answering until the actor has its last weights
            link.poll(50)
    finally:
        thread.join(timeout=30)
        link.close()
    assert not errors
    assert versions and versions[0] > 1  # the learner published weights after training
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000040"


def test_bad_messages_get_typed_errors_and_the_learner_carries_on():
    spec = {keys.ACTION: ((7,), np.float32), keys.REWARD: ((), np.float32)}
    link = LearnerLink("tcp://127.0.0.1:*", spec, insecure_loopback=True)
    client = ActorClient(link.endpoint, timeout_s=5)
    errors = []

    def call(fn):
        thread = threading.Thread(target=lambda: _record(fn, errors))
        thread.start()
        while thread.is_alive():
            link.poll(20)
        thread.join()

    call(lambda: client.send_transitions({keys.ACTION: np.zeros((3, 7), np.float32)}))
    call(
        lambda: client.send_transitions(
            {keys.ACTION: np.zeros((3, 6), np.float32), keys.REWARD: np.zeros(3, np.float32)}
        )
    )
    call(
        lambda: client.send_transitions(
            {keys.ACTION: np.zeros((3, 7), np.float32), keys.REWARD: np.zeros(2, np.float32)}
        )
    )
    call(
        lambda: client.send_transitions(
            {keys.ACTION: np.zeros((3, 7), np.float32), keys.REWARD: np.zeros(3, np.float32)}
        )
    )
    client.close()
    link.close()
    assert [str(e).split(": ")[1] for e in errors] == ["wrong_keys", "bad_shape", "bad_shape"]
    assert link.rejected == 3 and len(link.received) == 1


def _record(fn, errors):
    try:
        fn()
    except LinkError as exc:
        errors.append(exc)


def test_beyond_loopback_needs_curve_keys_and_an_allowed_actor(tmp_path):
    spec = {keys.ACTION: ((7,), np.float32)}
    with pytest.raises(ValueError, match="without CURVE keys"):
        LearnerLink("tcp://0.0.0.0:*", spec, insecure_loopback=True)
    _, server_secret = curve.generate(tmp_path, "learner")
    actor_public, actor_secret = curve.generate(tmp_path, "actor")
    (tmp_path / "actors.txt").write_text(f"{actor_public}\n")
    link = LearnerLink("tcp://127.0.0.1:*", spec, server_key=server_secret, actors=tmp_path / "actors.txt")
    client = ActorClient(
        link.endpoint, client_key=actor_secret, server_public=tmp_path / "learner.key", timeout_s=5
    )
    errors = []
    thread = threading.Thread(
        target=lambda: _record(
            lambda: client.send_transitions({keys.ACTION: np.ones((2, 7), np.float32)}), errors
        )
    )
    thread.start()
    while thread.is_alive():
        link.poll(20)
    thread.join()
    client.close()
    link.close()
    assert not errors and len(link.received) == 1
    np.testing.assert_array_equal(link.received[0][0][keys.ACTION], np.ones((2, 7)))
