"""The exploring policy an online learner serves: sampled actions, the learner's action in the
reply, a bound around the base policy that no weights can break, hot updates of the learner's
network only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.algorithms.dsrl import DSRLConfig, noise_actor_policy
from robot_rl.models.actor import ActorPolicy
from robot_rl.policies import load_policy
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig
from robot_rl.policies.explorer import Explorer
from robot_rl.serving.client import InferenceClient, ZmqTransport
from robot_rl.serving.config import SecurityConfig, ServerConfig
from robot_rl.serving.server import InferenceServer

OBS = {keys.JOINT_POS: 6, keys.OBJECT_POSE: 7, keys.GOAL_POS: 3}


def tiny_diffusion() -> DiffusionPolicy:
    torch.manual_seed(0)
    cfg = DiffusionPolicyConfig(
        obs_spec={k: ObsFeature((n,)) for k, n in OBS.items()},
        action_dim=7,
        pred_horizon=8,
        action_horizon=4,
        unet=UNetConfig(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
    )
    return DiffusionPolicy(cfg).eval()


def window(batch: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(batch, 2, n, generator=g) * 0.3 for k, n in OBS.items()}


def dsrl_explorer(max_deviation: float) -> Explorer:
    diffusion = tiny_diffusion()
    return Explorer(
        noise_actor_policy(diffusion, DSRLConfig(noise_max=1.5, hidden=(32,))), diffusion, max_deviation
    )


def test_dsrl_chunks_follow_the_reported_latent_and_stay_within_the_bound():
    explorer = dsrl_explorer(max_deviation=0.05)
    obs = window(batch=16)
    chunk, latent = explorer.predict_action_and_latent(obs)
    assert chunk.shape == (16, 4, 7) and latent.shape == (16, explorer.latent_dim) == (16, 56)
    assert latent.abs().max() <= 1.5 + 1e-6
    base = explorer.diffusion.predict_action(obs, noise=torch.zeros(16, 8, 7))
    assert (chunk - base).abs().max() <= 0.05 + 1e-5
    # The bound binds: unbounded, the same latents move the arm much further from the base.
    free = explorer.diffusion.predict_action(obs, noise=latent.view(16, 8, 7))
    assert (free - base).abs().max() > 0.05
    # Exploration is sampled: two calls on the same window pick different latents.
    assert not torch.equal(latent, explorer.predict_action_and_latent(obs)[1])


def test_an_adversarial_learner_cannot_push_the_actor_explorer_past_the_bound():
    actor = ActorPolicy(list(OBS), list(OBS.values()), -np.ones(7) * 3, np.ones(7) * 3, hidden=(32,))
    explorer = Explorer(actor, max_deviation=0.1)
    with torch.no_grad():  # a learner's update that makes the noise huge
        actor.actor.net[-1].bias[7:] = 50.0
    obs = {k: v[:, -1:] for k, v in window(batch=64).items()}
    chunk, latent = explorer.predict_action_and_latent(obs)
    mean = actor.predict_action(obs)
    assert explorer.latent_dim == 0 and chunk.shape == (64, 1, 7)
    assert (chunk - mean).abs().max() <= 0.1 + 1e-5
    assert (latent.unsqueeze(1) - mean).abs().max() > 0.1  # what it would have done unbounded


def test_a_relative_actor_explorer_moves_from_the_observed_joints_within_the_bound(tmp_path):
    """An actor relative to joint_pos (train rlpd/learn --relative-to), served as an explorer
    and loaded back: its chunk is joint_pos + a change, still within the bound of its mode."""
    low, high = np.r_[-0.3 * np.ones(6), 0.0], np.r_[0.3 * np.ones(6), 1.0]
    actor = ActorPolicy(list(OBS), list(OBS.values()), low, high, hidden=(32,), relative_to=keys.JOINT_POS)
    explorer = load_policy(Explorer(actor, max_deviation=0.1).save(tmp_path / "explorer"))
    obs = {k: v[:, -1:] for k, v in window(batch=64).items()}
    obs[keys.JOINT_POS] = obs[keys.JOINT_POS] + 2.0  # an arm far from the zero pose
    chunk, latent = explorer.predict_action_and_latent(obs)
    assert (chunk[..., :6] - obs[keys.JOINT_POS]).abs().max() <= 0.3 + 1e-5
    assert (chunk - explorer.learner.predict_action(obs)).abs().max() <= 0.1 + 1e-5
    assert (latent[:, :6] - obs[keys.JOINT_POS][:, 0]).abs().max() <= 0.3 + 1e-5


def test_save_load_and_the_learner_weights_are_the_whole_state_dict(tmp_path):
    explorer = dsrl_explorer(max_deviation=0.2)
    assert set(explorer.state_dict()) == {f"learner.{k}" for k in explorer.learner.state_dict()}
    loaded = load_policy(explorer.save(tmp_path / "explorer"))
    assert isinstance(loaded, Explorer) and loaded.max_deviation == 0.2 and loaded.kind == "dsrl"
    for k, v in explorer.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    (tmp_path / "explorer" / "explorer.yaml").write_text("kind: ppo\n")
    with pytest.raises(ValueError, match="kind must be one of"):
        load_policy(tmp_path / "explorer")


def test_the_server_returns_the_latent_and_hot_updates_change_the_explorer_only():
    explorer = dsrl_explorer(max_deviation=0.0)
    frozen = {k: v.clone() for k, v in explorer.diffusion.state_dict().items()}
    cfg = ServerConfig(
        bind="tcp://127.0.0.1:*", security=SecurityConfig(insecure_loopback=True, insecure_updates=True)
    )
    obs = {k: v[0].numpy() for k, v in window().items()}
    with InferenceServer({"push": explorer}, cfg) as srv:
        client = InferenceClient(ZmqTransport(srv.endpoint), timeout_s=10.0)
        try:
            assert client.status()["policies"]["push"]["latent_dim"] == 56
            chunk = client.infer("push", obs)
            assert chunk.actions.shape == (4, 7) and chunk.latent.shape == (56,)
            # The chunk is the frozen diffusion policy's for exactly that latent.
            expected = explorer.diffusion.predict_action(
                {k: torch.as_tensor(v)[None] for k, v in obs.items()},
                noise=torch.tensor(chunk.latent).view(1, 8, 7),
            )[0]
            np.testing.assert_allclose(chunk.actions, expected.numpy(), atol=1e-4)
            # The learner's update: an actor whose mean is 0 and whose spread is tiny.
            new = {k: v.clone() for k, v in explorer.state_dict().items()}
            last = max(k for k in new if k.startswith("learner.actor.net.") and k.endswith(".bias"))
            for k in new:
                if k.startswith("learner.actor.net."):
                    new[k].zero_()
            new[last][56:] = -100.0  # log-std at its floor
            assert client.push_weights("push", 1, new) == 1
            after = client.infer("push", obs)
            assert after.version == 1
            assert np.abs(after.latent).max() < 0.1
        finally:
            client.close()
    for k, v in explorer.diffusion.state_dict().items():
        torch.testing.assert_close(v, frozen[k])
