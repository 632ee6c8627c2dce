"""Consistency distillation: the student keeps the interface, learns, and samples in one call."""

import torch

from robot_rl import keys
from robot_rl.algorithms.consistency_distillation import (
    ConsistencyDistillation,
    ConsistencyDistillationConfig,
)
from robot_rl.policies import load_policy
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig


def _teacher():
    torch.manual_seed(0)
    cfg = DiffusionPolicyConfig(
        obs_spec={keys.JOINT_POS: ObsFeature((6,))},
        action_dim=7,
        pred_horizon=8,
        action_horizon=4,
        unet=UNetConfig(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
    )
    return DiffusionPolicy(cfg).eval()


def _batch(gen):
    q = torch.rand(32, 2, 6, generator=gen) * 2 - 1
    act = torch.cat([q[:, -1:, :].repeat(1, 8, 1) * 0.5, torch.ones(32, 8, 1)], -1)
    return {"obs": {keys.JOINT_POS: q}, keys.ACTION: act}


def test_student_has_the_teacher_interface_and_samples_in_one_call(tmp_path):
    teacher = _teacher()
    algo = ConsistencyDistillation(
        teacher, ConsistencyDistillationConfig(grid_steps=10, warmup_steps=1, lr=1e-3)
    )
    gen = torch.Generator().manual_seed(0)
    fixed = _batch(gen)
    torch.manual_seed(3)
    first = algo.validation_loss(fixed)["loss"]
    for _ in range(40):
        algo.update(_batch(gen))
    torch.manual_seed(3)
    assert algo.validation_loss(fixed)["loss"] < first
    student = algo.policy
    assert student.config.sampler.kind == "consistency"
    assert (student.obs_spec, student.obs_horizon, student.action_horizon) == (
        teacher.obs_spec,
        teacher.obs_horizon,
        teacher.action_horizon,
    )
    calls = []
    student.model.register_forward_hook(lambda *a: calls.append(1))
    obs = {keys.JOINT_POS: torch.randn(2, 2, 6)}
    assert student.predict_action(obs).shape == (2, 4, 7)
    assert len(calls) == 1
    loaded = load_policy(student.save(tmp_path / "student"))
    loaded.generator = torch.Generator().manual_seed(1)
    student.generator = torch.Generator().manual_seed(1)
    torch.testing.assert_close(loaded.predict_action(obs), student.predict_action(obs))
    # Teacher untouched by distillation.
    assert all(not p.requires_grad for p in teacher.parameters())
