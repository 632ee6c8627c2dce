"""Rollout evaluation in the real MuJoCo task, the Wilson interval, the video and the PNG."""

import pytest
import torch

from robot_rl import keys
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig
from robot_rl.training.evaluation import (
    EvalConfig,
    evaluate,
    wilson_interval,
    write_outcomes_png,
    write_video,
)


def test_wilson_interval_matches_known_values():
    lo, hi = wilson_interval(90, 100)
    assert lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def _tiny_reach_policy() -> DiffusionPolicy:
    torch.manual_seed(0)
    spec = {keys.JOINT_POS: ObsFeature((6,)), keys.GOAL_POS: ObsFeature((3,))}
    unet = UNetConfig(down_dims=(8, 16), step_embed_dim=8, n_groups=4)
    cfg = DiffusionPolicyConfig(obs_spec=spec, action_dim=7, pred_horizon=8, action_horizon=4, unet=unet)
    return DiffusionPolicy(cfg).eval()


def test_seeded_rollouts_in_sim_write_video_and_png(tmp_path):
    policy = _tiny_reach_policy()
    config = EvalConfig(
        task="reach", episodes=3, envs_per_worker=2, max_episode_steps=6, video_episodes=1, video_size=48
    )
    result = evaluate(policy, config, progress=False)
    assert result.seeds == [config.seed, config.seed + 1, config.seed + 2]
    assert all(0 < n <= 6 for n in result.lengths)
    assert 0 < len(result.frames) <= 6 and result.frames[0].shape == (48, 48, 3)
    assert write_video(result.frames, tmp_path / "v.mp4").stat().st_size > 0
    assert write_outcomes_png(result, tmp_path / "o.png", "reach").read_bytes()[:4] == b"\x89PNG"
    again = evaluate(policy, config, progress=False)
    assert again.lengths == result.lengths  # seeded: the same episodes


class _Recording:
    """A policy that records every chunk it samples."""

    def __init__(self, policy):
        self.policy, self.chunks = policy, []
        self.obs_spec, self.obs_horizon, self.device = policy.obs_spec, policy.obs_horizon, policy.device

    def reset(self):
        self.policy.reset()

    def predict_action(self, obs):
        chunk = self.policy.predict_action(obs)
        self.chunks.append(chunk.clone())
        return chunk


def test_sampling_noise_is_seeded_and_the_callers_random_state_untouched():
    config = EvalConfig(task="reach", episodes=2, envs_per_worker=2, max_episode_steps=8)
    runs = []
    for global_seed in (1, 2):
        policy = _Recording(_tiny_reach_policy())  # (seeds torch itself: build it first)
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        evaluate(policy, config, progress=False)
        assert torch.equal(torch.get_rng_state(), state)  # evaluation drew from a fork
        runs.append(torch.cat(policy.chunks))
    assert torch.equal(runs[0], runs[1])  # the same noise whatever the caller's seed
    shifted = _Recording(_tiny_reach_policy())
    evaluate(shifted, EvalConfig(task="reach", episodes=2, envs_per_worker=2, max_episode_steps=8, seed=7))
    assert not torch.allclose(torch.cat(shifted.chunks)[:1], runs[0][:1])  # seeded by the episodes


def test_int8_rollouts_in_worker_processes_and_their_refusals(tmp_path, capsys):
    from robot_rl.cli import main
    from robot_rl.models.actor import ActorPolicy

    policy = _tiny_reach_policy()
    ckpt = policy.save(tmp_path / "policy")
    args = ["eval", "--policy", str(ckpt), "--task", "reach", "--episodes", "2", "--workers", "2"]
    assert main([*args, "--int8", "--json", str(tmp_path / "r.json")]) == 0
    assert "sampler ddim-10 int8" in capsys.readouterr().out
    assert main([*args, "--int8", "--device", "cuda"]) == 2
    assert "--int8 runs on CPU" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no int8 form"):
        evaluate(
            ActorPolicy.__new__(ActorPolicy), EvalConfig(task="reach", episodes=1, int8=True), progress=False
        )


def test_eval_cli_rolls_out_rl_actors_and_dsrl_bundles(tmp_path, capsys):
    """`robot-rl eval` takes every policy kind, not only diffusion policies."""
    import numpy as np

    import sim
    from robot_rl.algorithms.dsrl import DSRLConfig, DSRLPolicy, noise_actor_policy
    from robot_rl.cli import main
    from robot_rl.models.actor import ActorPolicy

    env = sim.make_env("reach")
    actor = ActorPolicy([keys.JOINT_POS, keys.GOAL_POS], [6, 3], env.action_space.low, env.action_space.high)
    diffusion = _tiny_reach_policy()
    bundle = DSRLPolicy(diffusion, noise_actor_policy(diffusion, DSRLConfig(), np.zeros(9), np.ones(9)))
    for name, policy in (("actor", actor), ("dsrl", bundle)):
        path = policy.save(tmp_path / name)
        args = ["eval", "--policy", str(path), "--task", "reach", "--episodes", "2"]
        assert main([*args, "--json", str(tmp_path / f"{name}.json")]) == 0
        out = capsys.readouterr().out
        assert "reach: success" in out and f"sampler none ({type(policy).__name__})" in out
        assert main([*args, "--inference-steps", "2"]) == 2
        err = capsys.readouterr().err
        assert "--inference-steps" in err and "no diffusion sampler" in err
    assert (
        main(["eval", "--policy", str(tmp_path / "actor"), "--task", "reach", "--action-horizon", "2"]) == 2
    )
    assert "has no action chunks to shorten" in capsys.readouterr().err
