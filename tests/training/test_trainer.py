"""The trainer on a real zarr store: loss falls, validation and TensorBoard logged, runs guarded."""

import pytest
import torch

from robot_rl import keys
from robot_rl.algorithms.diffusion_bc import DiffusionBC, DiffusionBCConfig
from robot_rl.data.sequence import SequenceConfig, SequenceDataset
from robot_rl.policies import load_policy
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig
from robot_rl.training.trainer import Trainer, TrainerConfig

SEQ = SequenceConfig(
    horizon=8, n_obs_steps=2, n_action_steps=4, obs_keys=(keys.JOINT_POS, keys.GOAL_POS), val_ratio=0.2
)


def _algo():
    torch.manual_seed(0)
    cfg = DiffusionPolicyConfig(
        obs_spec={keys.JOINT_POS: ObsFeature((6,)), keys.GOAL_POS: ObsFeature((3,))},
        action_dim=7,
        pred_horizon=8,
        action_horizon=4,
        unet=UNetConfig(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
    )
    return DiffusionBC(DiffusionPolicy(cfg), DiffusionBCConfig(lr=2e-3, warmup_steps=5))


def test_loss_falls_and_outputs_are_written(tiny_store, tmp_path):
    train = SequenceDataset(tiny_store, SEQ, split="train")
    val = SequenceDataset(tiny_store, SEQ, split="val")
    algo = _algo()
    batch = train.collate(train.__getitems__(list(range(32))))
    with torch.no_grad():
        torch.manual_seed(1)
        before = algo.model.compute_loss(batch).item()
    cfg = TrainerConfig(
        steps=80,
        batch_size=32,
        checkpoint_every=40,
        val_every=40,
        val_batches=1,
        log_every=10,
        progress=False,
    )
    rollouts = []
    evaluator = lambda policy, step: rollouts.append(step) or {"success_rate": 0.0}
    metrics = Trainer(
        algo, train, tmp_path / "run", cfg, val_data=val, evaluator=evaluator, run_config={"t": 1}
    ).fit()
    with torch.no_grad():
        torch.manual_seed(1)
        after = algo.model.compute_loss(batch).item()
    assert after < 0.85 * before, (before, after)
    assert "val_loss" in metrics and rollouts == [80]
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert load_policy(tmp_path / "run" / "policy").predict_action(
        {k: v[:2] for k, v in batch["obs"].items()}
    ).shape == (2, 4, 7)
    # Same out dir, different run: refused, nothing overwritten.
    with pytest.raises(ValueError, match="different run"):
        Trainer(_algo(), train, tmp_path / "run", cfg, run_config={"t": 2}).fit()
