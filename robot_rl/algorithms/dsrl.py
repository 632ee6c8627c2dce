"""DSRL (Wagenmaker et al. 2025, "Steering Your Diffusion Policy with Latent Space RL").

A frozen diffusion policy maps (observation window, initial noise w) to an action chunk. DSRL
never touches its weights: a small SAC actor chooses w instead of drawing it from N(0, I), and
the critic scores (s, w). The diffusion policy becomes part of the environment:

    s_t --SAC actor--> w in [-m, m]^(Tp*A) --frozen diffusion sampler(obs window, w)--> chunk
    chunk[0..Ta-1] executed in the env --> r = sum of the Ta rewards, s_t+Ta, done

One DSRL "step" is one chunk, Ta env steps; `NoiseActionEnv.step` reports the env steps it
took in info["env_steps"], so budgets are counted in real env steps. The learner is the SAC of
sac.py over the noise action space (offline data is not used: the prior is the diffusion
policy itself). `DSRLPolicy` bundles the frozen policy and the noise actor for deployment.

    obs window (To):  |o_t-1|o_t|
    noise w:          (Tp, A) from the actor at o_t (instead of randn)
    executed:               |a_t ... a_t+Ta-1|   then the next DSRL step at t+Ta
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robot_rl.algorithms.common import ENV_STEPS_INFO, SUCCESS_INFO
from robot_rl.models.actor import ActorPolicy


@dataclass(frozen=True)
class DSRLConfig:
    noise_max: float = 1.5  # |w| bound per component (the actor's tanh range is scaled to it)
    hidden: tuple[int, ...] = (256, 256)

    def __post_init__(self):
        if self.noise_max <= 0:
            raise ValueError(f"noise_max must be > 0, got {self.noise_max}")


def freeze(policy: nn.Module) -> nn.Module:
    """Eval mode and no gradients: nothing DSRL does can change these weights."""
    policy.eval()
    policy.requires_grad_(False)
    return policy


def noise_actor_policy(diffusion, config: DSRLConfig, obs_mean=None, obs_std=None) -> ActorPolicy:
    """The SAC actor's policy: the diffusion policy's state keys in, flat noise (Tp * A) out.

    Observations are normalized as the diffusion policy normalizes them (its per-key map into
    [-1, 1]) unless obs_mean / obs_std are given: in raw units a cube's few centimetres of travel
    are inputs of a few hundredths, which actor and critics barely see.
    """
    state_keys = diffusion.config.state_keys
    if not state_keys or diffusion.config.image_keys:
        raise ValueError("DSRL here is state-based: the diffusion policy must use state keys only")
    dims = [int(np.prod(diffusion.config.obs_spec[k].shape)) for k in state_keys]
    if obs_mean is None and obs_std is None:
        obs_mean, obs_std = diffusion_obs_stats(diffusion)
    n = diffusion.pred_horizon * diffusion.action_dim
    return ActorPolicy(
        state_keys, dims, [-config.noise_max] * n, [config.noise_max] * n, config.hidden, obs_mean, obs_std
    )


def diffusion_obs_stats(diffusion) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) over the diffusion policy's state keys, flattened, such that
    (x - mean) / std equals its normalizer's x * scale + offset."""
    maps = [diffusion.normalization(k) for k in diffusion.config.state_keys]
    scale = torch.cat([s for s, _ in maps]).cpu().numpy()
    offset = torch.cat([o for _, o in maps]).cpu().numpy()
    return -offset / scale, 1.0 / scale


class NoiseActionEnv(gym.Wrapper):
    """The env as DSRL sees it: actions are initial noises of a frozen diffusion policy."""

    def __init__(self, env: gym.Env, diffusion, noise_max: float = 1.5):
        super().__init__(env)
        self.diffusion = freeze(diffusion)
        self.shape = (diffusion.pred_horizon, diffusion.action_dim)
        n = int(np.prod(self.shape))
        self.action_space = gym.spaces.Box(-noise_max, noise_max, (n,), np.float32)
        self._history: deque = deque(maxlen=diffusion.obs_horizon)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._history.clear()
        self._history.extend([obs] * self.diffusion.obs_horizon)
        return obs, info

    def chunk(self, noise: np.ndarray) -> np.ndarray:
        """The (Ta, A) actions the frozen policy gives for this noise at the current window."""
        window = {
            k: torch.as_tensor(np.stack([o[k] for o in self._history]))[None] for k in self.diffusion.obs_spec
        }
        w = torch.as_tensor(np.asarray(noise, np.float32)).view(1, *self.shape)
        return self.diffusion.predict_action(window, noise=w)[0].numpy()

    def step(self, noise):
        total, steps, success = 0.0, 0, False
        obs, terminated, truncated, info = None, False, False, {}
        for action in self.chunk(noise):
            obs, reward, terminated, truncated, info = self.env.step(action)
            self._history.append(obs)
            total += float(reward)
            steps += 1
            success = success or bool(info.get(SUCCESS_INFO, False))
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, {**info, SUCCESS_INFO: success, ENV_STEPS_INFO: steps}


class DSRLPolicy(nn.Module):
    """Frozen diffusion policy + noise actor, with the diffusion policy's interface (To, Ta, obs_spec)."""

    def __init__(self, diffusion, noise_actor: ActorPolicy):
        super().__init__()
        self.diffusion = freeze(diffusion)
        self.noise_actor = noise_actor

    @property
    def obs_spec(self):
        return self.diffusion.obs_spec

    @property
    def obs_horizon(self) -> int:
        return self.diffusion.obs_horizon

    @property
    def action_horizon(self) -> int:
        return self.diffusion.action_horizon

    @property
    def device(self) -> torch.device:
        return self.diffusion.device

    def reset(self) -> None:
        self.diffusion.reset()

    @torch.no_grad()
    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """obs[key] (B, To, ...) raw -> (B, Ta, A): the frozen sampler started from the actor's noise."""
        current = {k: obs[k][:, -1] for k in self.noise_actor.obs_keys}
        w = self.noise_actor.to_env_action(self.noise_actor.actor.mode(self.noise_actor.encode(current)))
        noise = w.view(w.shape[0], self.diffusion.pred_horizon, self.diffusion.action_dim)
        return self.diffusion.predict_action(obs, noise=noise)

    def save(self, path: str | Path) -> Path:
        """path/diffusion and path/noise_actor: two policy checkpoint directories."""
        path = Path(path)
        self.diffusion.save(path / "diffusion")
        self.noise_actor.save(path / "noise_actor")
        return path

    @classmethod
    def load(cls, path: str | Path) -> DSRLPolicy:
        from robot_rl.policies import load_policy

        path = Path(path)
        return cls(load_policy(path / "diffusion"), ActorPolicy.load(path / "noise_actor"))
