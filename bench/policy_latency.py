"""Observation -> action-chunk latency at batch 1: our samplers against LeRobot's DiffusionPolicy.

    make bench-lerobot                      # once: LeRobot in its own venv (.venv-lerobot)
    .venv/bin/python bench/policy_latency.py [--down-dims 256,512,1024] [--iters 30] [--threads 1]

Same machine, same run, same torch thread count, same horizons (To=2, Tp=16, Ta=8), state-only
observations of 20 dims, 7-dim actions, U-Net channels `--down-dims` (256,512,1024 gives ~63M
parameters in both). Rows:

    ours DDIM-10            precomputed-coefficient DDIM (the default sampler)
    ours DDIM-10 diffusers  the same update stepped through diffusers' DDIMScheduler
    ours DDIM-100
    ours warm-start         DDIM-10 schedule, previous chunk shifted and re-noised, last 3 steps
    ours one-step           consistency-distilled student (same network), 1 call
    LeRobot DDIM-10         lerobot.policies.diffusion, generate_actions (subprocess in .venv-lerobot)

Weights are random: latency does not depend on them. Prints p50/p99 and the ratios the issue
asks for (ours DDIM-10 vs LeRobot's; one-step vs ours DDIM-10).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
PEER_PY = ROOT / ".venv-lerobot" / "bin" / "python"


def _percentiles(lat: list[float]) -> tuple[float, float]:
    a = np.asarray(lat)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _time(fn, iters: int, warmup: int = 3) -> list[float]:
    out = []
    for i in range(iters + warmup):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--down-dims", default="256,512,1024")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from robot_rl import keys
    from robot_rl.algorithms.consistency_distillation import make_student
    from robot_rl.policies.diffusion import (
        DiffusionPolicy,
        DiffusionPolicyConfig,
        ObsFeature,
        SamplerConfig,
        UNetConfig,
    )

    spec = {
        keys.JOINT_POS: ObsFeature((6,)),
        keys.GRIPPER_POS: ObsFeature((1,)),
        keys.EE_POS: ObsFeature((3,)),
        keys.OBJECT_POSE: ObsFeature((7,)),
        keys.GOAL_POS: ObsFeature((3,)),
    }
    dims = tuple(int(d) for d in args.down_dims.split(","))
    cfg = DiffusionPolicyConfig(obs_spec=spec, action_dim=7, unet=UNetConfig(down_dims=dims))
    torch.manual_seed(0)
    policy = DiffusionPolicy(cfg).eval()
    params = sum(p.numel() for p in policy.parameters())
    obs = {k: torch.randn(1, 2, *f.shape) for k, f in spec.items()}
    rows: list[tuple[str, list[float]]] = []

    def run(sampler: SamplerConfig, iters: int, p=policy) -> list[float]:
        p.configure_sampler(sampler)
        return _time(lambda: p.predict_action(obs), iters)

    rows.append(("ours DDIM-10", run(SamplerConfig(kind="ddim", num_steps=10), args.iters)))
    rows.append(
        ("ours DDIM-10 diffusers", run(SamplerConfig(kind="ddim_diffusers", num_steps=10), args.iters))
    )
    rows.append(("ours DDIM-100", run(SamplerConfig(kind="ddim", num_steps=100), max(5, args.iters // 5))))
    warm = SamplerConfig(kind="ddim", num_steps=10, warm_start=True, warm_start_steps=3)
    rows.append(
        ("ours warm-start (3 of DDIM-10)", run(warm, args.iters))
    )  # steady state: first call is warm-up
    student = make_student(policy, steps=1).eval()
    rows.append(("ours one-step (consistency)", _time(lambda: student.predict_action(obs), args.iters)))

    peer = None
    if PEER_PY.exists():
        cmd = [
            str(PEER_PY),
            str(ROOT / "bench" / "lerobot_diffusion_latency.py"),
            "--down-dims",
            args.down_dims,
        ]
        cmd += ["--iters", str(args.iters), "--threads", str(args.threads), "--steps", "10"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if res.returncode == 0:
            peer = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(("LeRobot DDIM-10", peer["latencies_ms"]))
        else:
            print(f"LeRobot peer failed:\n{res.stderr[-2000:]}", file=sys.stderr)
    else:
        print(
            "LeRobot peer not installed: run `make bench-lerobot` (reference: 311 ms for 63M params, DDIM-10)"
        )

    print(f"\npolicy latency, obs -> chunk, batch 1, {args.threads} thread(s), torch {torch.__version__}")
    print(
        f"ours: {params / 1e6:.1f}M parameters" + (f"; LeRobot: {peer['params'] / 1e6:.1f}M" if peer else "")
    )
    print(f"{'':34s} {'p50 ms':>9s} {'p99 ms':>9s}")
    for name, lat in rows:
        p50, p99 = _percentiles(lat)
        print(f"{name:34s} {p50:9.2f} {p99:9.2f}")
    ours10 = _percentiles(rows[0][1])[0]
    one = _percentiles(rows[4][1])[0]
    sched = _percentiles(rows[1][1])[0]
    print(f"\ndiffusers stepping / fast sampler (DDIM-10):   {sched / ours10:.2f}x")
    print(f"one-step vs ours DDIM-10:                     {ours10 / one:.1f}x faster (goal >= 10x)")
    if peer:
        lr50 = _percentiles(peer["latencies_ms"])[0]
        print(f"ours DDIM-10 vs LeRobot DDIM-10:              {lr50 / ours10:.2f}x faster (goal >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
