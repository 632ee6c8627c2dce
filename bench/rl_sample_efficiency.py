"""Sample efficiency: success (push) and return (Hopper-v5) against env steps, ours vs SB3 SAC, one run.

    make bench-env                                   # once: stable-baselines3 in .venv
    robot-rl sim collect --task push --quality poor --episodes 20 --out runs/push_poor20.zarr
    robot-rl train diffusion --data runs/push_poor20.zarr --task push --out runs/bc_poor20 --steps 20000
    .venv/bin/python bench/rl_sample_efficiency.py --data runs/push_poor20.zarr \
        --diffusion runs/bc_poor20/policy --budget 50000 --seeds 3 --hopper-steps 20000

Push, state-based, sparse reward (1 on success, which ends the episode), everyone on the same
budget of env steps and the same evaluation (deterministic policy, --eval-episodes seeded
episodes every --eval-every env steps):

    rlpd   our SAC with the RLPD recipe + the offline demos (50/50 batches, 10 LayerNorm critics)
    dsrl   our SAC over the initial noise of the frozen diffusion policy (--diffusion)
    sb3    stable-baselines3 SAC from scratch (its defaults; learning_starts 100)

Hopper-v5 (gymnasium's MuJoCo env): our SAC/RLPD-recipe learner from scratch against SB3 SAC at
--hopper-steps env steps, and our SAC with SB3's settings (2 plain critics, target entropy -|A|,
100 uniform steps, UTD 1: the implementations compared, not the recipes); mean return of 10
evaluation episodes. (SB3 was measured elsewhere at
298 return after 20,000 steps.) Every learner prints its curve as it goes, then a table.
The CPU budget of a full run is large (UTD 20 with 10 critics); --utd trades it for sample
efficiency and is printed with the results.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from robot_rl.gl import configure_gl  # noqa: E402

configure_gl()  # before gymnasium or sim import mujoco (robot_rl/gl.py)

from robot_rl.training.cli import DEFAULT_STATE_KEYS as STATE_KEYS  # noqa: E402

HOPPER_LEARNERS = {  # --hopper-learners name -> its row in the printout
    "ours": "ours (SAC, RLPD recipe, UTD {utd})",
    "ours-sb3-settings": "ours (SAC, SB3's settings, UTD 1)",
    "sb3": "SB3 SAC",
}


def push_env(max_steps: int = 0):
    import sim

    return sim.make_env("push", reward="sparse", **({"max_episode_steps": max_steps} if max_steps else {}))


def chunk_actor(policy):
    """A (To, Ta) chunk policy as a per-step function (executes each chunk's Ta actions)."""
    from collections import deque

    state = {"queue": deque(), "hist": deque(maxlen=policy.obs_horizon)}

    def act(obs):
        if not state["hist"]:
            policy.reset()
            state["hist"].extend([obs] * policy.obs_horizon)
        state["hist"].append(obs)
        if not state["queue"]:
            window = {
                k: torch.as_tensor(np.stack([o[k] for o in state["hist"]]))[None] for k in policy.obs_spec
            }
            state["queue"].extend(policy.predict_action(window)[0].numpy())
        return state["queue"].popleft()

    def reset_wrapper(obs_episode_start):  # noqa: ARG001
        state["queue"].clear()
        state["hist"].clear()

    act.reset = reset_wrapper
    return act


def _evaluate_chunk_policy(policy, episodes: int) -> float:
    act = chunk_actor(policy)
    env = push_env()
    ok = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=100_000 + i)
        act.reset(obs)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs))
            done = terminated or truncated
        ok += bool(info.get("is_success", False))
    return ok / episodes


