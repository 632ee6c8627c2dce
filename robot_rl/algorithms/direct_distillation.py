"""Direct distillation of a diffusion policy's DDIM sampler into a one-step student.

Luhman & Luhman (2021), "Knowledge distillation in iterative generative models". The
teacher's deterministic DDIM sampler is a map from initial noise to an action sequence,
x0 = Phi(x_T | obs); the student learns that map in one network call:

    x_T ~ N(0, I),  obs from the demos
    target = Phi_teacher(x_T | obs)                      (K teacher DDIM steps, no grad)
    loss   = || f_student(x_T, T - 1 | obs) - target ||^2

It never looks at the demo actions: the student copies the teacher's policy, which
consistency distillation only approaches through a chain of one-step targets. The price is
K teacher calls per training step (without gradients) instead of one.

The student is the same object as consistency distillation's (a DiffusionPolicy with the
one-step consistency sampler, started from the teacher's weights), trained through the same
trainer, checkpoint and resume; only the loss differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robot_rl.algorithms.consistency_distillation import (
    ConsistencyDistillation,
    ConsistencyDistillationConfig,
)
from robot_rl.policies import samplers
from robot_rl.policies.diffusion import OBS, DiffusionPolicy


@dataclass(frozen=True)
class DirectDistillationConfig(ConsistencyDistillationConfig):
    teacher_steps: int = 10  # K: DDIM steps of the teacher's sampler that the student replaces

    def __post_init__(self):
        super().__post_init__()
        if self.teacher_steps < 1:
            raise ValueError(f"teacher_steps must be >= 1, got {self.teacher_steps}")


class DirectDistillation(ConsistencyDistillation):
    uses_target = False  # the teacher's sample is the target: no target network is kept or saved

    def __init__(
        self, teacher: DiffusionPolicy, config: DirectDistillationConfig = DirectDistillationConfig()
    ):
        super().__init__(teacher, config)
        tc = teacher.config
        self.teacher_sampler = samplers.FastDDIM(
            self.alphas_cumprod, config.teacher_steps, tc.prediction_type, tc.clip_sample
        )
        self.t_max = tc.num_train_timesteps - 1

    def _loss(self, batch: dict[str, torch.Tensor], student: DiffusionPolicy) -> torch.Tensor:
        cfg = self.teacher.config
        with torch.no_grad():
            cond_teacher = self.teacher.encode_obs(batch[OBS])
            b = cond_teacher.shape[0]
            x_t = torch.randn((b, cfg.pred_horizon, cfg.action_dim), device=cond_teacher.device)

            def denoise(x: torch.Tensor, t: int) -> torch.Tensor:
                return self.teacher.model(
                    x, torch.full((b,), t, device=x.device, dtype=torch.long), cond_teacher
                )

            target = self.teacher_sampler(denoise, x_t)
        cond = student.encode_obs(batch[OBS])
        t = torch.full((b,), self.t_max, device=x_t.device, dtype=torch.long)
        return nn.functional.mse_loss(student.consistency(x_t, t, cond), target)
