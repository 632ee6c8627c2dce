"""WSRL (Zhou et al. 2024, "Efficient Online RL Fine-Tuning Need Not Retain Offline Data").

Offline pre-training (Cal-QL here) gives an actor and critics; fine-tuning then

  1. copies them into an online SAC learner (actor, critics, target critics, temperature),
  2. runs a short warm-up: `warmup_steps` env steps with the pre-trained policy and no updates,
     which seeds the online replay with on-policy data so that the first updates do not see a
     sudden distribution shift (the "downward spiral" of naive fine-tuning),
  3. continues as plain online SAC with a high update-to-data ratio, the offline data dropped.

    env steps:  0 ......... warmup_steps ............................. env_steps
                | pre-trained policy, |  SAC updates (UTD), online replay only |
                | no updates          |                                        |

The online loop (robot_rl.training.online) runs the phases; this file builds the learner.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from robot_rl.algorithms.common import load_module
from robot_rl.algorithms.sac import SAC, SACConfig
from robot_rl.models.actor import ActorPolicy


@dataclass(frozen=True)
class WSRLConfig:
    sac: SACConfig = field(
        default_factory=lambda: SACConfig(critic_members=2, target_members=2, layer_norm=False)
    )
    warmup_steps: int = 5_000

    def __post_init__(self):
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


def warm_start(
    pretrained: dict[str, torch.Tensor], policy: ActorPolicy, config: WSRLConfig, source: str = "<pretrained>"
) -> SAC:
    """An online SAC learner whose actor, critics, targets (and temperature) are the pre-trained ones.

    `pretrained` is the state of an offline Cal-QL or IQL run (its `state_dict()`); the critics'
    shapes must match `config.sac` (members, widths, LayerNorm), which is checked here.
    """
    members = pretrained.get("critic.net.net.0.weight")
    if members is None:
        raise ValueError(f"{source}: no critic weights (a Cal-QL or IQL training state is needed)")
    sac_config = config.sac
    if members.shape[0] != sac_config.critic_members:
        sac_config = replace(
            sac_config, critic_members=members.shape[0], target_members=min(2, members.shape[0])
        )
    algo = SAC(policy, sac_config)
    try:
        load_module("policy", algo.policy, pretrained)
        load_module("critic", algo.critic, pretrained)
        load_module("critic_target", algo.critic_target, pretrained)
    except RuntimeError as exc:
        raise ValueError(f"{source}: pre-trained networks do not fit the WSRL learner ({exc})") from exc
    if "log_alpha" in pretrained:
        with torch.no_grad():
            algo.log_alpha.copy_(pretrained["log_alpha"])
    return algo
