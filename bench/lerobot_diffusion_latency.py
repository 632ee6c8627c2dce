"""Peer half of bench/policy_latency.py: LeRobot's DiffusionPolicy, run inside .venv-lerobot.

Prints one JSON line: {"params": N, "latencies_ms": [...]} for obs -> action chunk at batch 1
through `policy.diffusion.generate_actions` (the model call select_action makes when its action
queue is empty; normalization is a separate processor in LeRobot 0.4 and is not timed).

With --serve it prints {"params": N} and then answers each line on stdin with one timed call
(a line holding the latency in ms), so the caller can interleave it with its own calls: on a
shared machine whose load changes by the second, only interleaved timings are comparable.
"""

import argparse
import json
import sys
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--down-dims", default="256,512,1024")
    ap.add_argument("--state-dim", type=int, default=10)
    ap.add_argument("--env-dim", type=int, default=10)
    ap.add_argument("--action-dim", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    cfg = DiffusionConfig(
        n_obs_steps=2,
        horizon=16,
        n_action_steps=8,
        input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(args.state_dim,)),
            "observation.environment_state": PolicyFeature(type=FeatureType.ENV, shape=(args.env_dim,)),
        },
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(args.action_dim,))},
        down_dims=tuple(int(d) for d in args.down_dims.split(",")),
        noise_scheduler_type="DDIM",
        num_inference_steps=args.steps,
        device="cpu",
    )
    policy = DiffusionPolicy(cfg).eval()
    params = sum(p.numel() for p in policy.parameters())
    batch = {
        "observation.state": torch.randn(1, 2, args.state_dim),
        "observation.environment_state": torch.randn(1, 2, args.env_dim),
    }
    if args.serve:
        print(json.dumps({"params": params}), flush=True)
        with torch.inference_mode():
            for _ in sys.stdin:
                t0 = time.perf_counter()
                policy.diffusion.generate_actions(batch)
                print(f"{(time.perf_counter() - t0) * 1e3:.4f}", flush=True)
        return
    lat = []
    with torch.inference_mode():
        for i in range(args.iters + 3):
            t0 = time.perf_counter()
            out = policy.diffusion.generate_actions(batch)
            if i >= 3:
                lat.append((time.perf_counter() - t0) * 1e3)
    assert out.shape == (1, 8, args.action_dim), out.shape
    print(json.dumps({"params": params, "latencies_ms": lat}))


if __name__ == "__main__":
    main()
