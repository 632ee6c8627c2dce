"""`robot-rl train diffusion ...`: behaviour cloning of a diffusion policy from an episode store.

    robot-rl train diffusion --data demos.zarr --task push --out runs/push --steps 20000

Writes runs/push/{run.yaml, checkpoints/, policy/, tb/} (see robot_rl/training/trainer.py);
running the same command again after a kill resumes from the last checkpoint. With --task,
the policy is rolled out in sim every --eval-every steps and at the end.
"""

from __future__ import annotations

import argparse
import math

from robot_rl.cli_types import non_negative_int, positive_float, positive_int

DEFAULT_STATE_KEYS = ("joint_pos", "gripper_pos", "ee_pos", "object_pose", "goal_pos")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="learner", metavar="LEARNER", required=True)
    p = sub.add_parser("diffusion", help="diffusion policy (DDPM loss, EMA, DDIM sampling)")
    add_data_arguments(p)
    p.add_argument(
        "--obs-keys",
        default=",".join(DEFAULT_STATE_KEYS),
        help="comma-separated state keys (those in the store are used); KEY[a:b] reads only "
        "values a..b-1 of a key, e.g. object_pose[:3] for the object's position without its orientation",
    )
    p.add_argument(
        "--cameras", default="", help="comma-separated cameras for image observations, e.g. front,wrist"
    )
    p.add_argument("--obs-horizon", type=positive_int, default=2, help="To")
    p.add_argument("--pred-horizon", type=positive_int, default=16, help="Tp")
    p.add_argument("--action-horizon", type=positive_int, default=8, help="Ta")
    p.add_argument(
        "--relative-to",
        default="",
        metavar="KEY",
        help="predict actions relative to this state key at the current step (e.g. joint_pos); "
        "default: absolute targets",
    )
    p.add_argument(
        "--down-dims",
        default="64,128,256",
        help="U-Net channels per level (256,512,1024 is diffusion_policy's 63M)",
    )
    p.add_argument("--crop", type=positive_int, default=84, help="random-crop size for 96x96 images")
    p.add_argument("--diffusion-steps", type=positive_int, default=100, help="DDPM training timesteps")
    p.add_argument("--inference-steps", type=positive_int, default=10, help="DDIM steps of the saved policy")
    p.add_argument("--lr", type=positive_float, default=1e-4)
    p.add_argument("--warmup", type=non_negative_int, default=500)
    add_trainer_arguments(p)
    # The RL learners (iql, calql, rlpd, wsrl, dsrl) live in their own module.
    from robot_rl.training.rl_cli import add_parsers

    add_parsers(sub)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="episode store (zarr) with demonstrations")
    p.add_argument("--out", required=True, help="run directory (resumed when it holds a checkpoint)")
    p.add_argument(
        "--task", default="", help="sim task for rollout evaluation (push, lift, ...); empty: none"
    )
    p.add_argument(
        "--val-ratio", type=float, default=0.05, help="fraction of episodes held out for validation loss"
    )


def add_trainer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=positive_int, default=20_000)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    p.add_argument(
        "--threads", type=non_negative_int, default=0, help="torch CPU threads (0: torch's default)"
    )
    p.add_argument("--num-workers", type=non_negative_int, default=0, help="DataLoader worker processes")
    p.add_argument("--checkpoint-every", type=positive_int, default=1000)
    p.add_argument("--val-every", type=non_negative_int, default=1000)
    p.add_argument(
        "--eval-every",
        type=non_negative_int,
        default=0,
        help="rollout evaluation period in steps (0: only at the end)",
    )
    p.add_argument("--eval-episodes", type=positive_int, default=20)
    p.add_argument("--eval-workers", type=positive_int, default=1)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_rl", False):
        from robot_rl.training.rl_cli import run as run_rl

        return run_rl(args)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from robot_rl import keys
    from robot_rl.algorithms.diffusion_bc import DiffusionBC, DiffusionBCConfig
    from robot_rl.data.store import EpisodeStore
    from robot_rl.policies.diffusion import (
        DiffusionPolicy,
        DiffusionPolicyConfig,
        ObsFeature,
        SamplerConfig,
        UNetConfig,
        VisionConfig,
    )

    store = EpisodeStore.open(args.data, mode="r")
    selected = dict(_obs_key(entry) for entry in _split(args.obs_keys))
    wanted = [k for k in selected if k in store.spec]
    if not wanted:
        raise ValueError(
            f"{args.data}: none of --obs-keys {args.obs_keys!r} is in the store (keys: {', '.join(store.keys)})"
        )
    images = [keys.image_key(c) for c in _split(args.cameras)]
    for k in images:
        if k not in store.spec:
            raise ValueError(f"{args.data}: no camera key {k!r} (keys: {', '.join(store.keys)})")
    obs_keys = wanted + images
    obs_spec = {
        k: ObsFeature(
            tuple(int(s) for s in store.spec[k].shape),
            str(store.spec[k].dtype),
            _dims(k, selected.get(k), store.spec[k].shape),
        )
        for k in obs_keys
    }
    action_dim = int(store.spec[keys.ACTION].shape[0])
    policy_cfg = DiffusionPolicyConfig(
        obs_spec=obs_spec,
        action_dim=action_dim,
        obs_horizon=args.obs_horizon,
        pred_horizon=args.pred_horizon,
        action_horizon=args.action_horizon,
        num_train_timesteps=args.diffusion_steps,
        relative_action_key=args.relative_to,
        unet=UNetConfig(down_dims=tuple(int(d) for d in _split(args.down_dims))),
        vision=VisionConfig(crop_shape=(args.crop, args.crop)),
        sampler=SamplerConfig(kind="ddim", num_steps=args.inference_steps),
    )
    torch.manual_seed(args.seed)
    device = _device(args.device)
    policy = DiffusionPolicy(policy_cfg)
    _fit_normalizer(policy, store, wanted)
    policy.to(device)
    algo = DiffusionBC(
        policy, DiffusionBCConfig(lr=args.lr, warmup_steps=args.warmup, total_steps=args.steps)
    )
    run_config = {"learner": "diffusion", "data": str(args.data), "policy": _plain(policy_cfg), "lr": args.lr}
    return _train(args, algo, obs_keys, policy_cfg, run_config)


