"""load_policy reads every kind of policy checkpoint, and only policies."""

import numpy as np
import pytest
import torch
from test_diffusion_policy import _obs, _policy

from robot_rl import keys
from robot_rl.algorithms.dsrl import DSRLPolicy
from robot_rl.models.actor import ActorPolicy
from robot_rl.policies import load_policy
from robot_rl.training.checkpoint import save_checkpoint


def test_rl_actor_loads_through_load_policy(tmp_path):
    policy = ActorPolicy([keys.JOINT_POS, keys.GOAL_POS], [6, 3], [-2.0] * 7, [2.0] * 7, hidden=(16,))
    obs = {k: v[:, -1:] for k, v in _obs(2).items()}
    loaded = load_policy(policy.save(tmp_path / "actor"))
    assert isinstance(loaded, ActorPolicy)
    torch.testing.assert_close(loaded.predict_action(obs), policy.predict_action(obs))


def test_dsrl_bundle_loads_through_load_policy(tmp_path):
    diffusion = _policy()
    noise_dim = diffusion.pred_horizon * diffusion.action_dim
    actor = ActorPolicy(
        [keys.JOINT_POS, keys.GOAL_POS], [6, 3], [-1.0] * noise_dim, [1.0] * noise_dim, hidden=(8,)
    )
    DSRLPolicy(diffusion, actor).save(tmp_path / "dsrl")
    loaded = load_policy(tmp_path / "dsrl")
    assert isinstance(loaded, DSRLPolicy)
    chunk = loaded.predict_action(_obs(2))
    assert chunk.shape == (2, diffusion.action_horizon, diffusion.action_dim) and torch.isfinite(chunk).all()


def test_a_checkpoint_that_is_not_a_policy_is_refused(tmp_path):
    save_checkpoint(
        tmp_path / "state", {"w": torch.zeros(2)}, {"step": np.int64(3).item()}, kind="training_state"
    )
    with pytest.raises(ValueError, match="'training_state' checkpoint is not a policy"):
        load_policy(tmp_path / "state")