def ours_push(kind: str, args, seed: int, out: Path) -> list[tuple[int, float]]:
    from types import SimpleNamespace

    from robot_rl.algorithms.dsrl import DSRLConfig, DSRLPolicy, NoiseActionEnv, noise_actor_policy
    from robot_rl.algorithms.sac import SAC, SACConfig
    from robot_rl.training.online import OnlineConfig, run_online
    from robot_rl.training.rl_cli import offline_buffer, policy_from_data

    torch.manual_seed(seed)
    env = push_env()
    offline = None
    if kind == "rlpd":
        ns = SimpleNamespace(data=args.data, reward="sparse", reward_offset=0.0, discount=0.99)
        offline, obs_keys = offline_buffer(ns, list(STATE_KEYS))
        policy = policy_from_data(offline, obs_keys, (256, 256), env.action_space.low, env.action_space.high)
        algo = SAC(policy, SACConfig(utd=args.utd))
        evaluate_policy = lambda p: _evaluate_chunk_policy(p, args.eval_episodes)  # noqa: E731
    else:
        from robot_rl.policies import load_policy

        diffusion = load_policy(args.diffusion)
        env = NoiseActionEnv(env, diffusion)
        policy = noise_actor_policy(diffusion, DSRLConfig())
        algo = SAC(policy, SACConfig(critic_members=2, utd=args.utd))
        evaluate_policy = lambda p: _evaluate_chunk_policy(DSRLPolicy(diffusion, p), args.eval_episodes)  # noqa: E731
    curve: list[tuple[int, float]] = []

    def evaluator(p, step):
        rate = evaluate_policy(p)
        curve.append((step, rate))
        print(f"  {kind} seed {seed}: {step} env steps, success {rate:.0%}", flush=True)
        return {"success_rate": rate}

    config = OnlineConfig(
        env_steps=args.budget, utd=args.utd, eval_every=args.eval_every, checkpoint_every=args.budget,
        offline_fraction=0.5 if kind == "rlpd" else 0.0, seed=seed, progress=False,
    )  # fmt: skip
    run_online(algo, env, out / f"{kind}_{seed}", config, offline=offline, evaluator=evaluator)
    return curve


def sb3_push(args, seed: int) -> list[tuple[int, float]]:
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    def flat(env):
        return gym.wrappers.FlattenObservation(gym.wrappers.FilterObservation(env, list(STATE_KEYS)))

    model = SAC("MlpPolicy", flat(push_env()), seed=seed, verbose=0)
    eval_env = flat(push_env())
    curve: list[tuple[int, float]] = []

    def evaluate(step):
        ok = 0
        for i in range(args.eval_episodes):
            obs, _ = eval_env.reset(seed=100_000 + i)
            done = False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = eval_env.step(action)
                done = terminated or truncated
            ok += bool(info.get("is_success", False))
        curve.append((step, ok / args.eval_episodes))
        print(f"  sb3 seed {seed}: {step} env steps, success {curve[-1][1]:.0%}", flush=True)

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % args.eval_every == 0:
                evaluate(self.num_timesteps)
            return True

    evaluate(0)
    model.learn(total_timesteps=args.budget, callback=Every())
    return curve


class DictObs:
    """Hopper's array observation as {OBS: array}, the shape our learners read."""

    def __new__(cls, env):
        import gymnasium as gym

        from robot_rl.algorithms.common import OBS

        class _Wrapper(gym.ObservationWrapper):
            def __init__(self, env):
                super().__init__(env)
                self.observation_space = gym.spaces.Dict({OBS: env.observation_space})

            def observation(self, observation):
                return {OBS: observation.astype(np.float32)}

        return _Wrapper(env)


def hopper_return(act, episodes: int = 10) -> float:
    import gymnasium as gym

    env = gym.make("Hopper-v5")
    total = 0.0
    for i in range(episodes):
        obs, _ = env.reset(seed=100_000 + i)
        done = False
        while not done:
            obs, r, terminated, truncated, _ = env.step(act(obs))
            total += r
            done = terminated or truncated
    return total / episodes


