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

from robot_rl.models.actor import KIND as ACTOR_KIND
from robot_rl.models.actor import ActorPolicy
from robot_rl.models.reward_classifier import KIND as CLASSIFIER_KIND
from robot_rl.models.reward_classifier import RewardClassifier
from robot_rl.policies.diffusion import KIND as DIFFUSION_KIND
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig, SamplerConfig

__all__ = [
    "ActorPolicy",
    "DiffusionPolicy",
    "DiffusionPolicyConfig",
    "SamplerConfig",
    "int8_copy",
    "load_policy",
]

# Checkpoint kind (config.yaml) -> how to build the policy from its tensors and metadata.
_LOADERS = {
    DIFFUSION_KIND: DiffusionPolicy.from_checkpoint,
    ACTOR_KIND: ActorPolicy.from_checkpoint,  # SAC / RLPD / IQL / Cal-QL / WSRL actors
    CLASSIFIER_KIND: RewardClassifier.from_checkpoint,  # served beside a policy: P(success) per frame
}


def load_policy(path: str | Path, device: str | None = None):
    """Load any policy checkpoint directory: a diffusion policy (or its distilled student), an
    RL actor, a DSRL bundle (`diffusion/` + `noise_actor/`) or an online learner's explorer
    (robot_rl/policies/explorer.py), or a reward classifier (served beside a policy: one frame in,
    P(success) out). Refuses truncated or modified files (CheckpointError) and
    checkpoints that are not policies (ValueError)."""
    from robot_rl.training.checkpoint import load_checkpoint

    path = Path(path)
    if (path / "explorer.yaml").is_file():  # what an online learner serves (robot-rl learn)
        from robot_rl.policies.explorer import Explorer

        policy = Explorer.load(path)
    elif (path / "diffusion").is_dir() and (path / "noise_actor").is_dir():
        from robot_rl.algorithms.dsrl import DSRLPolicy

        policy = DSRLPolicy.load(path)
    else:
        tensors, meta = load_checkpoint(path)
        if meta["kind"] not in _LOADERS:
            raise ValueError(
                f"{path}: a {meta['kind']!r} checkpoint is not a policy (expected one of {sorted(_LOADERS)})"
            )
        policy = _LOADERS[meta["kind"]](tensors, meta, source=str(path / "config.yaml"))
    return policy.to(device) if device else policy


def int8_copy(policy, name: str = "policy"):
    """The int8 inference copy of a diffusion policy (DiffusionPolicy.quantized_int8); ValueError,
    naming `name`, for a policy that has none."""
    if not hasattr(policy, "quantized_int8"):
        raise ValueError(f"int8: {name} is a {type(policy).__name__}: no int8 form (not a diffusion policy)")
    return policy.quantized_int8()
