"""`robot-rl demo` (what `make demo` runs): the main job, end to end, on this machine.

Each stage is one of the documented `robot-rl` commands, printed before it runs so that
any stage can be rerun by hand:

    1. sim collect   scripted-expert demonstrations of the push task -> episode store (zarr)
    2. train         a state-based diffusion policy on them -> checkpoint (safetensors)
    3. eval          success rate with a 95% interval over seeded episodes, video and PNG

Rerunning an interrupted demo picks up where it stopped: collection tops the store up to
the requested number of episodes, and training resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="runs/demo", help="folder for the dataset, the run and the eval outputs"
    )
    parser.add_argument("--task", default="push", choices=["reach", "push", "lift", "insertion"])
    parser.add_argument("--demos", type=int, default=100, help="scripted-expert episodes to collect")
    parser.add_argument("--steps", type=int, default=3000, help="diffusion training steps")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)


def _episodes_in(store: Path) -> int:
    from robot_rl.data.store import EpisodeStore

    return len(EpisodeStore.open(store)) if store.exists() else 0


def run(args: argparse.Namespace) -> int:
    from robot_rl.cli import main

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, run_dir = out / f"{args.task}_expert.zarr", out / f"{args.task}_diffusion"
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
            + ["--seed", str(args.seed)],
        ),
        (
            "evaluate it in sim on unseen seeds",
            [
                "eval",
                "--policy",
                str(run_dir / "policy"),
                "--task",
                args.task,
                "--episodes",
                str(args.episodes),
            ]
            + ["--seed", "100000", "--video", str(out / f"{args.task}_eval.mp4"), "--video-episodes", "3"],
        ),
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
    print(f"\ndemo finished in {time.monotonic() - start:.0f} s; outputs in {out}/")
    return 0
