"""Gradient updates per second of our IQL, Cal-QL and SAC against d3rlpy and stable-baselines3.

    make bench-env bench-d3rlpy           # once: SB3 in .venv, d3rlpy in .venv-d3rlpy (pin clash)
    .venv/bin/python bench/learner_throughput.py [--updates 200] [--threads 1]

Same data for everyone: transitions of Hopper-v5 (obs 11, action 3) under a random policy,
with Monte-Carlo returns-to-go for Cal-QL. Same networks: MLPs of 256-256 for actor, critics
and value, two critics, batch 256; Cal-QL draws 10 actions per state for its penalty (d3rlpy's
default). What is timed is `update(batch)` on pre-sampled batches (one gradient step of every
network the algorithm trains), after a warm-up; data sampling is left out for all of them.
d3rlpy runs in a subprocess from .venv-d3rlpy, given the same data as a .npz (no pickle).
Our SAC is also timed with the RLPD recipe (10 LayerNorm critics), which SB3 has no equal of.
Torch threads default to 1 so that numbers stay comparable on a shared machine.

Each rate is printed twice: per second of wall-clock time (the number that counts, on an idle
machine) and per second of the process's own CPU time (time.process_time, in the peer's process
for d3rlpy), which other jobs on a loaded machine disturb much less than wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robot_rl.gl import configure_gl  # noqa: E402

configure_gl()  # before gymnasium's Hopper imports mujoco (robot_rl/gl.py)
D3RLPY_PYTHON = REPO / ".venv-d3rlpy" / "bin" / "python"
BATCH = 256

PEER_D3RLPY = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]))
import d3rlpy
d = np.load(sys.argv[1])
algo_name, updates = sys.argv[2], int(sys.argv[3])
dataset = d3rlpy.dataset.MDPDataset(
    d["obs"], d["action"], d["reward"][:, None], d["terminal"], timeouts=d["timeout"]
)
enc = d3rlpy.models.VectorEncoderFactory(hidden_units=[256, 256])
common = dict(batch_size=256, actor_encoder_factory=enc, critic_encoder_factory=enc)
if algo_name == "iql":
    algo = d3rlpy.algos.IQLConfig(value_encoder_factory=enc, **common).create(device="cpu:0")
else:
    algo = d3rlpy.algos.CalQLConfig(n_action_samples=10, **common).create(device="cpu:0")
algo.build_with_dataset(dataset)
batches = [dataset.sample_transition_batch(256) for _ in range(20)]
for i in range(10):
    algo.update(batches[i % 20])
start, cpu = time.perf_counter(), time.process_time()
for i in range(updates):
    algo.update(batches[i % 20])
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"updates_per_s": updates / wall, "updates_per_cpu_s": updates / cpu}))
"""


