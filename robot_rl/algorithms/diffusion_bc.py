"""Diffusion behaviour cloning: the DDPM loss on demonstration windows, AdamW, EMA weights.

The algorithm owns the training copy of the policy, its optimizer, the learning-rate
schedule (linear warm-up then cosine decay, a function of the step counter) and the EMA
copy; `policy` is the EMA copy, the one to evaluate, serve and save.

Batch (from robot_rl.data's SequenceDataset): obs[key] (B, To, *shape) raw, ACTION
(B, Tp, A) raw. The policy normalizes.

    algo = DiffusionBC(DiffusionPolicy(cfg), DiffusionBCConfig(total_steps=20_000))
    metrics = algo.update(batch)                 # {"loss": ..., "lr": ..., "ema_decay": ...}
    algo.state_dict() / algo.load_state_dict(t)  # flat tensors: model, EMA, AdamW, step
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robot_rl.policies.diffusion import DiffusionPolicy
from robot_rl.training.checkpoint import load_optimizer_tensors, optimizer_tensors
from robot_rl.training.ema import ema_decay, ema_update


@dataclass(frozen=True)
class DiffusionBCConfig:
    lr: float = 1e-4
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.95, 0.999)
    warmup_steps: int = 500
    total_steps: int = 0  # cosine decay to 0 over this many steps; 0: constant after warm-up
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999
    grad_clip: float = 0.0  # 0: no clipping

    def __post_init__(self):
        if self.lr <= 0 or self.warmup_steps < 0 or self.total_steps < 0:
            raise ValueError("lr must be > 0, warmup_steps and total_steps >= 0")


def lr_at(step: int, base: float, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine to 0 at `total` (constant if total is 0)."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    if not total:
        return base
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


class DiffusionBC:
    def __init__(self, policy: DiffusionPolicy, config: DiffusionBCConfig = DiffusionBCConfig()):
        self.config = config
        self.model = policy.train()
        self.ema = policy.clone().eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.step = 0
        self._loss_module: torch.nn.Module = self.model

    def distribute(self, device_ids: list[int] | None) -> None:
        """Multi-GPU (torchrun): gradients are averaged by DistributedDataParallel."""
        from torch.nn.parallel import DistributedDataParallel

        self._loss_module = DistributedDataParallel(self.model, device_ids=device_ids)

    @property
    def policy(self) -> DiffusionPolicy:
        return self.ema

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.config
        lr = lr_at(self.step, cfg.lr, cfg.warmup_steps, cfg.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        loss = self._loss_module(batch)  # DiffusionPolicy.forward is its DDPM loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        decay = ema_decay(self.step, cfg.ema_power, cfg.ema_max_decay)
        ema_update(self.ema, self.model, decay)
        self.step += 1
        return {"loss": float(loss.detach()), "lr": lr, "ema_decay": decay}

    @torch.no_grad()
    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """The DDPM loss of the EMA policy on held-out windows."""
        return {"loss": float(self.ema.compute_loss(batch))}

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        out.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        out.update(optimizer_tensors(self.optimizer, "optim"))
        out["step"] = torch.tensor(self.step, dtype=torch.int64)
        return out

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        load_optimizer_tensors(self.optimizer, tensors, "optim")
        self.step = int(tensors["step"])
