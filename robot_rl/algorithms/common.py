"""What every algorithm in this package shares: the batch contract and state flattening.

Batch contract (`update(batch)`): a dict of float32 tensors, observations already flattened
and normalised by the policy's normaliser, actions scaled to [-1, 1]:

    OBS        (B, obs_dim)   s_t
    ACTION     (B, act_dim)   a_t
    REWARD     (B,)           r_t, or the discounted n-step sum r_t + g r_t+1 + ... + g^(n-1) r_t+n-1
    NEXT_OBS   (B, obs_dim)   s_t+n
    TERMINAL   (B,)           1.0 when s_t+n is a true terminal state (no bootstrap)
    DISCOUNT   (B,)           optional: g^n for n-step batches; gamma when absent
    MC_RETURN  (B,)           Monte-Carlo return-to-go from s_t (Cal-QL's lower bound)

`state_dict()` of an algorithm is flat {name: Tensor}: networks, targets and optimizer
moments, so a checkpoint is one safetensors file (no pickle) and resuming is exact.
"""

from __future__ import annotations

import torch
from torch import nn

from robot_rl import keys

OBS = "obs"
NEXT_OBS = "next_obs"
ACTION = keys.ACTION
REWARD = keys.REWARD
TERMINAL = keys.TERMINAL
DISCOUNT = "discount"
MC_RETURN = "mc_return"


def discount_of(batch: dict[str, torch.Tensor], gamma: float) -> torch.Tensor | float:
    return batch[DISCOUNT] if DISCOUNT in batch else gamma


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source, in one fused op over all parameters."""
    t_params = list(target.parameters())
    torch._foreach_lerp_(t_params, list(source.parameters()), tau)


def module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().clone() for k, v in module.state_dict().items()}


def optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam-style per-parameter state (step, moments) as flat tensors."""
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            out[f"{prefix}.{index}.{name}"] = torch.as_tensor(value).detach().clone()
    return out


def load_module(prefix: str, module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    module.load_state_dict(own)


def load_optimizer(prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith(prefix + "."):
            continue
        index, name = key[len(prefix) + 1 :].split(".", 1)
        state.setdefault(int(index), {})[name] = value.clone()
    sd["state"] = state
    optimizer.load_state_dict(sd)


def require(batch: dict[str, torch.Tensor], *names: str) -> None:
    missing = [n for n in names if n not in batch]
    if missing:
        raise KeyError(f"batch lacks {missing} (has {sorted(batch)})")
