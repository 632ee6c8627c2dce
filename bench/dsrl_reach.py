"""How far can DSRL steer this diffusion policy? Success per start state under random noise.

DSRL (robot_rl/algorithms/dsrl.py) only chooses the initial noise of a frozen diffusion
sampler, so it can lift start states where some noise succeeds and never the others. This
rolls the frozen policy out from each of --states start states (seeds from --first-seed),
--tries times each, with fresh N(0, std^2 I) noise every chunk (std 1 by default, clipped at
--noise-max), and prints the success per state, the mean, and the share of states where any
try succeeded: a rough upper bound on what a noise-steering learner can reach from this policy.

    MUJOCO_GL=egl .venv/bin/python bench/dsrl_reach.py --diffusion runs/bc/policy --task push \\
        --states 20 --tries 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from robot_rl.cli_types import non_negative_int, positive_float, positive_int

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--diffusion", required=True, help="a diffusion policy directory")
    p.add_argument("--task", default="push")
    p.add_argument("--states", type=positive_int, default=20, help="start states (env seeds)")
    p.add_argument("--tries", type=positive_int, default=5, help="rollouts per start state")
    p.add_argument("--first-seed", type=non_negative_int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws")
    p.add_argument("--noise-std", type=positive_float, default=1.0, help="std of the noise draws")
    p.add_argument(
        "--noise-max", type=positive_float, default=3.0, help="draws are clipped to [-max, max] per component"
    )
    args = p.parse_args(argv)

    from robot_rl.gl import configure_gl

    configure_gl()
    import numpy as np
    import torch
    from tqdm import tqdm

    import sim
    from robot_rl.algorithms.dsrl import NoiseActionEnv
    from robot_rl.policies import load_policy

    torch.set_num_threads(1)
    diffusion = load_policy(args.diffusion)
    env = NoiseActionEnv(sim.make_env(args.task, reward="sparse"), diffusion, noise_max=args.noise_max)
    rng = np.random.default_rng(args.seed)
    rates = []
    bar = tqdm(total=args.states * args.tries, desc="rollouts")
    for seed in range(args.first_seed, args.first_seed + args.states):
        wins = 0
        for _ in range(args.tries):
            env.reset(seed=seed)
            done, info = False, {}
            while not done:
                noise = args.noise_std * rng.standard_normal(env.action_space.shape)
                noise = np.clip(noise, -args.noise_max, args.noise_max).astype(np.float32)
                _, _, terminated, truncated, info = env.step(noise)
                done = terminated or truncated
            wins += bool(info.get("is_success", False))
            bar.update()
        rates.append(wins / args.tries)
        tqdm.write(f"seed {seed}: {wins}/{args.tries}")
    bar.close()
    rates = np.array(rates)
    print(
        f"{args.diffusion} on {args.task}, noise std {args.noise_std} clipped at {args.noise_max}: "
        f"success {rates.mean():.0%} over {rates.size * args.tries} rollouts"
    )
    print(
        f"start states with any success: {(rates > 0).mean():.0%} ({int((rates > 0).sum())} of {rates.size})"
    )
    print(f"start states with success in at least half the tries: {(rates >= 0.5).mean():.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
