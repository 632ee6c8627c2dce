"""Subprocess job for test_resume: train a tiny diffusion policy with the real trainer.

python tests/training/resume_job.py STORE OUT STEPS
"""

import sys

import torch

torch.set_num_threads(1)

from robot_rl import keys  # noqa: E402
from robot_rl.algorithms.diffusion_bc import DiffusionBC, DiffusionBCConfig  # noqa: E402
from robot_rl.data.sequence import SequenceConfig, SequenceDataset  # noqa: E402
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, ObsFeature, UNetConfig  # noqa: E402
from robot_rl.training.trainer import Trainer, TrainerConfig  # noqa: E402


def main(store: str, out: str, steps: int) -> None:
    torch.manual_seed(0)
    cfg = DiffusionPolicyConfig(
        obs_spec={keys.JOINT_POS: ObsFeature((6,)), keys.GOAL_POS: ObsFeature((3,))},
        action_dim=7,
        pred_horizon=8,
        action_horizon=4,
        unet=UNetConfig(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
    )
    algo = DiffusionBC(DiffusionPolicy(cfg), DiffusionBCConfig(lr=1e-3, warmup_steps=5))
    seq = SequenceConfig(horizon=8, n_obs_steps=2, n_action_steps=4, obs_keys=(keys.JOINT_POS, keys.GOAL_POS))
    data = SequenceDataset(store, seq, split="all")
    trainer_cfg = TrainerConfig(
        steps=steps, batch_size=16, seed=3, checkpoint_every=5, val_every=0, progress=False
    )
    Trainer(algo, data, out, trainer_cfg, run_config={"job": "resume"}).fit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
