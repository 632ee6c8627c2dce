"""Cal-QL (Nakamoto et al. 2023): conservative Q-learning calibrated for online fine-tuning.

SAC's TD loss plus the CQL regulariser, which pushes Q down on actions the policy would take
and up on dataset actions:

    R(Q) = alpha_cql * E_s[ logsumexp_{a ~ mu}(Q(s, a)) - E_{a ~ data} Q(s, a) ]

with mu a mix of uniform random actions and policy samples at s and s' (importance weighted).
Cal-QL's one change: policy-action values inside the logsumexp are floored by the Monte-Carlo
return-to-go of the data, Q(s, a_pi) <- max(Q(s, a_pi), MC(s)), so the learned Q is never
pushed below the value of the behaviour policy, which is what makes online fine-tuning not
"unlearn" first. The same object then continues online on mixed batches (MC of online
transitions is filled in by the replay once their episode ends).

All (3 n_actions + 1) x B critic evaluations of one step run as a single fused ensemble pass,
and the actor runs once per state set (s and s'), each forward giving all n_actions samples
(plus the TD target's action at s'); its forward at s is shared with the actor loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robot_rl.algorithms.common import (
    ACTION,
    MC_RETURN,
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
from robot_rl.models.actor import ActorPolicy, sample_tanh_gaussian
from robot_rl.models.critics import QEnsemble


@dataclass(frozen=True)
class CalQLConfig:
    hidden: tuple[int, ...] = (256, 256)
    critic_members: int = 2
    layer_norm: bool = False
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    init_temperature: float = 1.0
    target_entropy: float | None = None  # None: -act_dim
    backup_entropy: bool = False
    cql_alpha: float = 5.0
    cql_temperature: float = 1.0
    n_actions: int = 10
    calibrated: bool = True  # False gives plain CQL
    batch_size: int = 256

    def __post_init__(self):
        if self.n_actions < 1 or self.cql_alpha < 0 or self.cql_temperature <= 0:
            raise ValueError("n_actions >= 1, cql_alpha >= 0 and cql_temperature > 0 are required")


class CalQL:
    def __init__(self, policy: ActorPolicy, config: CalQLConfig = CalQLConfig()):
        self.config = config
        self.policy = policy
        self.actor = policy.actor
        obs_dim, act_dim = policy.obs_dim, policy.act_dim
        self.act_dim = act_dim
        self.critic = QEnsemble(obs_dim, act_dim, config.hidden, config.critic_members, config.layer_norm)
        self.critic_target = QEnsemble(
            obs_dim, act_dim, config.hidden, config.critic_members, config.layer_norm
        )
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.critic_params = list(self.critic.parameters())
        self.target_params = list(self.critic_target.parameters())
        self.log_alpha = torch.tensor(math.log(config.init_temperature), requires_grad=True)
        self.target_entropy = config.target_entropy if config.target_entropy is not None else -float(act_dim)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.temperature_lr, fused=True)
        self.steps = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def critic_losses(
        self, batch: dict[str, torch.Tensor], obs_stats: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """TD loss + calibrated CQL penalty, from one fused critic pass.

        `obs_stats`: the actor's (mean, log_std) at s when the caller already has them."""
        cfg = self.config
        obs, next_obs = batch[OBS], batch[NEXT_OBS]
        n, b = cfg.n_actions, obs.shape[0]
        with torch.no_grad():
            mean, log_std = self.actor.stats(obs) if obs_stats is None else obs_stats
            # n + 1 draws at s' from one actor pass: the first for the TD target, n for the penalty.
            next_actions, next_log_probs = sample_tanh_gaussian(*self.actor.stats(next_obs), n + 1)
            next_q = self.critic_target(next_obs, next_actions[0]).min(dim=0).values
            if cfg.backup_entropy:
                next_q = next_q - self.alpha * next_log_probs[0]
            target = batch[REWARD] + discount_of(batch, cfg.gamma) * (1.0 - batch[TERMINAL]) * next_q
            # n policy samples at s and at s', and n uniform actions, all evaluated at s.
            obs_actions, obs_log_probs = sample_tanh_gaussian(mean, log_std, n)
            pi_log_probs = torch.cat([obs_log_probs, next_log_probs[1:]])  # (2n, B)
            random_actions = torch.empty(n, b, self.act_dim).uniform_(-1.0, 1.0)
        actions = torch.cat([batch[ACTION].unsqueeze(0), obs_actions, next_actions[1:], random_actions])
        q_all = self.critic(obs.expand(actions.shape[0], b, obs.shape[1]), actions)  # (N, 1 + 3n, B)
        q_data = q_all[:, 0]
        q_pi = q_all[:, 1 : 1 + 2 * n]
        q_random = q_all[:, 1 + 2 * n :]
        if cfg.calibrated:
            q_pi = torch.maximum(q_pi, batch[MC_RETURN])  # the Monte-Carlo lower bound
        random_density = self.act_dim * math.log(0.5)
        cat = torch.cat([q_random - random_density, q_pi - pi_log_probs], dim=1)
        lse = torch.logsumexp(cat / cfg.cql_temperature, dim=1) * cfg.cql_temperature  # (N, B)
        cql_gap = (lse - q_data).mean(dim=1)  # (N,)
        td_loss = (q_data - target).pow(2).mean(dim=1)  # (N,)
        loss = (td_loss + cfg.cql_alpha * cql_gap).sum()
        return loss, {"td_loss": td_loss.mean(), "cql_gap": cql_gap.mean(), "q_data": q_data.mean()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        require(batch, OBS, ACTION, REWARD, NEXT_OBS, TERMINAL)
        if self.config.calibrated:
            require(batch, MC_RETURN)
        obs = batch[OBS]
        # The actor's forward at s, kept for the actor loss: the actor does not change before it.
        mean, log_std = self.actor.stats(obs)
        loss, parts = self.critic_losses(batch, (mean, log_std))
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()

        # Actor and temperature against the critic just updated.
        action, log_prob = sample_tanh_gaussian(mean, log_std)
        with frozen(self.critic_params):
            q = self.critic(obs, action).min(dim=0).values
        actor_loss = (self.alpha * log_prob - q).mean()
        alpha_loss = (self.log_alpha.exp() * (-log_prob.detach() - self.target_entropy)).mean()
        # Disjoint parameters (alpha detached in the actor loss, log pi in the alpha loss): one
        # backward gives both gradients exactly as two would.
        self.actor_opt.zero_grad(set_to_none=True)
        self.alpha_opt.zero_grad(set_to_none=True)
        (actor_loss + alpha_loss).backward()
        self.actor_opt.step()
        self.alpha_opt.step()

        soft_update(self.target_params, self.critic_params, self.config.tau)
        self.steps += 1
        return scalars(critic_loss=loss.detach(), actor_loss=actor_loss.detach(), alpha=self.alpha, **parts)

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
        for name in ("policy", "critic", "critic_target"):
            load_module(name, getattr(self, name), tensors)
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"])
        self.steps = int(tensors["steps"])
        for name in ("actor_opt", "critic_opt", "alpha_opt"):
            load_optimizer(name, getattr(self, name), tensors)