def ours_hopper(args, seed: int, out: Path, sb3_settings: bool = False) -> float:
    """Our SAC learner on Hopper-v5: the RLPD recipe (10 LayerNorm critics, random-pair target,
    target entropy -|A|/2, 5000 uniform steps first, --utd), or with `sb3_settings` SB3 SAC's
    defaults (2 plain critics, min of both, target entropy -|A|, 100 uniform steps, UTD 1), which
    compares the implementations rather than the recipes."""
    import gymnasium as gym

    from robot_rl.algorithms.common import OBS
    from robot_rl.algorithms.sac import SAC, SACConfig
    from robot_rl.models.actor import ActorPolicy
    from robot_rl.training.online import OnlineConfig, run_online

    torch.manual_seed(seed)
    env = DictObs(gym.make("Hopper-v5"))
    policy = ActorPolicy([OBS], [11], [-1.0] * 3, [1.0] * 3)
    if sb3_settings:
        sac = SACConfig(critic_members=2, target_members=2, layer_norm=False, target_entropy=-3.0, utd=1)
        random_steps, learning_starts = 100, 100
    else:
        sac = SACConfig(utd=args.utd)
        random_steps, learning_starts = min(5000, args.hopper_steps // 4), 0
    algo = SAC(policy, sac)
    config = OnlineConfig(
        env_steps=args.hopper_steps, random_steps=random_steps, learning_starts=learning_starts,
        utd=sac.utd, eval_every=0, checkpoint_every=args.hopper_steps, seed=seed, progress=False,
    )  # fmt: skip
    run_online(algo, env, out / f"hopper_{seed}_{'sb3' if sb3_settings else 'rlpd'}", config)
    with torch.no_grad():
        return hopper_return(
            lambda o: policy.predict_action({OBS: torch.as_tensor(o)[None, None]})[0, 0].numpy()
        )


def sb3_hopper(args, seed: int) -> float:
    import gymnasium as gym
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", gym.make("Hopper-v5"), seed=seed, verbose=0)
    model.learn(total_timesteps=args.hopper_steps)
    return hopper_return(lambda o: model.predict(o, deterministic=True)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="", help="poor push demos (episode store) for RLPD")
    parser.add_argument(
        "--diffusion", default="", help="diffusion policy dir (trained on those demos) for DSRL"
    )
    parser.add_argument("--budget", type=int, default=50_000, help="push env steps per learner and seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--hopper-steps", type=int, default=20_000)
    parser.add_argument("--utd", type=int, default=20, help="updates per env step for our learners")
    parser.add_argument("--parts", default="push,hopper")
    parser.add_argument(
        "--hopper-learners",
        default="ours,ours-sb3-settings,sb3",
        help="any of ours (RLPD recipe), ours-sb3-settings (our SAC with SB3's defaults), sb3",
    )
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed+seeds-1")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    hopper_learners = [h.strip() for h in args.hopper_learners.split(",") if h.strip()]
    unknown = set(hopper_learners) - set(HOPPER_LEARNERS)
    if unknown:
        parser.error(f"--hopper-learners: unknown {', '.join(sorted(unknown))}")
    results: dict[str, list] = {}
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="rl_bench_") as tmp:
        out = Path(tmp)
        if "push" in parts:
            if args.diffusion:
                from robot_rl.policies import load_policy

                base = _evaluate_chunk_policy(load_policy(args.diffusion), args.eval_episodes)
                print(f"diffusion policy alone ({args.diffusion}): success {base:.0%}", flush=True)
                results["diffusion (frozen, no RL)"] = [[(0, base)]]
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                if args.data:
                    results.setdefault("rlpd + offline", []).append(ours_push("rlpd", args, seed, out))
                if args.diffusion:
                    results.setdefault("dsrl", []).append(ours_push("dsrl", args, seed, out))
                results.setdefault("sb3 sac (scratch)", []).append(sb3_push(args, seed))
        if "hopper" in parts:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for learner in hopper_learners:
                    if learner == "sb3":
                        ret = sb3_hopper(args, seed)
                    else:
                        ret = ours_hopper(args, seed, out, sb3_settings=learner == "ours-sb3-settings")
                    print(f"  hopper {learner} seed {seed}: return {ret:.1f}", flush=True)
                    results.setdefault(f"hopper {learner}", []).append(ret)
    if any(not name.startswith("hopper") for name in results):
        print(f"\npush (sparse), success vs env steps, mean over {args.seeds} seed(s), UTD {args.utd}:")
    for name, curves in results.items():
        if name.startswith("hopper"):
            continue
        steps = sorted({s for c in curves for s, _ in c})
        cells = []
        for s in steps:
            vals = [r for c in curves for t, r in c if t == s]
            cells.append(f"{s}:{np.mean(vals):.0%}")
        print(f"  {name:<26} " + "  ".join(cells))
    hopper = {k[len("hopper ") :]: v for k, v in results.items() if k.startswith("hopper ")}
    if hopper:
        sb3 = np.mean(hopper["sb3"]) if "sb3" in hopper else 0.0
        print(f"\nHopper-v5 after {args.hopper_steps} env steps, return over {args.seeds} seed(s):")
        for learner, returns in hopper.items():
            mean = np.mean(returns)
            ratio = f"   ratio to SB3 {mean / sb3:.2f}x" if learner != "sb3" and sb3 > 0 else ""
            each = ", ".join(f"{r:.0f}" for r in returns)
            print(
                f"  {HOPPER_LEARNERS[learner].format(utd=args.utd):<36} mean {mean:7.1f}  (seeds: {each}){ratio}"
            )
    print(f"\nwall time {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
