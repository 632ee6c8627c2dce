"""SAC with the RLPD recipe (Ball et al. 2023, "Efficient Online RL with Offline Data").

Soft actor-critic, plus the three things RLPD adds to use offline data online:

  1. symmetric sampling: every batch is half offline data, half online replay
     (`robot_rl.data` MixedSampler; this file only sees the mixed batch);
  2. LayerNorm in the critics, which keeps Q bounded on out-of-distribution actions;
  3. a large critic ensemble (10) whose TD target is the min over a random pair of target
     members, drawn afresh every update, which lets the update-to-data ratio go high (UTD 20).

One `update(batch)` is one critic step, then (if `update_actor`) one actor and temperature
step. The online loop calls `update_critic` UTD-1 times and `update` once per env step
(`actor_every` = k > 0 instead: `update` on every k-th gradient step, k = 1 as SB3 does):

    env step t:  [critic]x(UTD-1)  [critic + actor + alpha]   -> next env step
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robot_rl.algorithms.common import (
    ACTION,
    NEXT_OBS,
    OBS,
    REWARD,
    TERMINAL,
    discount_of,
    frozen,
    load_module,
    load_optimizer,
    module_tensors,
    optimizer_tensors,
    require,
    scalars,
    soft_update,
)
from robot_rl.models.actor import ActorPolicy
from robot_rl.models.critics import QEnsemble


@dataclass(frozen=True)
class SACConfig:
    hidden: tuple[int, ...] = (256, 256)
    critic_members: int = 10
    target_members: int = 2  # size of the random subset whose min is the TD target
    layer_norm: bool = True
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    init_temperature: float = 1.0
    target_entropy: float | None = None  # None: -act_dim / 2 (RLPD's choice)
    backup_entropy: bool = True
    utd: int = 20  # critic updates per env step, used by the online loop
    actor_every: int = 0  # critic updates per actor + temperature update; 0: utd (once per env step)
    batch_size: int = 256

    def __post_init__(self):
        if not 1 <= self.target_members <= self.critic_members:
            raise ValueError(f"target_members must be in [1, critic_members], got {self.target_members}")
        if not 0.0 < self.tau <= 1.0 or not 0.0 <= self.gamma <= 1.0:
            raise ValueError("tau must be in (0, 1] and gamma in [0, 1]")
        if self.utd < 1 or self.batch_size < 1:
            raise ValueError("utd and batch_size must be >= 1")
        if self.actor_every < 0:
            raise ValueError(f"actor_every must be >= 0 (0: once per env step), got {self.actor_every}")


class SAC:
    """Owns the actor (inside `policy`), the Q ensemble, its target and three optimizers."""

    def __init__(self, policy: ActorPolicy, config: SACConfig = SACConfig()):
        self.config = config
        self.policy = policy
        self.actor = policy.actor
        obs_dim, act_dim = policy.obs_dim, policy.act_dim
        self.critic = QEnsemble(obs_dim, act_dim, config.hidden, config.critic_members, config.layer_norm)
        self.critic_target = QEnsemble(
            obs_dim, act_dim, config.hidden, config.critic_members, config.layer_norm
        )
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.critic_params = list(self.critic.parameters())
        self.target_params = list(self.critic_target.parameters())
        self.log_alpha = torch.tensor(
            float(torch.log(torch.tensor(config.init_temperature))), requires_grad=True
        )
        self.target_entropy = config.target_entropy if config.target_entropy is not None else -act_dim / 2.0
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.temperature_lr, fused=True)
        self.steps = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    # -- losses ---------------------------------------------------------------------------------
    def td_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """r + g^n (1 - done) [min over a random target pair Q'(s', a') - alpha log pi(a'|s')]."""
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch[NEXT_OBS])
            pair = None  # every member: the min over all of them needs no draw
            if self.config.target_members < self.config.critic_members:
                pair = torch.randperm(self.config.critic_members)[: self.config.target_members]
            # Only the drawn members are evaluated: with 10 critics, a fifth of the target's cost.
            next_q = self.critic_target(batch[NEXT_OBS], next_action, pair).min(dim=0).values
            if self.config.backup_entropy:
                next_q = next_q - self.alpha * next_log_prob
            discount = discount_of(batch, self.config.gamma)
            return batch[REWARD] + discount * (1.0 - batch[TERMINAL]) * next_q

    def update_critic(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        require(batch, OBS, ACTION, REWARD, NEXT_OBS, TERMINAL)
        target = self.td_target(batch)
        q = self.critic(batch[OBS], batch[ACTION])  # (N, B)
        loss = (q - target).pow(2).mean(dim=1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        soft_update(self.target_params, self.critic_params, self.config.tau)
        return scalars(critic_loss=loss.detach() / self.config.critic_members, q_mean=q.detach().mean())

    def update_actor(self, obs: torch.Tensor) -> dict[str, float]:
        action, log_prob = self.actor.sample(obs)
        with frozen(self.critic_params):
            q = self.critic(obs, action).mean(dim=0)
        alpha = self.alpha
        actor_loss = (alpha * log_prob - q).mean()
        alpha_loss = (self.log_alpha.exp() * (-log_prob.detach() - self.target_entropy)).mean()
        # Disjoint parameters (alpha is detached in the actor loss, log pi in the alpha loss):
        # one backward gives both gradients exactly as two would.
        self.actor_opt.zero_grad(set_to_none=True)
        self.alpha_opt.zero_grad(set_to_none=True)
        (actor_loss + alpha_loss).backward()
        self.actor_opt.step()
        self.alpha_opt.step()
        return scalars(actor_loss=actor_loss.detach(), alpha=self.alpha, entropy=-log_prob.detach().mean())

    def update(self, batch: dict[str, torch.Tensor], update_actor: bool = True) -> dict[str, float]:
        """One gradient step on the critics, then one on actor and temperature."""
        info = self.update_critic(batch)
        if update_actor:
            info.update(self.update_actor(batch[OBS]))
        self.steps += 1
        return info

    # -- checkpoint -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            **module_tensors("policy", self.policy),
            **module_tensors("critic", self.critic),
            **module_tensors("critic_target", self.critic_target),
            "log_alpha": self.log_alpha.detach().clone(),
            "steps": torch.tensor(self.steps),
            **optimizer_tensors("actor_opt", self.actor_opt),
            **optimizer_tensors("critic_opt", self.critic_opt),
            **optimizer_tensors("alpha_opt", self.alpha_opt),
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        load_module("policy", self.policy, tensors)
        load_module("critic", self.critic, tensors)
        load_module("critic_target", self.critic_target, tensors)
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"])
        self.steps = int(tensors["steps"])
        load_optimizer("actor_opt", self.actor_opt, tensors)
        load_optimizer("critic_opt", self.critic_opt, tensors)
        load_optimizer("alpha_opt", self.alpha_opt, tensors)
