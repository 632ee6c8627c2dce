"""Env steps per second of the sim tasks against Meta-World pick-place-v3, measured in one run.

    make bench-metaworld                       # once: Meta-World in its own venv (.venv-metaworld)
    .venv/bin/python bench/sim_throughput.py [--steps 1000] [--camera-steps 200]

What is timed, for us and for the peer alike: a loop of `action = scripted_expert(obs)`,
`env.step(action)` and a reset whenever an episode ends (success or time limit), divided by the
number of env steps. One env step of ours is 0.1 s of simulated time (50 physics steps at
500 Hz); one Meta-World step is 5 physics steps at 400 Hz (12.5 ms). Meta-World (which pins
mujoco 3.3.0) runs in a subprocess from .venv-metaworld; without it the ratio column says so.
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
start = time.perf_counter()
for _ in range(steps):
    obs, r, terminated, truncated, info = env.step(policy.get_action(obs))
    if terminated or truncated or info["success"]:
        obs, _ = env.reset()
print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start)}))
"""


def metaworld_rate(steps: int) -> float | None:
    python = REPO / ".venv-metaworld" / "bin" / "python"
    if not python.exists():
        return None
    out = subprocess.run([str(python), "-c", PEER, str(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"]


def our_rate(task: str, steps: int, cameras: tuple[str, ...]) -> float:
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
    start = time.perf_counter()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(expert.act(obs))
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=episode)
            expert.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


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
        print(f"Meta-World pick-place-v3 + scripted expert: {peer:.0f} steps/s")
    print("| task | state-only steps/s | ratio to Meta-World | front+wrist 96x96 steps/s |")
    print("| --- | --- | --- | --- |")
    for task in args.tasks.split(","):
        state = our_rate(task, args.steps, ())
        images = our_rate(task, args.camera_steps, ("front", "wrist"))
        ratio = f"{state / peer:.2f}x" if peer else "n/a"
        print(f"| {task} | {state:.0f} | {ratio} | {images:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