def _train(args, algo, obs_keys, policy_cfg, run_config) -> int:
    from robot_rl.data.sequence import SequenceConfig, SequenceDataset
    from robot_rl.training.trainer import Trainer, TrainerConfig

    seq = SequenceConfig(
        horizon=policy_cfg.pred_horizon,
        n_obs_steps=policy_cfg.obs_horizon,
        n_action_steps=policy_cfg.action_horizon,
        obs_keys=tuple(obs_keys),
        val_ratio=args.val_ratio,
    )
    train = SequenceDataset(args.data, seq, split="train")
    val = SequenceDataset(args.data, seq, split="val") if args.val_ratio > 0 else None
    val = val if val is not None and len(val) > 0 else None
    trainer_cfg = TrainerConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        num_workers=args.num_workers,
        val_every=args.val_every,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
    )
    evaluator = (
        make_evaluator(args.task, args.eval_episodes, args.eval_workers, policy_cfg) if args.task else None
    )
    trainer = Trainer(
        algo, train, args.out, trainer_cfg, val_data=val, evaluator=evaluator, run_config=run_config
    )
    metrics = trainer.fit()
    print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    print(f"policy: {args.out}/policy")
    return 0


def make_evaluator(task: str, episodes: int, workers: int, policy_cfg):
    from robot_rl import keys
    from robot_rl.training.evaluation import EvalConfig, evaluate

    cameras = tuple(k[len(keys.IMAGE_PREFIX) :] for k in policy_cfg.image_keys)
    cfg = EvalConfig(task=task, episodes=episodes, workers=workers, cameras=cameras)

    def evaluator(policy, step: int) -> dict[str, float]:
        summary = evaluate(policy, cfg, progress=False).summary()
        lo, hi = summary["success_low95"], summary["success_high95"]
        print(
            f"\n[step {step}] {task}: success {summary['success_rate']:.0%} [{lo:.0%}, {hi:.0%}] over {episodes} episodes"
        )
        return summary

    return evaluator


def _fit_normalizer(policy, store, state_keys) -> None:
    from robot_rl import keys
    from robot_rl.data.normalizer import Normalizer, load_or_compute_stats, relative_action_stats

    stats = load_or_compute_stats(store, [*state_keys, keys.ACTION])
    cfg = policy.config
    if cfg.relative_action_key:
        stats[keys.ACTION] = relative_action_stats(
            store, keys.ACTION, cfg.relative_action_key, cfg.obs_horizon, cfg.pred_horizon
        )
    norm = Normalizer.from_stats(stats, "minmax")
    policy.set_normalization(norm.scale, norm.offset)


def _device(name: str):
    from robot_rl.training.trainer import resolve_device

    return resolve_device(name)


def _plain(config):
    from robot_rl.config.loader import to_dict

    return to_dict(config)


def _obs_key(entry: str) -> tuple[str, slice | None]:
    """'object_pose[:3]' -> ('object_pose', slice(None, 3)); 'joint_pos' -> ('joint_pos', None)."""
    import re

    match = re.fullmatch(r"([A-Za-z_][\w]*)(?:\[(-?\d*):(-?\d*)\])?", entry)
    if match is None:
        raise ValueError(f"--obs-keys: {entry!r} is not KEY or KEY[a:b] (e.g. object_pose[:3])")
    key, start, stop = match.groups()
    if "[" not in entry:
        return key, None
    return key, slice(int(start) if start else None, int(stop) if stop else None)


def _dims(key: str, part: slice | None, shape) -> tuple[int, ...]:
    if part is None:
        return ()
    n = math.prod(int(s) for s in shape)
    dims = tuple(range(n))[part]
    if not dims:
        raise ValueError(
            f"--obs-keys: {key}[{part.start or ''}:{part.stop or ''}] selects nothing of its {n} values"
        )
    return () if len(dims) == n else dims


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]
