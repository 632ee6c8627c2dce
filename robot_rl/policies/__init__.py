"""Policies: normalizer + network + sampler, loadable from a checkpoint directory alone.

    policy = load_policy("runs/push/policy")          # model.safetensors + config.yaml
    policy.to("cuda")
    chunk = policy.predict_action(obs)                 # obs[key]: (B, To, *shape) raw
    # chunk: (B, Ta, A) raw action units, chunk[:, 0] applies at the newest observation's step

    policy.obs_spec        {key: (shape, dtype name)} per step
    policy.obs_horizon     To      policy.action_horizon  Ta
    policy.pred_horizon    Tp      policy.action_dim      A
    policy.reset()         start of an episode (clears warm-start memory)
    policy.save(path)

Loading reads only safetensors and YAML: no pickle, no training code, no training config.
The timing of To / Tp / Ta is drawn in robot_rl/policies/diffusion.py.
"""

from __future__ import annotations

from pathlib import Path

from robot_rl.policies.diffusion import KIND as DIFFUSION_KIND
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, SamplerConfig

__all__ = ["DiffusionPolicy", "DiffusionPolicyConfig", "SamplerConfig", "load_policy"]


def load_policy(path: str | Path, device: str | None = None) -> DiffusionPolicy:
    """Load a policy checkpoint directory; refuses truncated or modified files (CheckpointError)."""
    from robot_rl.training.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(path)
    if meta["kind"] != DIFFUSION_KIND:
        raise ValueError(
            f"{path}: a {meta['kind']!r} checkpoint is not a policy (expected {DIFFUSION_KIND!r})"
        )
    policy = DiffusionPolicy.from_checkpoint(tensors, meta, source=str(Path(path) / "config.yaml"))
    return policy.to(device) if device else policy
