"""Implicit Q-Learning (Kostrikov et al. 2021): offline RL without querying unseen actions.

Three regressions, each on dataset transitions only:

  V(s)    <- expectile_tau of Q'(s, a) over dataset actions   (tau = 0.7: an upper expectile)
  Q(s, a) <- r + g^n (1 - done) V(s')                          (no max over actions: no OOD query)
  pi      <- advantage-weighted regression: max E[exp(beta (Q'(s,a) - V(s))) log pi(a|s)]

Q' is the Polyak-averaged target ensemble (min over its 2 members). Offline-to-online is the
same update on a batch that mixes offline and online transitions.
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
    load_module,
    load_optimizer,
    module_tensors,
    optimizer_tensors,
    require,
    scalars,
    soft_update,
)
from robot_rl.models.actor import ActorPolicy
from robot_rl.models.critics import QEnsemble, ValueNet


@dataclass(frozen=True)
class IQLConfig:
    hidden: tuple[int, ...] = (256, 256)
    critic_members: int = 2
    layer_norm: bool = False
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    beta: float = 3.0  # inverse temperature of the advantage weights
    max_weight: float = 100.0
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    batch_size: int = 256

    def __post_init__(self):
        if not 0.5 <= self.expectile < 1.0:
            raise ValueError(f"expectile must be in [0.5, 1), got {self.expectile}")
        if self.beta <= 0 or self.max_weight <= 0:
            raise ValueError("beta and max_weight must be > 0")


class IQL:
    def __init__(self, policy: ActorPolicy, config: IQLConfig = IQLConfig()):
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
        self.value = ValueNet(obs_dim, config.hidden, config.layer_norm)
        # Actor, critics and value have disjoint parameters and losses whose cross terms are
        # detached, so one backward and one fused Adam step over three parameter groups is the
        # same as three separate steps, at a third of the optimizer overhead.
        self.opt = torch.optim.Adam(
            [
                {"params": list(self.actor.parameters()), "lr": config.actor_lr},
                {"params": list(self.critic.parameters()), "lr": config.critic_lr},
                {"params": list(self.value.parameters()), "lr": config.value_lr},
            ],
            fused=True,
        )
        self.steps = 0

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        require(batch, OBS, ACTION, REWARD, NEXT_OBS, TERMINAL)
        obs, action = batch[OBS], batch[ACTION]
        with torch.no_grad():
            target_q = self.critic_target(obs, action).min(dim=0).values

        # 1. Value: asymmetric L2 towards the target Q of dataset actions.
        v = self.value(obs)
        diff = target_q - v
        weight = torch.where(diff > 0, self.config.expectile, 1.0 - self.config.expectile)
        value_loss = (weight * diff.pow(2)).mean()

        # 2. Q: one-step backup through V(s') (V as before this step, held fixed).
        with torch.no_grad():
            next_v = self.value(batch[NEXT_OBS])
            target = batch[REWARD] + discount_of(batch, self.config.gamma) * (1.0 - batch[TERMINAL]) * next_v
        q = self.critic(obs, action)
        critic_loss = (q - target).pow(2).mean(dim=1).sum()

        # 3. Actor: advantage-weighted log-likelihood of dataset actions.
        advantage = (target_q - v).detach()
        weights = torch.exp(self.config.beta * advantage).clamp(max=self.config.max_weight)
        actor_loss = -(weights * self.actor.log_prob(obs, action)).mean()

        self.opt.zero_grad(set_to_none=True)
        (value_loss + critic_loss + actor_loss).backward()
        self.opt.step()

        soft_update(self.target_params, self.critic_params, self.config.tau)
        self.steps += 1
        return scalars(
            value_loss=value_loss.detach(),
            critic_loss=critic_loss.detach() / self.config.critic_members,
            actor_loss=actor_loss.detach(),
            advantage_mean=advantage.mean(),
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            **module_tensors("policy", self.policy),
            **module_tensors("critic", self.critic),
            **module_tensors("critic_target", self.critic_target),
            **module_tensors("value", self.value),
            "steps": torch.tensor(self.steps),
            **optimizer_tensors("opt", self.opt),
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in ("policy", "critic", "critic_target", "value"):
            load_module(name, getattr(self, name), tensors)
        self.steps = int(tensors["steps"])
        load_optimizer("opt", self.opt, tensors)
