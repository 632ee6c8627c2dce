"""`robot-rl sim ...`: look at the scenes, roll out the scripted experts, collect demonstrations.

robot-rl sim view --task push --out view.png [--size 256] [--video push.mp4]
robot-rl sim experts --episodes 100 [--tasks reach,push] [--qualities expert,medium,poor]
robot-rl sim collect --task push --episodes 100 --quality expert --out demos.zarr
                     [--cameras front,wrist] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_rl.cli_types import non_negative_float, non_negative_int, positive_float, positive_int

TASKS = ("reach", "push", "lift", "insertion")
QUALITIES = ("expert", "medium", "poor")


def _csv(choices):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad[0]!r}; choose from {', '.join(choices)}")
        return items

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)

    view = sub.add_parser("view", help="render the front, wrist and an overview camera into one PNG")
    view.add_argument("--task", choices=TASKS, default="push")
    view.add_argument("--out", type=Path, default=Path("view.png"))
    view.add_argument("--size", type=positive_int, default=256, help="pixels per view (square)")
    view.add_argument("--seed", type=int, default=0)
    view.add_argument("--video", type=Path, default=None, help="also write an mp4 of an expert episode")
    view.add_argument("--fast", action="store_true", help="training render settings (no shadows, no MSAA)")
    view.set_defaults(_sim=_view)

    experts = sub.add_parser("experts", help="success rates of the scripted experts over seeded episodes")
    experts.add_argument("--tasks", type=_csv(TASKS), default=TASKS)
    experts.add_argument("--qualities", type=_csv(QUALITIES), default=QUALITIES)
    experts.add_argument("--episodes", type=positive_int, default=100)
    experts.add_argument("--seed", type=int, default=0)
    experts.add_argument("--workers", type=positive_int, default=1, help="parallel processes")
    experts.add_argument(
        "--physics-rate-hz",
        type=positive_float,
        default=None,
        help="MuJoCo steps per simulated second (default: the env config's, 500); a whole multiple "
        "of the 10 Hz policy rate",
    )
    experts.set_defaults(_sim=_experts)

    collect = sub.add_parser("collect", help="roll out a scripted expert into an episode store (zarr)")
    collect.add_argument("--task", choices=TASKS, required=True)
    collect.add_argument("--episodes", type=positive_int, default=100)
    collect.add_argument("--quality", choices=QUALITIES, default="expert")
    collect.add_argument("--out", type=Path, required=True, help="episode store; appended to if it exists")
    collect.add_argument("--cameras", type=_csv(("front", "wrist")), default=())
    collect.add_argument("--image-size", type=positive_int, default=96)
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument("--successes-only", action="store_true", help="drop failed episodes")
    collect.add_argument(
        "--execution-noise",
        type=non_negative_float,
        default=0.0,
        metavar="RAD",
        help="DART: execute the expert's joint targets plus Gaussian noise of this std, record the "
        "expert's own action (behaviour-cloning data; 0: off)",
    )
    collect.add_argument(
        "--steps-after-success",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="keep the expert going N steps past the first success, so demos show the task "
        "finished rather than stopped at the success threshold (0: end on success)",
    )
    collect.set_defaults(_sim=_collect)


def run(args: argparse.Namespace) -> int:
    from robot_rl.gl import configure_gl

    configure_gl()
    return args._sim(args)


def _view(args) -> int:
    import imageio.v3 as iio
    import numpy as np

    import sim
    from sim.experts import make_expert
    from sim.rendering import CameraRenderer

    env = sim.make_env(args.task)
    obs, _ = env.reset(seed=args.seed)
    renderer = CameraRenderer(env.model, args.size, args.size, pretty=not args.fast)
    cams = ("front", "wrist", "overview")

    def frame():
        return np.concatenate([renderer.render(env.data, cam) for cam in cams], axis=1)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(args.out, frame())
    print(f"wrote {args.out} ({' | '.join(cams)}, {args.size}x{args.size} each)")
    if args.video is not None:
        expert = make_expert(args.task, "expert", seed=args.seed)
        frames = [frame()]
        while True:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            frames.append(frame())
            if terminated or truncated:
                break
        frames += [frames[-1]] * int(env.config.policy_rate_hz)  # hold the last frame for a second
        iio.imwrite(args.video, np.stack(frames), fps=env.config.policy_rate_hz, codec="libx264")
        print(f"wrote {args.video} ({len(frames)} frames, success={info['is_success']})")
    renderer.close()
    env.close()
    return 0


def _experts(args) -> int:
    from tqdm import tqdm

    from sim.config import SimEnvConfig
    from sim.rollout import success_flags

    overrides = {}
    if args.physics_rate_hz is not None:
        overrides["physics_rate_hz"] = args.physics_rate_hz
        SimEnvConfig(args.tasks[0], **overrides)  # a rate the env refuses, refused before any worker starts
    rows = []
    for task in tqdm(args.tasks, desc="tasks"):
        row = [task]
        for quality in args.qualities:
            flags = success_flags(task, quality, args.episodes, args.seed, args.workers, overrides)
            row.append(f"{100 * sum(flags) / len(flags):.0f}%")
        rows.append(row)
    rate = f", physics {args.physics_rate_hz:g} Hz" if args.physics_rate_hz is not None else ""
    print(f"\nscripted-expert success over {args.episodes} seeded episodes (seeds {args.seed}..){rate}")
    print("| task | " + " | ".join(args.qualities) + " |")
    print("| --- |" + " --- |" * len(args.qualities))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def _collect(args) -> int:
    from tqdm import tqdm

    import sim
    from robot_rl.data.store import EpisodeMeta, EpisodeStore
    from sim.experts import make_expert
    from sim.rollout import rollout_episode

    env = sim.make_env(
        args.task,
        cameras=args.cameras,
        image_size=args.image_size,
        terminate_on_success=args.steps_after_success == 0,
    )
    if args.out.exists():
        store = EpisodeStore.open(args.out, mode="a")
    else:
        store = EpisodeStore.create(args.out, step_dt=1.0 / env.config.policy_rate_hz)
    kept = successes = 0
    bar = tqdm(range(args.episodes), desc=f"collect {args.task} ({args.quality})")
    for e in bar:
        seed = args.seed + e
        expert = make_expert(args.task, args.quality, seed=seed, hardware=env.config.hardware)
        steps, success = rollout_episode(
            env,
            expert,
            seed,
            execution_noise=args.execution_noise,
            steps_after_success=args.steps_after_success,
        )
        successes += success
        if args.successes_only and not success:
            continue
        meta = EpisodeMeta(task=args.task, success=success, source="sim", robot=env.hw.name)
        store.append_episode(steps, meta)
        kept += 1
        bar.set_postfix(success=f"{successes}/{e + 1}")
    env.close()
    print(
        f"{args.out}: appended {kept} episodes ({successes}/{args.episodes} successful); "
        f"store now holds {store.num_episodes} episodes, {store.num_steps} steps"
    )
    return 0