def collect(steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random-policy Hopper-v5 transitions, episodes kept in order, with MC returns-to-go."""
    import gymnasium as gym

    from robot_rl.data.transitions import mc_returns

    env = gym.make("Hopper-v5")
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "next_obs", "terminal", "timeout")}
    obs, _ = env.reset(seed=seed)
    mc, ep_rewards = [], []
    for t in range(steps):
        action = rng.uniform(-1, 1, 3).astype(np.float32)
        nxt, reward, terminated, truncated, _ = env.step(action)
        last = t == steps - 1
        for k, v in zip(out, (obs, action, reward, nxt, terminated, (truncated or last) and not terminated)):
            out[k].append(v)
        ep_rewards.append(reward)
        obs = nxt
        if terminated or truncated or last:
            mc.append(mc_returns(np.asarray(ep_rewards), 0.99))
            ep_rewards = []
            obs, _ = env.reset()
    data = {k: np.asarray(v, np.float32) for k, v in out.items()}
    data["mc_return"] = np.concatenate(mc).astype(np.float32)
    return data


Rate = tuple[float, float]  # (updates per wall-clock second, updates per CPU second)


def ours(name: str, data: dict[str, np.ndarray], updates: int) -> Rate:
    import torch

    from robot_rl.algorithms import common as c
    from robot_rl.algorithms.calql import CalQL, CalQLConfig
    from robot_rl.algorithms.iql import IQL, IQLConfig
    from robot_rl.algorithms.sac import SAC, SACConfig
    from robot_rl.models.actor import ActorPolicy

    policy = ActorPolicy([c.OBS], [11], [-1.0] * 3, [1.0] * 3, hidden=(256, 256))
    algo = {
        "iql": lambda: IQL(policy, IQLConfig()),
        "calql": lambda: CalQL(policy, CalQLConfig(n_actions=10)),
        "sac": lambda: SAC(policy, SACConfig(critic_members=2, target_members=2, layer_norm=False)),
        "rlpd": lambda: SAC(policy, SACConfig()),
    }[name]()
    rng = np.random.default_rng(0)
    fields = {
        c.OBS: "obs",
        c.ACTION: "action",
        c.REWARD: "reward",
        c.NEXT_OBS: "next_obs",
        c.MC_RETURN: "mc_return",
    }
    batches = []
    for _ in range(20):
        idx = rng.integers(0, len(data["obs"]), BATCH)
        b = {k: torch.as_tensor(data[v][idx]) for k, v in fields.items()}
        b[c.TERMINAL] = torch.as_tensor(data["terminal"][idx])
        batches.append(b)
    for i in range(10):
        algo.update(batches[i % 20])
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(updates):
        algo.update(batches[i % 20])
    return updates / (time.perf_counter() - start), updates / (time.process_time() - cpu)


def sb3_sac(data: dict[str, np.ndarray], updates: int) -> Rate:
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure

    env = gym.make("Hopper-v5")
    model = SAC(
        "MlpPolicy", env, batch_size=BATCH, buffer_size=len(data["obs"]), learning_starts=0, verbose=0
    )
    model.set_logger(configure(None, []))
    for i in range(len(data["obs"])):
        model.replay_buffer.add(
            data["obs"][i : i + 1],
            data["next_obs"][i : i + 1],
            data["action"][i : i + 1],
            data["reward"][i : i + 1],
            data["terminal"][i : i + 1],
            [{}],
        )
    model.train(gradient_steps=10, batch_size=BATCH)
    start, cpu = time.perf_counter(), time.process_time()
    model.train(gradient_steps=updates, batch_size=BATCH)  # includes SB3's own buffer sampling
    return updates / (time.perf_counter() - start), updates / (time.process_time() - cpu)


def d3rlpy_peer(name: str, npz: Path, updates: int, threads: int) -> Rate | str:
    if not D3RLPY_PYTHON.exists():
        return "not installed (make bench-d3rlpy)"
    proc = subprocess.run(
        [str(D3RLPY_PYTHON), "-c", PEER_D3RLPY, str(npz), name, str(updates), str(threads)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["updates_per_s"], result["updates_per_cpu_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200, help="timed updates per learner")
    parser.add_argument("--data-steps", type=int, default=20_000, help="Hopper-v5 transitions to collect")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every learner")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = collect(args.data_steps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        np.savez(npz, **data)
        for ours_name, peer_name, peer in (
            ("iql", "d3rlpy IQL", lambda: d3rlpy_peer("iql", npz, args.updates, args.threads)),
            (
                "calql",
                "d3rlpy CalQL",
                lambda: d3rlpy_peer("calql", npz, max(args.updates // 4, 20), args.threads),
            ),
            ("sac", "SB3 SAC", lambda: sb3_sac(data, args.updates)),
        ):
            mine = ours(ours_name, data, args.updates)
            theirs = peer()
            rows.append((ours_name, mine, peer_name, theirs))
            peer_text = f"{theirs[0]:.1f}/s" if isinstance(theirs, tuple) else theirs
            print(
                f"  measured {ours_name}: {mine[0]:.1f}/s, {peer_name}: {peer_text}",
                file=sys.stderr,
                flush=True,
            )
        rlpd = ours("rlpd", data, max(args.updates // 4, 20))
    print(
        f"learner updates/s, batch {BATCH}, 256-256 MLPs, {args.threads} torch thread(s), Hopper-v5 random data"
    )
    print("wall: per wall-clock second (the result); cpu: per second of the process's own CPU time")
    print(
        f"{'ours':<8}{'wall':>9}{'cpu':>9}   {'peer':<14}{'wall':>9}{'cpu':>9}{'ratio':>9}{'cpu ratio':>11}"
    )
    for name, mine, peer_name, theirs in rows:
        if isinstance(theirs, tuple):
            print(
                f"{name:<8}{mine[0]:>9.1f}{mine[1]:>9.1f}   {peer_name:<14}{theirs[0]:>9.1f}{theirs[1]:>9.1f}"
                f"{mine[0] / theirs[0]:>8.2f}x{mine[1] / theirs[1]:>10.2f}x"
            )
        else:
            print(f"{name:<8}{mine[0]:>9.1f}{mine[1]:>9.1f}   {peer_name:<14}{theirs:>36}")
    print(
        f"{'rlpd':<8}{rlpd[0]:>9.1f}{rlpd[1]:>9.1f}   (SAC, 10 LayerNorm critics, random-pair target; no peer)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
