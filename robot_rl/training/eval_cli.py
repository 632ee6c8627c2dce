"""`robot-rl eval --policy CKPT --task push --episodes 100 --video out.mp4`.

Rolls the policy out in sim over seeded episodes and prints the success rate with its 95%
Wilson interval; writes a video of the first episodes and a PNG of per-episode outcomes.
The sampler and the executed chunk length can be overridden for the run (--sampler,
--inference-steps, --warm-start, --action-horizon).
"""

from __future__ import annotations

import argparse

from robot_rl.cli_types import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="policy checkpoint directory")
    parser.add_argument("--task", required=True, help="push, lift, reach or insertion")
    parser.add_argument("--episodes", type=positive_int, default=100)
    parser.add_argument("--seed", type=int, default=100_000, help="episode i uses seed + i")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes")
    parser.add_argument("--envs-per-worker", type=positive_int, default=10, help="lock-step envs per process")
    parser.add_argument("--video", default="", help="mp4 of the first --video-episodes episodes")
    parser.add_argument("--video-episodes", type=non_negative_int, default=3)
    parser.add_argument(
        "--png", default="", help="PNG of per-episode outcomes (default: beside --video, or none)"
    )
    parser.add_argument(
        "--json", default="", help="also write the result (success, interval, latency, sampler) here"
    )
    parser.add_argument("--sampler", default="", help="override: ddim, ddim_diffusers, dpm_solver, ddpm")
    parser.add_argument(
        "--inference-steps", type=int, default=0, help="override the number of sampling steps"
    )
    parser.add_argument(
        "--warm-start", type=int, default=-1, help="warm-start steps (0: cold starts; -1: as saved)"
    )
    parser.add_argument(
        "--action-horizon",
        type=int,
        default=0,
        help="override Ta, the steps run from each chunk (0: as saved)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="run the U-Net in int8 (CPU; diffusion policies): faster for large networks, check success",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads per process")


def run(args: argparse.Namespace) -> int:
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    import torch

    from robot_rl import keys
    from robot_rl.policies import load_policy
    from robot_rl.training.evaluation import EvalConfig, evaluate, write_outcomes_png, write_video

    if args.int8 and args.device != "cpu":
        raise ValueError(f"--int8 runs on CPU; drop it or --device {args.device}")
    policy = load_policy(args.policy, device=args.device)
    sampler = _configure_sampler(policy, args)
    if args.action_horizon:
        if not hasattr(getattr(policy, "config", None), "action_horizon"):
            raise ValueError(f"--action-horizon: {args.policy} has no action chunks to shorten")
        policy.config = replace(policy.config, action_horizon=args.action_horizon)
    torch.set_num_threads(args.threads)
    cameras = tuple(k[len(keys.IMAGE_PREFIX) :] for k in policy.obs_spec if keys.is_image_key(k))
    cfg = EvalConfig(
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        workers=args.workers,
        envs_per_worker=args.envs_per_worker,
        cameras=cameras,
        video_episodes=args.video_episodes if args.video else 0,
        int8=args.int8,
    )
    # Workers load the policy from disk: a copy carries the sampler override to them.
    with tempfile.TemporaryDirectory(prefix="robot_rl_eval_") as tmp:
        result = evaluate(policy if args.workers == 1 else policy.save(Path(tmp) / "policy"), cfg)
    s = result.summary()
    lo, hi = result.interval
    if sampler is None:  # an RL actor, a DSRL bundle, an explorer: it picks its own actions or noise
        sampler_name = f"none ({type(policy).__name__})"
    else:
        sampler_name = (
            f"{sampler.kind}-{sampler.num_steps}"
            + (f" warm {sampler.warm_start_steps}" if sampler.warm_start else "")
            + (" int8" if args.int8 else "")
        )
    print(
        f"{args.task}: success {s['success_rate']:.1%} (95% Wilson interval [{lo:.1%}, {hi:.1%}]) over "
        f"{args.episodes} episodes; mean length {s['mean_length']:.1f}; sampler {sampler_name}; "
        f"chunk latency p50 {s['chunk_latency_p50_ms']:.1f} ms (batch {min(cfg.envs_per_worker, args.episodes)})"
    )
    if args.json:
        import json

        record = {"policy": str(args.policy), "task": args.task, "sampler": sampler_name, **s}
        record["action_horizon"] = policy.action_horizon
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    if args.video:
        print(f"video: {write_video(result.frames, args.video)}")
    png = args.png or (str(Path(args.video).with_suffix(".png")) if args.video else "")
    if png:
        print(f"outcomes: {write_outcomes_png(result, png, f'{args.task} {Path(args.policy).name}')}")
    return 0


def _configure_sampler(policy, args):
    """Apply --sampler / --inference-steps / --warm-start; the sampler in use, or None for a policy
    without a diffusion sampler of its own (RL actors; DSRL bundles, whose noise is the policy)."""
    from dataclasses import replace

    if not hasattr(policy, "configure_sampler"):
        given = [
            flag
            for flag, on in (
                ("--sampler", args.sampler),
                ("--inference-steps", args.inference_steps),
                ("--warm-start", args.warm_start >= 0),
            )
            if on
        ]
        if given:
            raise ValueError(
                f"{given[0]}: {args.policy} is a {type(policy).__name__}, with no diffusion sampler to override"
            )
        return None
    sampler = policy.config.sampler
    if args.sampler:
        sampler = replace(sampler, kind=args.sampler)
    if args.inference_steps:
        sampler = replace(sampler, num_steps=args.inference_steps)
    if args.warm_start == 0:
        sampler = replace(sampler, warm_start=False)
    elif args.warm_start > 0:
        sampler = replace(sampler, warm_start=True, warm_start_steps=args.warm_start)
    policy.configure_sampler(sampler)
    return sampler
