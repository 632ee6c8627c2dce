"""The policy an online learner serves while a robot explores for it (robot-rl learn).

Two things separate it from the deployed policy: its actions are sampled, not the mode, and
it never strays further than `max_deviation` from the base policy's action, per joint and
per step, whatever the learner's weights say. The controller's safety filter still applies
on top; this bound keeps exploration near behaviour that is known to be sane.

    DSRL   obs window --noise actor, sampled--> w --frozen diffusion(obs, w)-------> chunk
                                                   frozen diffusion(obs, w = 0) ---> base
           latent = w, the learner's action (the reply carries it back to the robot)
    actor  obs --actor, sampled--> a ;  base = the actor's mean (RLPD / SAC: the bound limits
           the exploration noise);  no latent, the robot reports the action it executed

    served = base + clip(chunk - base, -max_deviation, +max_deviation)      (0: no bound)

Only the learner's network is in `state_dict()` (the noise actor, or the actor), so a hot
update from the learner (robot_rl.serving: op "update") carries those weights alone; the frozen
diffusion policy is loaded once with the explorer and never changes.

On disk: <dir>/explorer.yaml (kind, max_deviation) beside <dir>/diffusion + <dir>/noise_actor
(DSRL) or <dir>/actor; robot_rl.policies.load_policy recognises it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import nn

from robot_rl.models.actor import ActorPolicy

CONFIG = "explorer.yaml"
KINDS = ("dsrl", "actor")


class Explorer(nn.Module):
    def __init__(self, learner: ActorPolicy, diffusion=None, max_deviation: float = 0.0):
        super().__init__()
        if max_deviation < 0:
            raise ValueError(f"max_deviation must be >= 0 (0: no bound), got {max_deviation}")
        self.learner = learner  # the only module registered: state_dict() is what the learner trains
        self.max_deviation = float(max_deviation)
        self.kind = "dsrl" if diffusion is not None else "actor"
        self._frozen = []  # the diffusion policy, kept out of state_dict and parameters()
        if diffusion is not None:
            from robot_rl.algorithms.dsrl import freeze

            n = diffusion.pred_horizon * diffusion.action_dim
            if learner.act_dim != n:
                raise ValueError(f"noise actor outputs {learner.act_dim} values, diffusion needs Tp*A = {n}")
            self._frozen.append(freeze(diffusion))

    @property
    def diffusion(self):
        return self._frozen[0] if self._frozen else None

    # -- the policy interface the server needs -------------------------------------------------------
    @property
    def obs_spec(self):
        return (self.diffusion or self.learner).obs_spec

    @property
    def obs_horizon(self) -> int:
        return (self.diffusion or self.learner).obs_horizon

    @property
    def action_horizon(self) -> int:
        return (self.diffusion or self.learner).action_horizon

    @property
    def action_dim(self) -> int:
        return (self.diffusion or self.learner).action_dim

    @property
    def latent_dim(self) -> int:
        return self.learner.act_dim if self.diffusion is not None else 0

    def to(self, *args, **kwargs):
        if self.diffusion is not None:
            self.diffusion.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def reset(self) -> None:
        if self.diffusion is not None:
            self.diffusion.reset()

    @torch.no_grad()
    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.predict_action_and_latent(obs)[0]

    @torch.no_grad()
    def predict_action_and_latent(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """obs[key] (B, To, ...) raw -> (bounded exploring chunk (B, Ta, A), learner action (B, D))."""
        learner = self.learner
        current = {k: obs[k][:, -1] for k in learner.obs_keys}
        unit = learner.actor.sample(learner.encode(current))[0]
        latent = learner.to_env_action(unit, current)
        bound = self.max_deviation > 0
        if self.diffusion is None:
            chunk = latent.unsqueeze(1)
            if bound:
                mode = learner.actor.mode(learner.encode(current))
                base = learner.to_env_action(mode, current).unsqueeze(1)
        else:
            d = self.diffusion
            b = latent.shape[0]
            noise = latent.view(b, d.pred_horizon, d.action_dim)
            if bound:  # the exploring and the base chunk in one batch
                both = d.predict_action(
                    {k: torch.cat([v, v]) for k, v in obs.items()},
                    noise=torch.cat([noise, torch.zeros_like(noise)]),
                )
                chunk, base = both[:b], both[b:]
            else:
                chunk = d.predict_action(obs, noise=noise)
        if bound:
            chunk = base + (chunk - base).clamp(-self.max_deviation, self.max_deviation)
        return chunk, latent

    # -- files ------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.diffusion is not None:
            self.diffusion.save(path / "diffusion")
            self.learner.save(path / "noise_actor")
        else:
            self.learner.save(path / "actor")
        config = {"kind": self.kind, "max_deviation": self.max_deviation}
        (path / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Explorer:
        from robot_rl.policies import load_policy

        path = Path(path)
        config = yaml.safe_load((path / CONFIG).read_text())
        if not isinstance(config, dict) or config.get("kind") not in KINDS:
            raise ValueError(f"{path / CONFIG}: kind must be one of {list(KINDS)}, got {config!r}")
        try:
            max_deviation = float(config.get("max_deviation", 0.0))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path / CONFIG}: max_deviation must be a number") from exc
        if config["kind"] == "dsrl":
            diffusion = load_policy(path / "diffusion")
            return cls(ActorPolicy.load(path / "noise_actor"), diffusion, max_deviation)
        return cls(ActorPolicy.load(path / "actor"), None, max_deviation)
