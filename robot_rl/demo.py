"""`robot-rl demo` (what `make demo` runs): the main job, end to end, on this machine.

Each stage is one of the documented `robot-rl` commands, printed before it runs so that
any stage can be rerun by hand:

    1. sim collect   scripted-expert demonstrations of the push task -> episode store (zarr)
    2. train         a state-based diffusion policy on them -> checkpoint (safetensors)
    3. distill       a one-step consistency student of it -> checkpoint, same interface
    4. eval          the teacher: success rate with a 95% interval over seeded episodes, video, PNG
    5. eval          the student, on the same seeds

and then a table of both: success and obs -> chunk latency (batch 1, one thread).

Rerunning an interrupted demo picks up where it stopped: collection tops the store up to
the requested number of episodes, and training and distillation resume from their last
checkpoints.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from robot_rl.cli_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="runs/demo", help="folder for the dataset, the run and the eval outputs"
    )
    parser.add_argument("--task", default="push", choices=["reach", "push", "lift", "insertion"])
    parser.add_argument("--demos", type=positive_int, default=100, help="scripted-expert episodes to collect")
    parser.add_argument("--steps", type=positive_int, default=3000, help="diffusion training steps")
    parser.add_argument(
        "--distill-steps", type=positive_int, default=1500, help="consistency distillation steps"
    )
    parser.add_argument("--episodes", type=positive_int, default=50, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)


def _episodes_in(store: Path) -> int:
    from robot_rl.data.store import EpisodeStore

    return len(EpisodeStore.open(store)) if store.exists() else 0


def _latency_ms(policy_dir: Path, calls: int = 20) -> float:
    """p50 obs -> chunk latency of a saved policy, batch 1, one thread (zero observations)."""
    import numpy as np
    import torch

    from robot_rl.policies import load_policy

    torch.set_num_threads(1)
    policy = load_policy(policy_dir)
    obs = {
        k: torch.zeros(1, policy.obs_horizon, *shape, dtype=getattr(torch, dtype))
        for k, (shape, dtype) in policy.obs_spec.items()
    }
    times = []
    with torch.inference_mode():
        for _ in range(calls + 3):
            policy.reset()
            t0 = time.perf_counter()
            policy.predict_action(obs)
            times.append(time.perf_counter() - t0)
    return float(np.median(times[3:]) * 1e3)


def _table(rows: list[tuple[str, Path, Path]]) -> str:
    lines = [
        "| policy | sampler | success [95% Wilson] | mean length | obs -> chunk p50, batch 1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result, policy_dir in rows:
        r = json.loads(result.read_text())
        lines.append(
            f"| {name} | {r['sampler']} | {r['success_rate']:.0%} [{r['success_low95']:.0%}, "
            f"{r['success_high95']:.0%}] over {r['episodes']:.0f} | {r['mean_length']:.1f} | "
            f"{_latency_ms(policy_dir):.1f} ms |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from robot_rl.cli import main

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, run_dir = out / f"{args.task}_expert.zarr", out / f"{args.task}_diffusion"
    student_dir = out / f"{args.task}_student"
    teacher, student = run_dir / "policy", student_dir / "policy"

    def _eval(policy: Path, name: str) -> list[str]:
        eval_args = ["eval", "--policy", str(policy), "--task", args.task, "--episodes", str(args.episodes)]
        outputs = ["--video", str(out / f"{args.task}_{name}.mp4"), "--video-episodes", "3"]
        return eval_args + ["--seed", "100000", *outputs, "--json", str(out / f"{args.task}_{name}.json")]

    have = _episodes_in(data)
    collect = ["sim", "collect", "--task", args.task, "--quality", "expert", "--out", str(data)]
    collect += ["--episodes", str(args.demos - have), "--seed", str(args.seed + have)]
    plan = [
        ("collect scripted-expert demonstrations", collect if have < args.demos else None),
        (
            "train a state-based diffusion policy (resumes from its last checkpoint)",
            ["train", "diffusion", "--data", str(data), "--out", str(run_dir), "--steps", str(args.steps)]
            # The small-network recipe that trains fastest on this CPU (README, diffusion section).
            + ["--down-dims", "32,64,128", "--batch-size", "32", "--lr", "5e-4", "--warmup", "100"]
            # Ta 4: 68% push at 12000 steps against 51% with diffusion_policy's Ta 8 (README).
            + ["--action-horizon", "4", "--seed", str(args.seed)],
        ),
        (
            "distill a one-step consistency student (resumes from its last checkpoint)",
            ["distill", "--teacher", str(teacher), "--data", str(data), "--out", str(student_dir)]
            # The recipe measured best on push (README, diffusion section): a 5-step teacher grid.
            + ["--steps", str(args.distill_steps), "--grid-steps", "5", "--lr", "3e-4", "--batch-size", "32"]
            + ["--seed", str(args.seed)],
        ),
        ("evaluate the diffusion policy in sim on unseen seeds", _eval(teacher, "diffusion")),
        ("evaluate the one-step student on the same seeds", _eval(student, "student")),
    ]
    start = time.monotonic()
    for i, (title, argv) in enumerate(plan, 1):
        if argv is None:
            print(f"\n[{i}/{len(plan)}] {title}: {data} already holds {have} episodes, skipped", flush=True)
            continue
        print(f"\n[{i}/{len(plan)}] {title}\n    $ robot-rl {shlex.join(argv)}", flush=True)
        code = main(argv)
        if code:
            print(f"demo stopped: stage {i} ({title}) failed with exit code {code}")
            return code
    table = _table(
        [
            ("diffusion (DDIM)", out / f"{args.task}_diffusion.json", teacher),
            ("one-step student", out / f"{args.task}_student.json", student),
        ]
    )
    print(f"\n{args.task}, {args.episodes} unseen seeds:\n{table}")
    print(f"\ndemo finished in {time.monotonic() - start:.0f} s; outputs in {out}/")
    return 0
