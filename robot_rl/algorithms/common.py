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

from contextlib import contextmanager

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

# Env `info` keys the online loop reads: primitive env steps one wrapped step took (DSRL's
# chunk = Ta steps), and task success (the sim envs' name).
ENV_STEPS_INFO = "env_steps"
SUCCESS_INFO = "is_success"


def discount_of(batch: dict[str, torch.Tensor], gamma: float) -> torch.Tensor | float:
    return batch[DISCOUNT] if DISCOUNT in batch else gamma


@torch.no_grad()
def soft_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau source, in one fused op over all parameters.

    Takes parameter lists, built once by the algorithm: walking a module's parameters costs
    more than the update itself at these sizes."""
    torch._foreach_lerp_(target, source, tau)


@contextmanager
def frozen(params: list[torch.Tensor]):
    """Parameters excluded from autograd inside the block (the critic during the actor loss:
    gradients flow through Q to the action, and no weight gradients are computed)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def scalars(**values: torch.Tensor) -> dict[str, float]:
    """0-d tensors -> floats for logging, read out in one go."""
    return dict(zip(values, torch.stack([v.detach().float() for v in values.values()]).tolist()))


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


# Field names of robot_rl.data's transitions / replay buffers (robot_rl/data/transitions.py).
REPLAY_OBS, REPLAY_NEXT_OBS, REPLAY_NEXT_OBS_N = "obs/", "next_obs/", "next_obs_n/"
REPLAY_N_STEP_RETURN, REPLAY_DISCOUNT_N, REPLAY_MC_RETURN = "n_step_return", "discount_n", "mc_return"


def replay_spec(policy, n_step: int = 1) -> dict[str, tuple[tuple[int, ...], str]]:
    """The replay fields (robot_rl.data layout) for a state-based policy's observation keys."""
    spec: dict[str, tuple[tuple[int, ...], str]] = {
        keys.ACTION: ((policy.act_dim,), "float32"),
        keys.REWARD: ((), "float32"),
        keys.TERMINAL: ((), "bool"),
        keys.INTERVENTION: ((), "bool"),
        REPLAY_N_STEP_RETURN: ((), "float32"),
        REPLAY_DISCOUNT_N: ((), "float32"),
        REPLAY_MC_RETURN: ((), "float32"),
    }
    for key, dim in zip(policy.obs_keys, policy.obs_dims):
        spec[REPLAY_OBS + key] = ((dim,), "float32")
        spec[REPLAY_NEXT_OBS + key] = ((dim,), "float32")
        if n_step > 1:
            spec[REPLAY_NEXT_OBS_N + key] = ((dim,), "float32")
    return spec


def from_replay(batch, policy) -> dict[str, torch.Tensor]:
    """A replay batch (numpy, robot_rl.data field names, raw units) -> this package's batch contract."""
    import numpy as np

    n_step = any(k.startswith(REPLAY_NEXT_OBS_N) for k in batch)
    next_prefix = REPLAY_NEXT_OBS_N if n_step else REPLAY_NEXT_OBS
    with torch.no_grad():
        raw = {k: batch[REPLAY_OBS + k] for k in policy.obs_keys}
        obs = policy.encode(raw)
        next_obs = policy.encode({k: batch[next_prefix + k] for k in policy.obs_keys})
        action = policy.from_env_action(torch.as_tensor(np.asarray(batch[keys.ACTION], np.float32)), raw)
    return {
        OBS: obs,
        NEXT_OBS: next_obs,
        ACTION: action,
        REWARD: torch.as_tensor(np.asarray(batch[REPLAY_N_STEP_RETURN], np.float32)),
        DISCOUNT: torch.as_tensor(np.asarray(batch[REPLAY_DISCOUNT_N], np.float32)),
        TERMINAL: torch.as_tensor(np.asarray(batch[keys.TERMINAL], np.float32)),
        MC_RETURN: torch.as_tensor(np.asarray(batch[REPLAY_MC_RETURN], np.float32)),
    }
