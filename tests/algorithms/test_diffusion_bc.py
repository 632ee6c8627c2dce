import torch

from robot_rl import keys
from robot_rl.algorithms.diffusion_bc import DiffusionBC, DiffusionBCConfig, lr_at
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig


def _batch(gen):
    q = torch.rand(16, 2, 6, generator=gen) * 2 - 1
    act = q[:, -1:, :].repeat(1, 8, 1) * 0.5
    return {"obs": {keys.JOINT_POS: q}, keys.ACTION: torch.cat([act, torch.ones(16, 8, 1)], -1)}


def _algo():
    torch.manual_seed(0)
    cfg = DiffusionPolicyConfig(
        obs_spec={keys.JOINT_POS: ObsFeature((6,))},
        action_dim=7,
        pred_horizon=8,
        action_horizon=4,
        unet=UNetConfig(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
    )
    return DiffusionBC(DiffusionPolicy(cfg), DiffusionBCConfig(lr=1e-3, warmup_steps=2))


def test_state_dict_resumes_exactly():
    a = _algo()
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        a.update(_batch(gen))
    state = {k: v.clone() for k, v in a.state_dict().items()}
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    b = _algo()
    b.load_state_dict(state)
    batch = _batch(gen)
    torch.manual_seed(7)
    ma = a.update(batch)
    torch.manual_seed(7)
    mb = b.update(batch)
    assert ma == mb
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert a.policy is a.ema and not a.policy.training


def test_lr_schedule_warms_up_then_decays():
    assert lr_at(0, 1.0, 10, 100) == 0.1
    assert lr_at(9, 1.0, 10, 100) == 1.0
    assert lr_at(55, 1.0, 10, 100) < 1.0
    assert lr_at(100, 1.0, 10, 100) == 0.0
