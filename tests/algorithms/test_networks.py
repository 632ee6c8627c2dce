"""Fused ensembles compute what separate networks would; the actor's densities are right."""

import math

import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.models.actor import ActorPolicy, TanhGaussianActor, sample_tanh_gaussian
from robot_rl.models.critics import QEnsemble
from robot_rl.models.mlp import EnsembleLinear, EnsembleMLP


def test_ensemble_linear_matches_member_by_member():
    torch.manual_seed(0)
    layer = EnsembleLinear(4, 5, 3)
    shared = torch.randn(7, 5)
    per_member = torch.randn(4, 7, 5)
    out_shared, out_each = layer(shared), layer(per_member)
    for m in range(4):
        expect_shared = shared @ layer.weight[m] + layer.bias[m]
        expect_each = per_member[m] @ layer.weight[m] + layer.bias[m]
        torch.testing.assert_close(out_shared[m], expect_shared)
        torch.testing.assert_close(out_each[m], expect_each)


def test_ensemble_members_are_independent():
    torch.manual_seed(0)
    net = EnsembleMLP(3, 4, (8,), 1, layer_norm=True)
    x = torch.randn(5, 4)
    net(x)[1].sum().backward()
    for p in net.parameters():
        grads = p.grad.flatten(1).abs().sum(1)
        assert grads[0] == 0 and grads[2] == 0 and grads[1] > 0


def test_member_subset_equals_the_same_rows_of_the_full_ensemble():
    torch.manual_seed(0)
    q = QEnsemble(4, 2, (16, 16), members=6, layer_norm=True)
    obs, act = torch.randn(9, 4), torch.randn(9, 2)
    pair = torch.tensor([4, 1])
    torch.testing.assert_close(q(obs, act, pair), q(obs, act)[pair])


def test_q_ensemble_flattens_leading_axes():
    q = QEnsemble(4, 2, (16,), members=5)
    obs, act = torch.randn(3, 7, 4), torch.randn(3, 7, 2)
    out = q(obs, act)
    assert out.shape == (5, 3, 7)
    torch.testing.assert_close(out[:, 1], q(obs[1], act[1]))


def test_tanh_gaussian_log_prob_matches_density_of_samples():
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 2, (16,))
    obs = torch.randn(4, 3)
    action, log_prob = actor.sample(obs)
    assert action.abs().max() < 1
    torch.testing.assert_close(actor.log_prob(obs, action), log_prob, atol=2e-3, rtol=1e-3)


def test_many_samples_from_one_forward_have_the_density_of_log_prob():
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 2, (16,))
    obs = torch.randn(5, 3)
    actions, log_probs = actor.sample(obs, samples=7)
    assert actions.shape == (7, 5, 2) and log_probs.shape == (7, 5)
    assert actions.abs().max() < 1
    # Each of the 7 draws is a draw at the same 5 states, with the density log_prob gives.
    expected = actor.log_prob(obs.expand(7, 5, 3), actions)
    torch.testing.assert_close(log_probs, expected, atol=2e-3, rtol=1e-3)
    # The draws differ: independent noise per sample.
    assert (actions[0] - actions[1]).abs().max() > 1e-3


def test_sample_log_prob_is_the_gaussian_density_written_out():
    """The eps form of sample_tanh_gaussian equals log N(u; mean, std) - log(1 - tanh(u)^2)."""
    torch.manual_seed(1)
    mean, log_std = torch.randn(64, 3), torch.randn(64, 3).clamp(-2, 1)
    torch.manual_seed(2)
    action, log_prob = sample_tanh_gaussian(mean, log_std)
    torch.manual_seed(2)
    u = mean + log_std.exp() * torch.randn(64, 3)
    normal = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    expected = normal - torch.log1p(-torch.tanh(u).pow(2)).sum(-1)
    torch.testing.assert_close(action, torch.tanh(u))
    torch.testing.assert_close(log_prob, expected, atol=1e-3, rtol=1e-4)


