"""Consistency distillation of a trained DiffusionPolicy into a one-step (or few-step) student.

The RL-100 recipe for high-rate control: a consistency model (Song et al., 2023), distilled
from the teacher's probability-flow ODE as solved by its own DDIM step. The student starts as a
copy of the teacher (same normalizer, encoders and U-Net) and learns the consistency function

    f(x_t, t) = c_skip(t) x_t + c_out(t) F(x_t, t),     c_skip(0) = 1, c_out(0) = 0

that maps any point of an ODE trajectory to its clean end. One training step, on a grid of
N + 1 timesteps 0 = g_0 < g_1 < ... < g_N = T - 1:

    x0  = normalized demo actions        n ~ U{0..N-1},  t = g_{n+1},  s = g_n
    x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps
    x_s = DDIM_teacher(x_t, t -> s)                         (no grad, teacher frozen)
    loss = || f_student(x_t, t) - f_target(x_s, s) ||^2      (target = slow EMA of the student)

At inference f(x_{T-1}, T-1) with x_{T-1} ~ N(0, I) is the action sequence: one network call.
Few-step sampling alternates f and re-noising (robot_rl.policies.samplers.Consistency).
`policy` is an EMA of the student, a DiffusionPolicy with sampler kind "consistency": the same
interface, checkpoint format and server path as the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from robot_rl.algorithms.diffusion_bc import lr_at
from robot_rl.policies.diffusion import OBS, DiffusionPolicy, SamplerConfig
from robot_rl.training.checkpoint import load_optimizer_tensors, optimizer_tensors
from robot_rl.training.ema import ema_decay, ema_update


@dataclass(frozen=True)
class ConsistencyDistillationConfig:
    grid_steps: int = 20  # N: teacher DDIM steps along the ODE that the student learns to jump
    student_steps: int = 1  # the saved student's default number of sampling steps
    lr: float = 1e-4
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    total_steps: int = 0
    target_decay: float = 0.95  # EMA of the target network (consistency-model paper: 0.95)
    ema_power: float = 0.75
    ema_max_decay: float = 0.999

    def __post_init__(self):
        if self.grid_steps < 1 or self.student_steps < 1:
            raise ValueError("grid_steps and student_steps must be >= 1")
        if not 0 <= self.target_decay < 1:
            raise ValueError("target_decay must be in [0, 1)")


def make_student(teacher: DiffusionPolicy, steps: int) -> DiffusionPolicy:
    """A copy of the teacher whose sampler is the consistency sampler."""
    cfg = replace(
        teacher.config, prediction_type="sample", sampler=SamplerConfig(kind="consistency", num_steps=steps)
    )
    student = DiffusionPolicy(cfg).to(teacher.device)
    student.load_state_dict(teacher.state_dict())
    return student


class ConsistencyDistillation:
    uses_target = True  # the loss reads the slow target network (subclasses may not)

    def __init__(
        self,
        teacher: DiffusionPolicy,
        config: ConsistencyDistillationConfig = ConsistencyDistillationConfig(),
    ):
        if teacher.config.sampler.kind == "consistency":
            raise ValueError("the teacher is already a consistency student; distill from a diffusion policy")
        self.config = config
        self.teacher = teacher.eval().requires_grad_(False)
        self.model = make_student(teacher, config.student_steps).train()
        # The slow target network, only where the loss reads it.
        self.target = self.model.clone().eval().requires_grad_(False) if self.uses_target else None
        self.ema = self.model.clone().eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        t_max = teacher.config.num_train_timesteps - 1
        grid = [round(i * t_max / config.grid_steps) for i in range(config.grid_steps + 1)]
        self.grid = torch.tensor(grid, dtype=torch.long)
        self.alphas_cumprod = self.teacher.alphas_cumprod.detach().cpu()
        self.step = 0
        self._loss_module: nn.Module = _StudentLoss(self, self.model)

    def distribute(self, device_ids: list[int] | None) -> None:
        """Multi-GPU (torchrun): the student's gradients are averaged by DistributedDataParallel."""
        from torch.nn.parallel import DistributedDataParallel

        self._loss_module = DistributedDataParallel(_StudentLoss(self, self.model), device_ids=device_ids)

    @property
    def policy(self) -> DiffusionPolicy:
        return self.ema

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.config
        lr = lr_at(self.step, cfg.lr, cfg.warmup_steps, cfg.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        loss = self._loss_module(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.uses_target:
            ema_update(self.target, self.model, cfg.target_decay)
        decay = ema_decay(self.step, cfg.ema_power, cfg.ema_max_decay)
        ema_update(self.ema, self.model, decay)
        self.step += 1
        return {"loss": float(loss.detach()), "lr": lr, "ema_decay": decay}

    @torch.no_grad()
    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Consistency loss of the EMA student, and the error of its one-step actions vs the demo."""
        loss = self._loss(batch, self.ema)
        cond = self.ema.encode_obs(batch[OBS])
        x0 = self.ema.normalized_actions(batch, cond)
        t = torch.full((x0.shape[0],), self.teacher.config.num_train_timesteps - 1, device=x0.device)
        one_step = self.ema.consistency(torch.randn_like(x0), t, cond).clamp(-1, 1)
        return {"loss": float(loss), "one_step_mse": float(nn.functional.mse_loss(one_step, x0))}

    def _loss(self, batch: dict[str, torch.Tensor], student: DiffusionPolicy) -> torch.Tensor:
        device = self.teacher.device
        with torch.no_grad():
            cond_teacher = self.teacher.encode_obs(batch[OBS])
            cond_target = self.target.encode_obs(batch[OBS])
        cond = student.encode_obs(batch[OBS])
        x0 = student.normalized_actions(batch, cond)
        b = x0.shape[0]
        n = torch.randint(0, self.config.grid_steps, (b,))
        t, s = self.grid[n + 1].to(device), self.grid[n].to(device)
        ab = self.alphas_cumprod.to(device)
        ab_t, ab_s = ab[t][:, None, None], ab[s][:, None, None]
        noise = torch.randn_like(x0)
        x_t = ab_t.sqrt() * x0 + (1 - ab_t).sqrt() * noise
        with torch.no_grad():
            x_s = _teacher_ddim(self.teacher, x_t, t, ab_t, ab_s, cond_teacher)
            target = self.target.consistency(x_s, s, cond_target)
        pred = student.consistency(x_t, t, cond)
        return nn.functional.mse_loss(pred, target)

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {}
        for name in self._networks():
            out.update({f"{name}.{k}": v for k, v in getattr(self, name).state_dict().items()})
        out.update(optimizer_tensors(self.optimizer, "optim"))
        out["step"] = torch.tensor(self.step, dtype=torch.int64)
        return out

    def _networks(self) -> tuple[str, ...]:
        return ("model", "target", "ema") if self.uses_target else ("model", "ema")

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in self._networks():
            prefix = f"{name}."
            getattr(self, name).load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        load_optimizer_tensors(self.optimizer, tensors, "optim")
        self.step = int(tensors["step"])


class _StudentLoss(nn.Module):
    """The distillation loss as a module whose only parameters are the student's (for DDP)."""

    def __init__(self, algo: ConsistencyDistillation, student: DiffusionPolicy):
        super().__init__()
        self.student = student
        self._algo = [algo]  # a list, so the algorithm's teacher/target are not registered as submodules

    def forward(self, batch: dict) -> torch.Tensor:
        return self._algo[0]._loss(batch, self.student)


def _teacher_ddim(teacher: DiffusionPolicy, x_t, t, ab_t, ab_s, cond) -> torch.Tensor:
    """One deterministic DDIM step of the teacher from t to s (per-sample timesteps)."""
    out = teacher.model(x_t, t, cond)
    if teacher.config.prediction_type == "epsilon":
        eps = out
        x0 = (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    else:
        x0 = out
        eps = (x_t - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()
    if teacher.config.clip_sample:
        x0 = x0.clamp(-1.0, 1.0)
    return ab_s.sqrt() * x0 + (1 - ab_s).sqrt() * eps
