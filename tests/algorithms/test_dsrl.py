"""DSRL: SAC over the initial noise of a frozen diffusion policy, whose weights never change."""

from __future__ import annotations

import numpy as np
import torch

import sim
from robot_rl import keys
from robot_rl.algorithms.dsrl import DSRLConfig, DSRLPolicy, NoiseActionEnv, noise_actor_policy
from robot_rl.algorithms.sac import SAC, SACConfig
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig
from robot_rl.training.online import OnlineConfig, run_online


def tiny_diffusion() -> DiffusionPolicy:
    torch.manual_seed(0)
    cfg = DiffusionPolicyConfig(
        obs_spec={
            keys.JOINT_POS: ObsFeature((6,)),
            keys.OBJECT_POSE: ObsFeature((7,)),
            keys.GOAL_POS: ObsFeature((3,)),
        },
        action_dim=7,
        pred_horizon=8,
        action_horizon=4,
        unet=UNetConfig(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
    )
    return DiffusionPolicy(cfg)


def test_noise_steers_the_frozen_sampler_deterministically():
    diffusion = tiny_diffusion()
    env = NoiseActionEnv(
        sim.make_env("push", reward="sparse", max_episode_steps=12), diffusion, noise_max=1.5
    )
    env.reset(seed=0)
    w = np.random.default_rng(0).uniform(-1.5, 1.5, env.action_space.shape).astype(np.float32)
    a, b = env.chunk(w), env.chunk(w)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 7)
    assert not np.allclose(env.chunk(-w), a)
    _, _, _, _, info = env.step(w)
    assert info["env_steps"] == 4


def test_training_changes_the_noise_actor_and_never_the_diffusion_policy(tmp_path):
    diffusion = tiny_diffusion()
    before = {k: v.clone() for k, v in diffusion.state_dict().items()}
    env = NoiseActionEnv(sim.make_env("push", reward="sparse", max_episode_steps=12), diffusion)
    policy = noise_actor_policy(diffusion, DSRLConfig(hidden=(16,)))
    assert policy.act_dim == 8 * 7 and policy.obs_keys == sorted(
        [keys.JOINT_POS, keys.OBJECT_POSE, keys.GOAL_POS]
    )
    algo = SAC(policy, SACConfig(hidden=(16,), critic_members=2))
    actor_before = [p.clone() for p in algo.actor.parameters()]
    config = OnlineConfig(
        env_steps=48, batch_size=4, utd=2, eval_every=0, checkpoint_every=48, progress=False
    )
    curve = run_online(algo, env, tmp_path, config)
    assert curve[-1]["env_step"] == 48  # counted in env steps: 12 chunks of Ta = 4
    for k, v in diffusion.state_dict().items():
        assert torch.equal(v, before[k]), f"diffusion weight {k} changed"
    assert not any(p.requires_grad for p in diffusion.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, algo.actor.parameters()))
    # The deployable bundle acts like the diffusion policy, started from the actor's noise.
    bundle = DSRLPolicy.load(DSRLPolicy(diffusion, algo.policy).save(tmp_path / "dsrl"))
    obs = {k: torch.zeros(1, diffusion.obs_horizon, *diffusion.obs_spec[k][0]) for k in diffusion.obs_spec}
    torch.testing.assert_close(
        bundle.predict_action(obs), DSRLPolicy(diffusion, algo.policy).predict_action(obs)
    )


def test_the_noise_actor_sees_observations_as_the_diffusion_policy_normalizes_them():
    diffusion = tiny_diffusion()
    rng = np.random.default_rng(0)
    scale = {k: rng.uniform(2.0, 30.0, diffusion.obs_spec[k][0]) for k in diffusion.config.state_keys}
    offset = {k: rng.uniform(-3.0, 3.0, diffusion.obs_spec[k][0]) for k in diffusion.config.state_keys}
    diffusion.set_normalization({**scale, keys.ACTION: np.ones(7)}, {**offset, keys.ACTION: np.zeros(7)})
    policy = noise_actor_policy(diffusion, DSRLConfig(hidden=(16,)))
    obs = {
        k: torch.as_tensor(rng.normal(size=(5, *diffusion.obs_spec[k][0])), dtype=torch.float32)
        for k in scale
    }
    expected = torch.cat([diffusion.normalize(k, obs[k]) for k in policy.obs_keys], dim=-1)
    torch.testing.assert_close(policy.encode(obs), expected, rtol=1e-5, atol=1e-5)
    # Explicit statistics still win.
    plain = noise_actor_policy(diffusion, DSRLConfig(hidden=(16,)), np.zeros(16), np.ones(16))
    torch.testing.assert_close(plain.encode(obs), plain.flatten_obs(obs))
