"""The learned success reward: trained on labelled frames of a real store, used in place of the env's."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from robot_rl.models.reward_classifier import (
    ClassifierReward,
    RewardClassifier,
    RewardClassifierConfig,
    labelled_frames,
    train_reward_classifier,
)

SIZE = 24


def _store(path):
    """Episodes whose success frames show a bright square; failed episodes never do."""
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path)
    for e in range(6):
        length, success = 10, e % 2 == 0
        frames = rng.integers(0, 60, (length, SIZE, SIZE, 3), dtype=np.uint8)
        if success:
            frames[-3:, 6:18, 6:18] = 230
        terminal = np.zeros(length, bool)
        terminal[-1] = success
        store.append_episode(
            {
                keys.image_key("front"): frames,
                keys.JOINT_POS: np.zeros((length, 6), np.float32),
                keys.ACTION: np.zeros((length, 7), np.float32),
                keys.TERMINAL: terminal,
            }
        )
    return store


def test_labels_trained_classifier_and_round_trip(tmp_path):
    store = _store(tmp_path / "frames.zarr")
    config = RewardClassifierConfig(image_size=SIZE, channels=(8, 16), positive_window=3)
    frames, labels = labelled_frames(store, config)
    assert frames.shape == (60, SIZE, SIZE, 3) and labels.sum() == 9
    model, stats = train_reward_classifier(store, config, steps=80, batch_size=32, progress=False)
    assert stats["accuracy_success"] > 0.9 and stats["accuracy_failure"] > 0.9
    loaded = RewardClassifier.load(model.save(tmp_path / "clf"))
    assert loaded.success_probability(frames[9]) > 0.5 > loaded.success_probability(frames[0])
    with pytest.raises(ValueError, match="image_wrist"):
        labelled_frames(store, RewardClassifierConfig(camera="wrist"))


def test_wrapper_replaces_the_env_reward():
    model = RewardClassifier(RewardClassifierConfig(image_size=SIZE, channels=(8,)))
    env = ClassifierReward(
        sim.make_env("push", cameras=("front",), image_size=SIZE, max_episode_steps=3), model
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert reward in (0.0, 1.0) and 0.0 <= info["success_prob"] <= 1.0
    assert reward == float(info["success_prob"] > 0.5)


def test_served_beside_a_policy_it_answers_success_probabilities(tmp_path):
    """What the policy node's reward "classifier" relies on: `robot-rl serve`'s loader takes the
    classifier's directory, and the server answers a frame with P(success) as a (1, 1) chunk."""
    from robot_rl.policies import load_policy
    from robot_rl.serving.client import InferenceClient, ZmqTransport
    from robot_rl.serving.config import SecurityConfig, ServerConfig
    from robot_rl.serving.server import InferenceServer

    store = _store(tmp_path / "frames.zarr")
    config = RewardClassifierConfig(image_size=SIZE, channels=(8, 16), positive_window=3)
    model, _ = train_reward_classifier(store, config, steps=80, batch_size=32, progress=False)
    frames, labels = labelled_frames(store, config)
    served = load_policy(model.save(tmp_path / "clf"))
    policy = RewardClassifier(RewardClassifierConfig(image_size=SIZE, channels=(8,)))  # any other policy
    loopback = ServerConfig(bind="tcp://127.0.0.1:*", security=SecurityConfig(insecure_loopback=True))
    with InferenceServer({"pick": policy, "reward": served}, loopback) as srv:
        client = InferenceClient(ZmqTransport(srv.endpoint), timeout_s=5.0)
        try:
            spec = client.status()["policies"]["reward"]
            assert spec["obs_spec"] == {keys.image_key("front"): [[SIZE, SIZE, 3], "uint8"]}
            assert spec["action_dim"] == 1 and spec["obs_horizon"] == 1
            for i in (0, 9, 19):  # a failure frame, a success frame, a success frame
                reply = client.infer("reward", {keys.image_key("front"): frames[i][None]})
                p = float(np.asarray(reply.actions).reshape(-1)[0])
                assert p == pytest.approx(model.success_probability(frames[i]), abs=1e-5)
                assert (p > 0.5) == bool(labels[i])
        finally:
            client.close()
