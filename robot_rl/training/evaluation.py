"""Rollout evaluation in sim: success rate with a Wilson 95% interval, a video, a PNG of outcomes.

Episodes are seeded (episode i resets with seed `seed + i`), and so is the policy's sampling
noise: each lock-step batch draws from torch's generator seeded with its first episode's seed,
forked so that the caller's random state is left as it was. A result is reproducible, and the
start states do not depend on how episodes are spread over workers. Each worker process runs
its episodes in lock-step batches of `envs_per_worker` environments: one batched policy call
serves every live environment, then each environment executes the chunk's Ta actions.

    policy call at t:   obs window (To) of every live env ──► predict_action ──► (B, Ta, A)
    env steps:          t, t+1, ..., t+Ta-1 (an env that finishes mid-chunk stops there)
    next policy call:   t+Ta

    result = evaluate(policy_or_checkpoint_dir, EvalConfig(task="push", episodes=100, workers=2))
    result.success_rate, result.interval                 # (low, high), Wilson, 95%

Workers are separate processes (spawned, each with one torch thread) that load the policy
from a checkpoint directory: the same load path the server uses.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EvalConfig:
    task: str
    episodes: int = 100
    seed: int = 100_000  # episode i uses seed + i; kept away from collection seeds (0, 1, ...)
    workers: int = 1  # processes
    envs_per_worker: int = 10  # lock-step environments per process (batched policy calls)
    cameras: tuple[str, ...] = ()  # must match the policy's image keys
    max_episode_steps: int = 0  # 0: the task's default
    video_episodes: int = 0  # record the first N episodes (front camera) into the video
    video_size: int = 240
    int8: bool = (
        False  # roll out the policy's int8 copy (diffusion policies, CPU: DiffusionPolicy.quantized_int8)
    )

    def __post_init__(self):
        if self.episodes < 1 or self.workers < 1 or self.envs_per_worker < 1:
            raise ValueError("episodes, workers and envs_per_worker must be >= 1")


@dataclass
class EvalResult:
    successes: list[bool]
    lengths: list[int]
    seeds: list[int]
    chunk_latency_ms: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return sum(self.successes) / len(self.successes)

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(sum(self.successes), len(self.successes))

    def summary(self) -> dict[str, float]:
        lo, hi = self.interval
        lat = np.asarray(self.chunk_latency_ms) if self.chunk_latency_ms else np.zeros(1)
        return {
            "success_rate": self.success_rate,
            "success_low95": lo,
            "success_high95": hi,
            "episodes": float(len(self.successes)),
            "mean_length": float(np.mean(self.lengths)),
            "chunk_latency_p50_ms": float(np.percentile(lat, 50)),
        }


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (95% for the default z)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def evaluate(policy: Any, config: EvalConfig, progress: bool = True) -> EvalResult:
    """Run config.episodes seeded episodes of `policy` (a policy object or a checkpoint dir)."""
    seeds = [config.seed + i for i in range(config.episodes)]
    if config.workers == 1:
        policy = _load(policy) if isinstance(policy, str | os.PathLike) else policy
        return _run_episodes(_maybe_int8(policy, config), config, seeds, progress)
    with tempfile.TemporaryDirectory(prefix="robot_rl_eval_") as tmp:
        if isinstance(policy, str | os.PathLike):
            path = str(policy)
        else:
            path = str(Path(tmp) / "policy")
            policy.save(path)
        shards = [seeds[w :: config.workers] for w in range(config.workers)]
        import multiprocessing as mp

        with ProcessPoolExecutor(config.workers, mp_context=mp.get_context("spawn")) as pool:
            parts = list(
                pool.map(_worker, [path] * len(shards), [config] * len(shards), shards, range(len(shards)))
            )
    by_seed: dict[int, tuple[bool, int]] = {}
    result = EvalResult([], [], [])
    for part in parts:
        for s, ok, n in zip(part.seeds, part.successes, part.lengths):
            by_seed[s] = (ok, n)
        result.chunk_latency_ms += part.chunk_latency_ms
        result.frames += part.frames
    for s in seeds:
        ok, n = by_seed[s]
        result.seeds.append(s)
        result.successes.append(ok)
        result.lengths.append(n)
    return result


def _worker(path: str, config: EvalConfig, seeds: list[int], index: int) -> EvalResult:
    import torch

    torch.set_num_threads(1)
    policy = _maybe_int8(_load(path), config)
    video = config.video_episodes if index == 0 else 0
    return _run_episodes(policy, _with(config, video_episodes=video), seeds, progress=index == 0)


def _with(config: EvalConfig, **changes) -> EvalConfig:
    from dataclasses import replace

    return replace(config, **changes)


def _load(path):
    from robot_rl.policies import load_policy

    return load_policy(path)


def _maybe_int8(policy, config: EvalConfig):
    from robot_rl.policies import int8_copy

    return int8_copy(policy) if config.int8 else policy


def _run_episodes(policy, config: EvalConfig, seeds: list[int], progress: bool) -> EvalResult:
    from tqdm import tqdm

    result = EvalResult([], [], [])
    bar = tqdm(total=len(seeds), desc=f"eval {config.task}", disable=not progress, dynamic_ncols=True)
    recorded = 0
    for a in range(0, len(seeds), config.envs_per_worker):
        batch = seeds[a : a + config.envs_per_worker]
        record = [recorded + i < config.video_episodes for i in range(len(batch))]
        recorded += sum(record)
        ok, lengths, lat, frames = _run_batch(policy, config, batch, record)
        result.seeds += batch
        result.successes += ok
        result.lengths += lengths
        result.chunk_latency_ms += lat
        result.frames += frames
        bar.update(len(batch))
        bar.set_postfix(success=f"{sum(result.successes)}/{len(result.successes)}")
    bar.close()
    return result


def _run_batch(policy, config: EvalConfig, seeds: list[int], record: list[bool]):
    import torch

    import sim

    overrides: dict[str, Any] = {"cameras": tuple(config.cameras)}
    if config.max_episode_steps:
        overrides["max_episode_steps"] = config.max_episode_steps
    envs = [sim.make_env(config.task, **overrides) for _ in seeds]
    renderer = None
    if any(record):
        renderer = _VideoCamera(envs[0], config.video_size)
    spec = policy.obs_spec
    missing = [k for k in spec if k not in envs[0].observation_space.spaces]
    if missing:
        raise ValueError(
            f"the policy needs observation {missing[0]!r}, which task {config.task!r} with cameras "
            f"{list(config.cameras)} does not provide"
        )
    to, n = policy.obs_horizon, len(seeds)
    history: list[deque] = []
    for env, s in zip(envs, seeds):
        obs, _ = env.reset(seed=s)
        history.append(deque([obs] * to, maxlen=to))
    done = [False] * n
    success = [False] * n
    lengths = [0] * n
    latencies: list[float] = []
    frames: list[np.ndarray] = []
    policy.reset()
    device = policy.device
    # The sampling noise is seeded too, on a forked generator: the caller's stream is untouched.
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seeds[0])
        while not all(done):
            obs_batch = {
                k: torch.from_numpy(np.stack([np.stack([o[k] for o in h]) for h in history])).to(device)
                for k in spec
            }
            t0 = time.perf_counter()
            chunk = policy.predict_action(obs_batch).cpu().numpy()
            latencies.append((time.perf_counter() - t0) * 1e3)
            for i, env in enumerate(envs):
                for a in chunk[i]:
                    if done[i]:
                        break
                    obs, _, terminated, truncated, info = env.step(a)
                    history[i].append(obs)
                    lengths[i] += 1
                    success[i] = success[i] or bool(info.get("is_success", False))
                    done[i] = terminated or truncated
                    if record[i] and renderer is not None:
                        frames.append(renderer.render(env))
    for env in envs:
        env.close()
    if renderer is not None:
        renderer.close()
    return success, lengths, latencies, frames


class _VideoCamera:
    """Renders the front camera of an env at video resolution (separate from policy cameras)."""

    def __init__(self, env, size: int):
        from sim.rendering import CameraRenderer

        self._renderer = CameraRenderer(env.unwrapped.model, size, size, False)

    def render(self, env) -> np.ndarray:
        return self._renderer.render(env.unwrapped.data, "front")

    def close(self) -> None:
        self._renderer.close()


def write_video(frames: list[np.ndarray], path: str | os.PathLike, fps: float = 10.0) -> Path:
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError("no frames were recorded (video_episodes = 0?)")
    with imageio.get_writer(str(path), fps=fps, macro_block_size=1) as writer:
        for f in frames:
            writer.append_data(f)
    return path


def write_outcomes_png(result: EvalResult, path: str | os.PathLike, title: str) -> Path:
    """One bar per episode: length, green for success and red for failure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(result.successes)
    lo, hi = result.interval
    fig, ax = plt.subplots(figsize=(max(6, n * 0.08), 3), dpi=100)
    colors = ["tab:green" if s else "tab:red" for s in result.successes]
    ax.bar(range(n), result.lengths, color=colors, width=0.9)
    ax.set_xlabel("episode (seed order)")
    ax.set_ylabel("steps")
    ax.set_title(f"{title}: success {result.success_rate:.0%} [{lo:.0%}, {hi:.0%}] (95% Wilson), n={n}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
