"""Env steps per second of the sim tasks against Meta-World pick-place-v3, measured in one run.

    make bench-metaworld                       # once: Meta-World in its own venv (.venv-metaworld)
    .venv/bin/python bench/sim_throughput.py [--steps 1000] [--camera-steps 200] [--rounds 5]
                                             [--tasks insertion --physics-rate-hz 250]

What is timed, for us and for the peer alike: a loop of `action = scripted_expert(obs)`,
`env.step(action)` and a reset whenever an episode ends (success or time limit), divided by the
number of env steps. One env step of ours is 0.1 s of simulated time (50 physics steps at
500 Hz); one Meta-World step is 5 physics steps at 400 Hz (12.5 ms). Meta-World (which pins
mujoco 3.3.0) runs in a subprocess from .venv-metaworld; without it the ratio column says so.

Two rates are printed: steps per wall-clock second, and steps per CPU-second of the process
(time.process_time, all its threads, so software rendering's worker threads count). On a
machine shared with other jobs the wall rate swings with the load; the CPU rate much less.
A single short run swings by 0.3-0.5 in the ratio on this VM, so the peer and our tasks are
measured in alternation over --rounds rounds, each task's ratio taken against the peer of its
own round, and the table gives medians (and the range of the ratio).

`--physics-rate-hz` runs our tasks at another physics rate than the env config's default
(500 Hz): fewer, longer physics steps per 0.1 s env step. It is what the rate costs, for a
decision on a task's default; the default rate is the one the goal is judged at.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PEER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import metaworld
from metaworld.policies.sawyer_pick_place_v3_policy import SawyerPickPlaceV3Policy
steps = int(sys.argv[1])
mt1 = metaworld.MT1("pick-place-v3", seed=0)
env = mt1.train_classes["pick-place-v3"]()
env.set_task(mt1.train_tasks[0])
policy = SawyerPickPlaceV3Policy()
obs, _ = env.reset(seed=0)
for _ in range(20):
    obs, *_ = env.step(policy.get_action(obs))
obs, _ = env.reset()
start, cpu = time.perf_counter(), time.process_time()
for _ in range(steps):
    obs, r, terminated, truncated, info = env.step(policy.get_action(obs))
    if terminated or truncated or info["success"]:
        obs, _ = env.reset()
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"wall": steps / wall, "cpu": steps / cpu}))
"""


def metaworld_rate(steps: int) -> dict[str, float] | None:
    python = REPO / ".venv-metaworld" / "bin" / "python"
    if not python.exists():
        return None
    out = subprocess.run([str(python), "-c", PEER, str(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def our_rate(task: str, steps: int, cameras: tuple[str, ...], physics: dict) -> dict[str, float]:
    import sim
    from sim.experts import make_expert

    env = sim.make_env(task, cameras=cameras, image_size=96, **physics)
    expert = make_expert(task, "expert", seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(expert.act(obs))
    obs, _ = env.reset(seed=1)
    expert.reset()
    episode = 1
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(expert.act(obs))
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=episode)
            expert.reset()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    env.close()
    return {"wall": steps / wall, "cpu": steps / cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="timed steps per state-only run")
    parser.add_argument("--camera-steps", type=int, default=200, help="timed steps per run with cameras")
    parser.add_argument("--tasks", default="reach,push,lift,insertion")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of peer-then-ours; medians and ranges over them"
    )
    parser.add_argument(
        "--physics-rate-hz", type=float, default=None, help="our tasks' physics rate (default: the env's)"
    )
    args = parser.parse_args()
    if args.steps < 1 or args.camera_steps < 1 or args.rounds < 1:
        parser.error("--steps, --camera-steps and --rounds must be at least 1")
    from robot_rl.gl import configure_gl
    from sim.config import SimEnvConfig

    tasks = args.tasks.split(",")
    physics = {} if args.physics_rate_hz is None else {"physics_rate_hz": args.physics_rate_hz}
    try:
        config = SimEnvConfig(tasks[0], **physics)
    except ValueError as exc:
        parser.error(f"--physics-rate-hz: {exc}")
    backend = configure_gl()
    print(
        f"rendering backend: {backend}; our physics {config.physics_rate_hz:g} Hz "
        f"({config.substeps} steps per env step); {args.rounds} rounds, each Meta-World then every task"
    )
    peers, state, images = [], {t: [] for t in tasks}, {t: [] for t in tasks}
    for r in range(args.rounds):
        peer = metaworld_rate(args.steps)
        peers.append(peer)
        line = [f"Meta-World {peer['cpu']:.0f}" if peer else "Meta-World n/a"]
        for task in tasks:
            state[task].append(our_rate(task, args.steps, (), physics))
            images[task].append(our_rate(task, args.camera_steps, ("front", "wrist"), physics))
            line.append(f"{task} {state[task][-1]['cpu']:.0f}")
        print(f"round {r + 1}, steps per CPU-second: " + ", ".join(line), flush=True)

    def med(runs, key):
        return float(np.median([run[key] for run in runs]))

    if peers[0] is None:
        print("Meta-World pick-place-v3: not installed (make bench-metaworld); no ratios")
    else:
        print(
            f"Meta-World pick-place-v3 + scripted expert, median: {med(peers, 'wall'):.0f} steps/s wall, "
            f"{med(peers, 'cpu'):.0f} steps per CPU-second"
        )
    print(
        "| task | state-only steps/s, median (wall / per CPU-s) "
        "| ratio to Meta-World per CPU-s, median (range over rounds) "
        "| front+wrist 96x96 steps/s, median (wall / per CPU-s) |"
    )
    print("| --- | --- | --- | --- |")
    for task in tasks:
        if peers[0] is not None:  # each round's ratio: ours against the peer measured just before
            ratios = [ours["cpu"] / peer["cpu"] for ours, peer in zip(state[task], peers, strict=True)]
            ratio = f"{np.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        else:
            ratio = "n/a"
        print(
            f"| {task} | {med(state[task], 'wall'):.0f} / {med(state[task], 'cpu'):.0f} | {ratio} "
            f"| {med(images[task], 'wall'):.0f} / {med(images[task], 'cpu'):.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
