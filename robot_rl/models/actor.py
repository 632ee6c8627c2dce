r"""The RL actor and the deployable policy built around it.

`TanhGaussianActor` is the pure network: normalised flat observation -> a Gaussian whose
samples are squashed by tanh into [-1, 1]^act_dim (SAC, RLPD, Cal-QL, WSRL, DSRL; IQL's
advantage-weighted regression uses its `log_prob` of dataset actions).

`ActorPolicy` is what actors, the inference server and evaluation load: the observation keys
it reads (robot_rl.keys names), the observation normaliser, the actor and the action bounds.
It is saved as a checkpoint directory (model.safetensors + config.yaml, kind "actor_policy"),
like every policy; loading needs no training code and no pickle.

    obs dict --flatten(obs_keys)--> x --(x - mean) / std--> actor --tanh--> a in [-1, 1]
                                                                     \--> low + (a + 1) / 2 * (high - low)

With `relative_to` (an observation key, e.g. joint_pos) the bounded action is a change from
that observation: the env action is obs[relative_to] + it in the first dims (the arm), and it
as is after them (the gripper). Exploration then moves the arm a little from where it is,
instead of jumping to targets anywhere in the workspace. Replay buffers keep the env actions
the robot executed; `from_env_action` takes the observation to turn them back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robot_rl import keys
from robot_rl.models.mlp import mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_LOG_STD_CENTRE, _LOG_STD_HALF_RANGE = 0.5 * (LOG_STD_MAX + LOG_STD_MIN), 0.5 * (LOG_STD_MAX - LOG_STD_MIN)
_ATANH_CLIP = 1.0 - 1e-6
KIND = "actor_policy"


class TanhGaussianActor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.obs_dim, self.act_dim, self.hidden = obs_dim, act_dim, tuple(hidden)
        self.net = mlp(obs_dim, hidden, 2 * act_dim)

    def stats(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pre-tanh Gaussian: mean and log-std, (..., act_dim) each."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        # Soft clamp keeps gradients alive at the bounds:
        # LOG_STD_MIN + (MAX - MIN) (tanh(x) + 1) / 2 = centre + half_range tanh(x).
        log_std = torch.tanh(log_std) * _LOG_STD_HALF_RANGE + _LOG_STD_CENTRE
        return mean, log_std

    def sample(self, obs: torch.Tensor, samples: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample and its log-probability: (B, act_dim), (B,).

        `samples=n` draws n actions per state from ONE forward pass: (n, B, act_dim), (n, B)
        (Cal-QL's penalty needs 10 per state; the network need not run 10 times)."""
        return sample_tanh_gaussian(*self.stats(obs), samples)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Log-probability of given actions in [-1, 1] (clipped just inside the bounds)."""
        mean, log_std = self.stats(obs)
        u = torch.atanh(action.clamp(-_ATANH_CLIP, _ATANH_CLIP))
        return _normal_log_prob(u, mean, log_std) - _tanh_log_det(u)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.stats(obs)[0])


def sample_tanh_gaussian(
    mean: torch.Tensor, log_std: torch.Tensor, samples: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """a = tanh(mean + std * eps) and log pi(a), for eps ~ N(0, I); (B, A), (B,) or with
    `samples=n` (n, B, A), (n, B).

    The Gaussian term uses eps directly ((u - mean) / std is eps by construction), which is the
    same density with fewer operations than recomputing z from u:
        log pi(a) = sum_i [ -eps_i^2 / 2 - log_std_i - log(2 pi) / 2 - log(1 - tanh(u_i)^2) ]
    """
    shape = mean.shape if samples is None else (samples, *mean.shape)
    eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)
    u = torch.addcmul(mean, log_std.exp(), eps)
    action = torch.tanh(u)
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), written stably.
    per_dim = 2.0 * (u + nn.functional.softplus(-2.0 * u)) - log_std - 0.5 * eps.square()
    log_prob = per_dim.sum(-1) - mean.shape[-1] * (0.5 * math.log(2 * math.pi) + 2.0 * math.log(2.0))
    return action, log_prob


def _normal_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    z = (u - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    # log(1 - tanh(u)^2), written stably.
    return (2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))).sum(-1)


class ActorPolicy(nn.Module):
    """Observation keys + normaliser + TanhGaussianActor + action bounds, with the policy interface
    of robot_rl.policies (obs_spec, To = Ta = 1, predict_action on (B, 1, dim) tensors, save)."""

    obs_horizon = 1
    action_horizon = 1
    pred_horizon = 1

    def __init__(
        self,
        obs_keys: Sequence[str],
        obs_dims: Sequence[int],
        act_low: np.ndarray | Sequence[float],
        act_high: np.ndarray | Sequence[float],
        hidden: tuple[int, ...] = (256, 256),
        obs_mean: np.ndarray | None = None,
        obs_std: np.ndarray | None = None,
        relative_to: str | None = None,
    ):
        super().__init__()
        if len(obs_keys) != len(obs_dims) or not obs_keys:
            raise ValueError(f"obs_keys {list(obs_keys)} and obs_dims {list(obs_dims)} must match, non-empty")
        for key in obs_keys:
            if keys.is_image_key(key):
                raise ValueError(f"ActorPolicy is state-based; image key {key!r} is not supported")
        self.obs_keys, self.obs_dims = list(obs_keys), [int(d) for d in obs_dims]
        obs_dim = sum(self.obs_dims)
        low = torch.as_tensor(np.asarray(act_low, dtype=np.float32))
        high = torch.as_tensor(np.asarray(act_high, dtype=np.float32))
        if low.shape != high.shape or low.dim() != 1 or bool((high <= low).any()):
            raise ValueError("act_low/act_high must be 1-D of equal length with high > low everywhere")
        self.actor = TanhGaussianActor(obs_dim, low.numel(), hidden)
        mean = np.zeros(obs_dim, np.float32) if obs_mean is None else np.asarray(obs_mean, np.float32)
        std = np.ones(obs_dim, np.float32) if obs_std is None else np.asarray(obs_std, np.float32)
        if mean.shape != (obs_dim,) or std.shape != (obs_dim,):
            raise ValueError(f"obs_mean/obs_std must have shape ({obs_dim},)")
        self.register_buffer("obs_mean", torch.as_tensor(mean))
        self.register_buffer("obs_std", torch.as_tensor(np.maximum(std, 1e-6)))
        self.register_buffer("act_low", low)
        self.register_buffer("act_high", high)
        self.relative_to = relative_to
        if relative_to is not None:
            if relative_to not in self.obs_keys:
                raise ValueError(
                    f"relative_to {relative_to!r} is not one of the observation keys {self.obs_keys}"
                )
            dims = self.obs_dims[self.obs_keys.index(relative_to)]
            if dims > low.numel():
                raise ValueError(
                    f"relative_to {relative_to!r} has {dims} dims, more than the action's {low.numel()}"
                )

    @property
    def obs_dim(self) -> int:
        return sum(self.obs_dims)

    @property
    def act_dim(self) -> int:
        return self.act_low.numel()

    @property
    def action_dim(self) -> int:
        return self.act_dim

    @property
    def obs_spec(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {k: ((d,), "float32") for k, d in zip(self.obs_keys, self.obs_dims)}

    @property
    def device(self) -> torch.device:
        return self.obs_mean.device

    def reset(self) -> None:
        """Stateless between steps; present for the policy interface."""

    # -- conversions between the robot's units and the algorithm's --------------------------
    def flatten_obs(self, obs: Mapping[str, np.ndarray | torch.Tensor]) -> torch.Tensor:
        """Concatenate obs_keys in order: (..., obs_dim) float32 tensor (raw units)."""
        parts = []
        for key, dim in zip(self.obs_keys, self.obs_dims):
            if key not in obs:
                raise KeyError(f"observation lacks key {key!r} (have: {sorted(obs)})")
            value = torch.as_tensor(obs[key], dtype=torch.float32, device=self.device)
            if value.shape[-1:] != (dim,):
                raise ValueError(f"observation {key!r} has shape {tuple(value.shape)}, expected (..., {dim})")
            parts.append(value)
        return torch.cat(parts, dim=-1)

    def normalize_obs(self, flat: torch.Tensor) -> torch.Tensor:
        return (flat - self.obs_mean) / self.obs_std

    def encode(self, obs: Mapping[str, np.ndarray | torch.Tensor]) -> torch.Tensor:
        """Observation dict -> the actor's normalised input."""
        return self.normalize_obs(self.flatten_obs(obs))

    def action_base(self, obs: Mapping[str, np.ndarray | torch.Tensor] | None) -> torch.Tensor | None:
        """What actions are relative to: obs[relative_to] in the first dims, 0 after (None when
        the actions are absolute)."""
        if self.relative_to is None:
            return None
        if obs is None or self.relative_to not in obs:
            raise KeyError(f"actions relative to {self.relative_to!r} need that observation")
        base = torch.as_tensor(obs[self.relative_to], dtype=torch.float32, device=self.device)
        return nn.functional.pad(base, (0, self.act_dim - base.shape[-1]))

    def to_env_action(
        self, unit: torch.Tensor, obs: Mapping[str, np.ndarray | torch.Tensor] | None = None
    ) -> torch.Tensor:
        """[-1, 1] -> [low, high] (+ obs[relative_to] when relative; `obs` in raw units)."""
        action = self.act_low + (unit.clamp(-1, 1) + 1.0) * 0.5 * (self.act_high - self.act_low)
        base = self.action_base(obs)
        return action if base is None else action + base

    def from_env_action(
        self, action: torch.Tensor, obs: Mapping[str, np.ndarray | torch.Tensor] | None = None
    ) -> torch.Tensor:
        """[low, high] (+ obs[relative_to] when relative) -> [-1, 1] (clipped)."""
        base = self.action_base(obs)
        if base is not None:
            action = action - base
        return ((action - self.act_low) / (self.act_high - self.act_low) * 2.0 - 1.0).clamp(-1, 1)

    @torch.no_grad()
    def predict_action(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """obs[key] (B, 1, dim) raw -> (B, 1, A) raw actions (the mode of the actor)."""
        return self.to_env_action(self.actor.mode(self.encode(obs)), obs)

    # -- files -------------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "obs_keys": self.obs_keys,
            "obs_dims": self.obs_dims,
            "act_dim": self.act_dim,
            "hidden": list(self.actor.hidden),
            "relative_to": self.relative_to,
        }

    def save(self, path: str | Path) -> Path:
        """A checkpoint directory (model.safetensors + config.yaml), like every policy."""
        from robot_rl.training.checkpoint import save_checkpoint

        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        return save_checkpoint(path, tensors, {"policy": self.config()}, kind=KIND)

    @classmethod
    def load(cls, path: str | Path) -> ActorPolicy:
        from robot_rl.training.checkpoint import load_checkpoint

        tensors, meta = load_checkpoint(path, kind=KIND)
        return cls.from_checkpoint(tensors, meta, source=str(Path(path) / "config.yaml"))

    @classmethod
    def from_checkpoint(cls, tensors: dict[str, torch.Tensor], meta: dict, source: str) -> ActorPolicy:
        config = meta.get("policy")
        need = ("obs_keys", "obs_dims", "act_dim", "hidden")
        if not isinstance(config, dict) or any(k not in config for k in need):
            raise ValueError(f"{source}: policy config must have keys {list(need)}")
        act_dim = int(config["act_dim"])
        policy = cls(
            config["obs_keys"],
            config["obs_dims"],
            -np.ones(act_dim),
            np.ones(act_dim),
            tuple(config["hidden"]),
            relative_to=config.get("relative_to"),  # absent in checkpoints from before it existed
        )
        try:
            policy.load_state_dict(tensors)
        except RuntimeError as exc:
            raise ValueError(f"{source}: weights do not fit the config ({exc})") from exc
        policy.eval()
        return policy
