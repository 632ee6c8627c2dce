"""DiffusionPolicy: the serving interface, input checks, checkpoints without pickle, tamper refusal."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from robot_rl import keys
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, SamplerConfig, load_policy
from robot_rl.policies.diffusion import ObsFeature, UNetConfig, VisionConfig
from robot_rl.training.checkpoint import CheckpointError

TINY = UNetConfig(down_dims=(16, 32), step_embed_dim=16, n_groups=4)


def _policy(**kw) -> DiffusionPolicy:
    torch.manual_seed(0)
    spec = {keys.JOINT_POS: ObsFeature((6,)), keys.GOAL_POS: ObsFeature((3,))}
    cfg = DiffusionPolicyConfig(
        obs_spec=spec, action_dim=7, pred_horizon=8, action_horizon=4, unet=TINY, **kw
    )
    p = DiffusionPolicy(cfg).eval()
    p.set_normalization(
        {
            keys.JOINT_POS: torch.full((6,), 0.5),
            keys.GOAL_POS: torch.ones(3),
            keys.ACTION: torch.full((7,), 2.0),
        },
        {keys.JOINT_POS: torch.zeros(6), keys.GOAL_POS: torch.zeros(3), keys.ACTION: torch.full((7,), -1.0)},
    )
    return p


def _obs(b=3):
    g = torch.Generator().manual_seed(1)
    return {
        keys.JOINT_POS: torch.randn(b, 2, 6, generator=g),
        keys.GOAL_POS: torch.randn(b, 2, 3, generator=g),
    }


def test_interface_and_shapes():
    p = _policy()
    assert (p.obs_horizon, p.pred_horizon, p.action_horizon, p.action_dim) == (2, 8, 4, 7)
    assert p.obs_spec == {keys.JOINT_POS: ((6,), "float32"), keys.GOAL_POS: ((3,), "float32")}
    out = p.predict_action(_obs())
    assert out.shape == (3, 4, 7) and out.dtype == torch.float32
    # Raw units: normalized actions lie in [-1, 1] (clipped x0), so raw ones in [0, 1] for scale 2, offset -1.
    assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5


def test_bad_observations_are_named():
    p = _policy()
    obs = _obs()
    with pytest.raises(ValueError, match="goal_pos"):
        p.predict_action({keys.JOINT_POS: obs[keys.JOINT_POS]})
    with pytest.raises(ValueError, match="joint_pos.*shape"):
        p.predict_action({**obs, keys.JOINT_POS: torch.randn(3, 1, 6)})


def test_warm_start_uses_fewer_network_calls_after_the_first_chunk():
    p = _policy(sampler=SamplerConfig(kind="ddim", num_steps=10, warm_start=True, warm_start_steps=3))
    calls = []
    p.model.register_forward_hook(lambda *a: calls.append(1))
    p.predict_action(_obs())
    assert len(calls) == 10
    calls.clear()
    p.predict_action(_obs())
    assert len(calls) == 3
    p.reset()
    calls.clear()
    p.predict_action(_obs())
    assert len(calls) == 10


def test_every_sampler_kind_stays_inside_the_action_range():
    """With clip_sample (the default) every sampler bounds its x0 estimates, so actions stay within
    the range the normalizer saw ([0, 1] here). DPM-Solver++ once lacked the bound and sampled
    actions of hundreds of radians from a trained push policy."""
    p = _policy()
    for kind in ("ddim", "ddim_diffusers", "dpm_solver", "ddpm"):
        for steps in (5, 10):
            p.configure_sampler(SamplerConfig(kind=kind, num_steps=steps))
            actions = p.predict_action(_obs(16))
            assert actions.shape == (16, 4, 7)
            assert actions.min() >= -1e-4 and actions.max() <= 1 + 1e-4, (kind, steps, actions.abs().max())
    with pytest.raises(ValueError, match="consistency"):
        p.configure_sampler(SamplerConfig(kind="consistency", num_steps=1))


def test_image_policy_predicts_from_uint8_cameras():
    torch.manual_seed(0)
    spec = {keys.JOINT_POS: ObsFeature((6,)), keys.image_key("front"): ObsFeature((32, 32, 3), "uint8")}
    cfg = DiffusionPolicyConfig(
        obs_spec=spec,
        action_dim=7,
        pred_horizon=8,
        action_horizon=4,
        unet=TINY,
        vision=VisionConfig((28, 28), 8),
    )
    p = DiffusionPolicy(cfg)
    obs = {
        keys.JOINT_POS: torch.randn(2, 2, 6),
        keys.image_key("front"): torch.randint(0, 255, (2, 2, 32, 32, 3), dtype=torch.uint8),
    }
    loss = p.compute_loss({"obs": obs, keys.ACTION: torch.randn(2, 8, 7)})
    loss.backward()
    assert p.image_encoders[keys.image_key("front")].proj.weight.grad is not None
    assert p.eval().predict_action(obs).shape == (2, 4, 7)
    with pytest.raises(ValueError, match="uint8"):
        p.predict_action({**obs, keys.image_key("front"): obs[keys.image_key("front")].float()})


def test_checkpoint_loads_in_a_fresh_process_without_pickle_or_training_code(tmp_path):
    p = _policy()
    p.save(tmp_path / "policy")
    p.generator = torch.Generator().manual_seed(5)
    expected = p.predict_action(_obs())
    script = textwrap.dedent(
        f"""
        import pickle, sys
        import torch
        def refuse(*a, **k):
            raise AssertionError("pickle used")
        pickle.load = pickle.loads = torch.load = refuse
        from robot_rl import keys
        from robot_rl.policies import load_policy
        p = load_policy({str(tmp_path / "policy")!r})
        g = torch.Generator().manual_seed(1)
        obs = {{keys.JOINT_POS: torch.randn(3, 2, 6, generator=g), keys.GOAL_POS: torch.randn(3, 2, 3, generator=g)}}
        p.generator = torch.Generator().manual_seed(5)
        out = p.predict_action(obs)
        loaded = [m for m in sys.modules if m.startswith(("robot_rl.algorithms", "robot_rl.training.trainer"))]
        assert not loaded, loaded
        print(" ".join(f"{{v:.6f}}" for v in out.flatten().tolist()))
        """
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=300
    )
    assert res.returncode == 0, res.stderr
    got = torch.tensor([float(v) for v in res.stdout.split()]).reshape(expected.shape)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_tampered_or_truncated_checkpoints_are_refused(tmp_path):
    path = _policy().save(tmp_path / "policy")
    weights = path / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-10] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="sha256.*modified"):
        load_policy(path)
    weights.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(CheckpointError, match="truncated"):
        load_policy(path)
    (path / "config.yaml").write_text("kind: diffusion_policy\n")
    with pytest.raises(CheckpointError, match="config.yaml"):
        load_policy(path)
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        load_policy(tmp_path / "missing")


def test_relative_actions_are_predicted_from_the_current_joint_positions(tmp_path):
    """Same weights, same noise: the relative policy's chunk is the absolute one's shifted by
    the joint positions at the current step (the gripper dimension stays as it is)."""
    absolute, relative = _policy(), _policy(relative_action_key=keys.JOINT_POS)
    relative.load_state_dict(absolute.state_dict())
    obs = _obs()
    outs = []
    for p in (absolute, relative):
        p.generator = torch.Generator().manual_seed(3)
        outs.append(p.predict_action(obs))
    now = obs[keys.JOINT_POS][:, -1]
    torch.testing.assert_close(outs[1][..., :6], outs[0][..., :6] + now[:, None], atol=1e-5, rtol=0)
    torch.testing.assert_close(outs[1][..., 6], outs[0][..., 6])
    # The training target is the shifted action: a demo that holds the current joints has
    # the same loss under the relative policy as an all-zero one under the absolute policy.
    hold = torch.cat([now[:, None].expand(3, 8, 6), torch.zeros(3, 8, 1)], dim=-1)
    for p in (absolute, relative):
        p.train()
    torch.manual_seed(7)
    loss_rel = relative.compute_loss({"obs": obs, keys.ACTION: hold})
    torch.manual_seed(7)
    loss_abs = absolute.compute_loss({"obs": obs, keys.ACTION: torch.zeros(3, 8, 7)})
    torch.testing.assert_close(loss_rel, loss_abs)
    # Saved and loaded with its setting.
    back = load_policy(relative.save(tmp_path / "rel"))
    assert back.config.relative_action_key == keys.JOINT_POS


def test_relative_warm_start_re_expresses_the_previous_chunk_from_the_new_position():
    cfg = SamplerConfig(kind="ddim", num_steps=10, warm_start=True, warm_start_steps=3)
    p = _policy(relative_action_key=keys.JOINT_POS, sampler=cfg)
    obs = _obs(1)
    p.predict_action(obs)
    previous = p._prev_chunk.clone()  # the whole Tp chunk, raw and absolute
    starts = []
    warm = p._sampler.warm
    p._sampler.warm = lambda denoise, x, k, gen: starts.append(x.clone()) or warm(denoise, x, k, gen)
    moved = {**obs, keys.JOINT_POS: obs[keys.JOINT_POS] + 0.3}
    p.predict_action(moved)
    # Warm start begins from the previous chunk shifted by Ta, in the frame of the new position.
    shifted = torch.cat([previous[:, 4:], previous[:, -1:].expand(1, 4, 7)], dim=1)
    ref = torch.nn.functional.pad(moved[keys.JOINT_POS][:, -1], (0, 1))[:, None]
    torch.testing.assert_close(starts[0], p.normalize(keys.ACTION, shifted - ref))


def test_relative_action_key_must_be_a_state_key_of_the_policy():
    with pytest.raises(ValueError, match="relative_action_key 'ee_pos'"):
        _policy(relative_action_key=keys.EE_POS)


def test_state_dims_select_what_the_network_reads():
    """ObsFeature.dims: the policy still takes the whole value, but reads only those indices, so
    the others (say, an object's orientation) cannot change its actions; bad indices are refused."""
    torch.manual_seed(0)
    spec = {keys.JOINT_POS: ObsFeature((6,)), keys.OBJECT_POSE: ObsFeature((7,), dims=(0, 1, 2))}
    p = DiffusionPolicy(
        DiffusionPolicyConfig(obs_spec=spec, action_dim=7, pred_horizon=8, action_horizon=4, unet=TINY)
    ).eval()
    obs = {keys.JOINT_POS: torch.randn(2, 2, 6), keys.OBJECT_POSE: torch.randn(2, 2, 7)}
    noise = torch.randn(2, 8, 7)
    turned = {**obs, keys.OBJECT_POSE: obs[keys.OBJECT_POSE].clone()}
    turned[keys.OBJECT_POSE][..., 3:] = torch.randn(2, 2, 4)
    torch.testing.assert_close(p.predict_action(turned, noise=noise), p.predict_action(obs, noise=noise))
    moved = {**obs, keys.OBJECT_POSE: obs[keys.OBJECT_POSE] + torch.tensor([0.5, 0, 0, 0, 0, 0, 0])}
    assert not torch.allclose(p.predict_action(moved, noise=noise), p.predict_action(obs, noise=noise))
    with pytest.raises(ValueError, match="object_pose"):  # the interface is still the whole pose
        p.predict_action({**obs, keys.OBJECT_POSE: obs[keys.OBJECT_POSE][..., :3]})
    for bad in ((7,), (0, 0)):
        with pytest.raises(ValueError, match="dims"):
            DiffusionPolicyConfig(obs_spec={keys.OBJECT_POSE: ObsFeature((7,), dims=bad)}, action_dim=7)
