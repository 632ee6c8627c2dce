"""Env steps per second of the sim tasks against Meta-World pick-place-v3, measured in one run.

    make bench-metaworld                       # once: Meta-World in its own venv (.venv-metaworld)
    .venv/bin/python bench/sim_throughput.py [--steps 1000] [--camera-steps 200]

What is timed, for us and for the peer alike: a loop of `action = scripted_expert(obs)`,
`env.step(action)` and a reset whenever an episode ends (success or time limit), divided by the
number of env steps. One env step of ours is 0.1 s of simulated time (50 physics steps at
500 Hz); one Meta-World step is 5 physics steps at 400 Hz (12.5 ms). Meta-World (which pins
mujoco 3.3.0) runs in a subprocess from .venv-metaworld; without it the ratio column says so.

Two rates are printed: steps per wall-clock second, and steps per CPU-second of the process
(time.process_time, all its threads, so software rendering's worker threads count). On a
machine shared with other jobs the wall rate swings with the load; the CPU rate much less.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

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


def our_rate(task: str, steps: int, cameras: tuple[str, ...]) -> dict[str, float]:
    import sim
    from sim.experts import make_expert

    env = sim.make_env(task, cameras=cameras, image_size=96)
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
    args = parser.parse_args()
    from robot_rl.gl import configure_gl

    backend = configure_gl()
    peer = metaworld_rate(args.steps)
    print(f"rendering backend: {backend}")
    if peer is None:
        print("Meta-World pick-place-v3: not installed (make bench-metaworld); no ratios")
    else:
        print(
            f"Meta-World pick-place-v3 + scripted expert: {peer['wall']:.0f} steps/s wall, "
            f"{peer['cpu']:.0f} steps per CPU-second"
        )
    print(
        "| task | state-only steps/s (wall / per CPU-s) | ratio to Meta-World (wall / CPU) "
        "| front+wrist 96x96 steps/s (wall / per CPU-s) |"
    )
    print("| --- | --- | --- | --- |")
    for task in args.tasks.split(","):
        state = our_rate(task, args.steps, ())
        images = our_rate(task, args.camera_steps, ("front", "wrist"))
        ratio = f"{state['wall'] / peer['wall']:.2f}x / {state['cpu'] / peer['cpu']:.2f}x" if peer else "n/a"
        print(
            f"| {task} | {state['wall']:.0f} / {state['cpu']:.0f} | {ratio} "
            f"| {images['wall']:.0f} / {images['cpu']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