def test_tanh_gaussian_density_integrates_to_one_in_1d():
    torch.manual_seed(0)
    actor = TanhGaussianActor(1, 1, (8,))
    grid = torch.linspace(-0.999, 0.999, 20001).unsqueeze(1)
    density = actor.log_prob(torch.zeros(grid.shape[0], 1), grid).exp()
    integral = torch.trapezoid(density, grid.squeeze(1)).item()
    assert math.isclose(integral, 1.0, abs_tol=0.02)


def test_actor_policy_round_trip(tmp_path):
    policy = ActorPolicy(
        [keys.JOINT_POS, keys.GRIPPER_POS],
        [6, 1],
        [-2.0] * 7,
        [2.0] * 7,
        hidden=(16, 16),
        obs_mean=np.ones(7),
        obs_std=np.full(7, 2.0),
    )
    obs = {
        keys.JOINT_POS: torch.linspace(-1, 1, 6).view(1, 1, 6),
        keys.GRIPPER_POS: torch.full((1, 1, 1), 0.5),
    }
    before = policy.predict_action(obs)
    assert before.shape == (1, 1, 7) and before.abs().max() <= 2.0
    loaded = ActorPolicy.load(policy.save(tmp_path / "p"))
    torch.testing.assert_close(loaded.predict_action(obs), before)
    assert loaded.obs_spec == {keys.JOINT_POS: ((6,), "float32"), keys.GRIPPER_POS: ((1,), "float32")}


def test_actor_policy_rejects_bad_input(tmp_path):
    policy = ActorPolicy([keys.JOINT_POS], [6], [-1.0] * 7, [1.0] * 7, hidden=(8,))
    with pytest.raises(KeyError, match="joint_pos"):
        policy.predict_action({keys.GRIPPER_POS: torch.zeros(1, 1, 1)})
    with pytest.raises(ValueError, match="expected"):
        policy.predict_action({keys.JOINT_POS: torch.zeros(1, 1, 5)})
    with pytest.raises(ValueError, match="image"):
        ActorPolicy([keys.image_key("front")], [3], [-1.0], [1.0])
    path = policy.save(tmp_path / "p")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ValueError, match="model.safetensors"):
        ActorPolicy.load(path)


def test_relative_actor_policy_adds_its_observation_and_round_trips(tmp_path):
    """Relative to joint_pos: arm targets = joint_pos + the bounded action, gripper absolute;
    from_env_action inverts it (replay buffers keep the executed, absolute actions)."""
    policy = ActorPolicy(
        [keys.JOINT_POS, keys.GOAL_POS],
        [6, 3],
        [-0.2] * 6 + [0.0],
        [0.2] * 6 + [1.0],
        (16,),
        relative_to="joint_pos",
    )
    joint_pos = torch.linspace(-2.0, 2.0, 6).view(1, 1, 6)
    obs = {keys.JOINT_POS: joint_pos, keys.GOAL_POS: torch.zeros(1, 1, 3)}
    action = policy.predict_action(obs)
    change = action[..., :6] - joint_pos
    assert (
        change.abs().max() <= 0.2 + 1e-6 and action[..., :6].abs().max() > 1.0
    )  # near joint_pos, not near 0
    assert 0.0 <= action[0, 0, 6] <= 1.0
    unit = torch.rand(5, 7) * 2 - 1
    flat = {keys.JOINT_POS: torch.randn(5, 6)}
    torch.testing.assert_close(policy.from_env_action(policy.to_env_action(unit, flat), flat), unit)
    loaded = ActorPolicy.load(policy.save(tmp_path / "p"))
    assert loaded.relative_to == "joint_pos"
    torch.testing.assert_close(loaded.predict_action(obs), action)
    with pytest.raises(KeyError, match="relative to 'joint_pos'"):
        policy.to_env_action(unit)
    with pytest.raises(ValueError, match="relative_to 'ee_pos' is not one of the observation keys"):
        ActorPolicy([keys.JOINT_POS], [6], [-1.0] * 7, [1.0] * 7, relative_to="ee_pos")
    with pytest.raises(ValueError, match="more than the action's 2"):
        ActorPolicy([keys.JOINT_POS], [6], [-1.0] * 2, [1.0] * 2, relative_to="joint_pos")
