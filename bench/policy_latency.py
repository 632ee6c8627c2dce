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
    ours ... int8           the same two policies with the U-Net in int8 (CPU; robot_rl/models/int8.py)
    LeRobot DDIM-10         lerobot.policies.diffusion, generate_actions (subprocess in .venv-lerobot)

Weights are random: latency does not depend on them (what int8 does to success is measured by
`robot-rl eval --int8`, README). Prints p50/p99 and the ratios the issue asks for (ours DDIM-10,
float32 and int8, vs LeRobot's float32; one-step vs ours DDIM-10).
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--down-dims", default="256,512,1024")
    ap.add_argument("--iters", type=int, default=30, help="timed calls per row (DDIM-100: a fifth)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved blocks per row")
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
    student = make_student(policy, steps=1).eval()
    variants = {
        "ours DDIM-10": (policy, SamplerConfig(kind="ddim", num_steps=10)),
        "ours DDIM-10 diffusers": (policy, SamplerConfig(kind="ddim_diffusers", num_steps=10)),
        "ours DDIM-100": (policy, SamplerConfig(kind="ddim", num_steps=100)),
        # Steady state: each warm call follows a warm call (reset only before the first).
        "ours warm-start (3 of DDIM-10)": (policy, SamplerConfig(kind="ddim", num_steps=10, warm_start=True)),
        "ours one-step (consistency)": (student, None),
        # The same weights with the U-Net in int8 (DiffusionPolicy.quantized_int8, CPU only).
        "ours DDIM-10 int8": (policy.quantized_int8(), SamplerConfig(kind="ddim", num_steps=10)),
        "ours one-step int8": (student.quantized_int8(), None),
    }
    peer = _start_peer(args) if PEER_PY.exists() else None
    if peer is None:
        print(
            "LeRobot peer not installed: run `make bench-lerobot` (reference: 311 ms for 63M params, DDIM-10)"
        )
    lat: dict[str, list[float]] = {name: [] for name in variants}
    if peer is not None:
        lat["LeRobot DDIM-10"] = []

    def ours(name: str) -> float:
        p, sampler = variants[name]
        t0 = time.perf_counter()
        p.predict_action(obs)
        return (time.perf_counter() - t0) * 1e3

    def lerobot() -> float:
        peer.stdin.write("go\n")
        peer.stdin.flush()
        return float(peer.stdout.readline())

    # Blocks of consecutive calls per row, the blocks interleaved over --rounds rounds so that
    # every row sees the same machine load. Consecutive, because a server runs one policy over
    # and over: its weights stay in the CPU caches between calls. Single calls round-robin would
    # time every call with its weights evicted by the other rows' (here one 63M model is 254 MB,
    # the L3 of this VM 260 MB), which no deployment does.
    rows_fn = {name: (lambda name=name: ours(name)) for name in variants}
    if peer is not None:
        rows_fn["LeRobot DDIM-10"] = lerobot
    per_block = max(1, args.iters // args.rounds)
    for _ in range(args.rounds):
        for name, call in rows_fn.items():
            if name in variants:
                p, sampler = variants[name]
                if sampler is not None and p.config.sampler != sampler:
                    p.configure_sampler(sampler)
            n = max(1, per_block // 5) if name == "ours DDIM-100" else per_block  # 10x the cost
            call()  # untimed: the first call after a switch is cold (warm start needs a previous chunk)
            lat[name] += [call() for _ in range(n)]
    peer_params = None
    if peer is not None:
        peer_params = peer.params
        peer.stdin.close()
        peer.wait(timeout=60)
    rows = list(lat.items())

    print(f"\npolicy latency, obs -> chunk, batch 1, {args.threads} thread(s), torch {torch.__version__}")
    print(
        f"ours: {params / 1e6:.1f}M parameters"
        + (f"; LeRobot: {peer_params / 1e6:.1f}M" if peer_params else "")
    )
    print(
        f"({args.rounds} interleaved blocks of consecutive calls per row, one untimed call before each block)"
    )
    print(f"{'':34s} {'p50 ms':>9s} {'p99 ms':>9s}")
    for name, samples in rows:
        p50, p99 = _percentiles(samples)
        print(f"{name:34s} {p50:9.2f} {p99:9.2f}")
    ours10 = _percentiles(lat["ours DDIM-10"])[0]
    one = _percentiles(lat["ours one-step (consistency)"])[0]
    sched = _percentiles(lat["ours DDIM-10 diffusers"])[0]
    print(f"\ndiffusers stepping / fast sampler (DDIM-10):   {sched / ours10:.2f}x")
    print(f"one-step vs ours DDIM-10:                     {ours10 / one:.1f}x faster (goal >= 10x)")
    int8 = _percentiles(lat["ours DDIM-10 int8"])[0]
    one8 = _percentiles(lat["ours one-step int8"])[0]
    print(f"int8 vs float32, ours DDIM-10:                {ours10 / int8:.2f}x faster")
    print(f"one-step int8 vs ours DDIM-10 int8:           {int8 / one8:.1f}x faster (goal >= 10x)")
    if peer_params:
        lr50 = _percentiles(lat["LeRobot DDIM-10"])[0]
        print(f"ours DDIM-10 vs LeRobot DDIM-10:              {lr50 / ours10:.2f}x faster (goal >= 1.5x)")
        print(f"ours DDIM-10 int8 vs LeRobot DDIM-10 float32: {lr50 / int8:.2f}x faster (goal >= 1.5x)")
    return 0


def _start_peer(args):
    cmd = [str(PEER_PY), str(ROOT / "bench" / "lerobot_diffusion_latency.py"), "--serve"]
    cmd += ["--down-dims", args.down_dims, "--threads", str(args.threads), "--steps", "10"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        print("LeRobot peer failed to start (see its stderr above)", file=sys.stderr)
        return None
    proc.params = json.loads(line)["params"]
    return proc


if __name__ == "__main__":
    sys.exit(main())
