"""Exponential moving average of weights, with diffusion_policy's warm-up schedule.

    decay(step) = clamp(1 - (1 + step) ** -power, 0, max_decay)

starts near 0 (the average follows the weights closely while they change fast) and rises
towards `max_decay` (power 0.75: ~0.999 after 10k steps). Buffers (normalizer statistics)
are copied, not averaged.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_decay(step: int, power: float = 0.75, max_decay: float = 0.9999) -> float:
    if step <= 0:
        return 0.0
    return min(max(1.0 - (1.0 + step) ** -power, 0.0), max_decay)


@torch.no_grad()
def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * model; buffers copied."""
    avg_params = [p for p in average.parameters()]
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(avg_params, params, 1.0 - decay)
    for b_avg, b in zip(average.buffers(), model.buffers()):
        b_avg.copy_(b)
