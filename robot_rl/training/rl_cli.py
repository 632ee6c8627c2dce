"""`robot-rl train iql | calql | rlpd | wsrl | dsrl ...`: offline RL and offline-to-online fine-tuning.

    robot-rl train iql   --data demos.zarr --out runs/iql --steps 100000 [--task push --env-steps 20000]
    robot-rl train calql --data demos.zarr --out runs/calql --steps 100000
    robot-rl train rlpd  --task push --data demos.zarr --out runs/rlpd --env-steps 50000 --utd 20
    robot-rl train wsrl  --task push --init runs/calql --out runs/wsrl --env-steps 50000 --warmup-steps 5000
    robot-rl train dsrl  --task push --diffusion runs/bc/policy --out runs/dsrl --env-steps 50000

IQL and Cal-QL train offline through the one trainer (robot_rl/training/trainer.py: run.yaml,
checkpoints/, policy/, TensorBoard, resume after a kill); with --env-steps > 0 they then continue
online in <out>/online on a 50/50 mix of offline and online data. RLPD, WSRL and DSRL train online
(robot_rl/training/online.py: the same checkpoint and resume rules, curve.csv + curve.png).
Rewards are the task's sparse success signal unless --reward says otherwise; --reward-classifier
replaces it with a trained success classifier on camera frames. Running the same command again
continues from the last checkpoint.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from types import SimpleNamespace

from robot_rl.cli_types import (
    float_in,
    fraction,
    int_at_least,
    non_negative_int,
    positive_float,
    positive_int,
)

LEARNERS = {
    "iql": "offline IQL (expectile V, AWR actor), optional online fine-tuning",
    "calql": "offline Cal-QL (CQL calibrated by Monte-Carlo returns), optional online fine-tuning",
    "rlpd": "online SAC with the RLPD recipe (50/50 offline data, LayerNorm 10-critic ensemble, UTD 20)",
    "wsrl": "online SAC warm-started from a Cal-QL/IQL run, short warm-up, no offline data retained",
    "dsrl": "online SAC over the initial noise of a frozen diffusion policy",
}


def add_parsers(sub) -> None:
    """Add the RL learners to `robot-rl train`'s subcommands (called by robot_rl/training/cli.py)."""
    from robot_rl.training.cli import DEFAULT_STATE_KEYS

    for name, help_text in LEARNERS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_rl=True)
        p.add_argument("--out", required=True, help="run directory (resumed when it holds a checkpoint)")
        p.add_argument("--task", default="push" if name in ("rlpd", "wsrl", "dsrl") else "", help="sim task")
        offline_needed = name in ("iql", "calql")
        p.add_argument(
            "--data", required=offline_needed, default="", help="episode store with offline transitions"
        )
        p.add_argument(
            "--obs-keys",
            default=None,
            help=f"comma-separated state keys (default: those of {','.join(DEFAULT_STATE_KEYS)} the data or env has)",
        )
        if name in ("iql", "calql", "rlpd"):
            add_relative_to_argument(p)
        p.add_argument("--hidden", default="256,256", help="MLP widths of actor and critics")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--discount", type=fraction, default=0.99)
        p.add_argument(
            "--n-step",
            type=positive_int,
            default=1,
            help="rewards per TD target (n-step returns, offline and online data alike; 1: one-step TD)",
        )
        p.add_argument("--batch-size", type=positive_int, default=256)
        p.add_argument("--reward", choices=["sparse", "dense"], default="sparse", help="the env's reward")
        p.add_argument(
            "--reward-offset",
            type=float_in(-math.inf),
            default=0.0,
            help="subtracted from every step's reward, online and offline (1 with sparse rewards: "
            "-1 a step until success, as the DSRL authors run robomimic)",
        )
        p.add_argument(
            "--reward-classifier", default="", help="a trained reward classifier dir (replaces it)"
        )
        p.add_argument("--env-steps", type=non_negative_int, default=0 if offline_needed else 50_000)
        p.add_argument("--utd", type=positive_int, default=20 if name in ("rlpd", "wsrl", "dsrl") else 1)
        p.add_argument(
            "--eval-every", type=non_negative_int, default=5000, help="env steps (online) / steps (offline)"
        )
        p.add_argument("--eval-episodes", type=positive_int, default=20)
        p.add_argument(
            "--learning-starts",
            type=non_negative_int,
            default=0,
            help="online env steps of acting before the first gradient update",
        )
        p.add_argument("--checkpoint-every", type=positive_int, default=5000)
        p.add_argument("--max-episode-steps", type=non_negative_int, default=0, help="0: the task's default")
        p.add_argument("--no-progress", action="store_true")
        p.add_argument(
            "--threads",
            type=positive_int,
            default=1,
            help="torch CPU threads (1 avoids spin-waiting on busy CPUs)",
        )
        if offline_needed:
            p.add_argument("--steps", type=positive_int, default=100_000, help="offline gradient steps")
        if name == "rlpd":
            p.add_argument("--critics", type=int_at_least(2), default=10)
            p.add_argument("--offline-fraction", type=fraction, default=0.5)
            p.add_argument(
                "--random-steps",
                type=non_negative_int,
                default=0,
                help="uniform actions first (no data: 5000)",
            )
        if name in ("rlpd", "dsrl"):
            add_sac_arguments(p)
        if name == "wsrl":
            p.add_argument("--init", required=True, help="a Cal-QL or IQL run directory (train calql ...)")
            p.add_argument("--warmup-steps", type=non_negative_int, default=5000)
        if name == "dsrl":
            p.add_argument("--diffusion", required=True, help="a diffusion policy directory (frozen)")
            p.add_argument("--noise-max", type=positive_float, default=1.5)
            p.add_argument("--critics", type=int_at_least(2), default=2)
            p.add_argument("--random-steps", type=non_negative_int, default=0)
    p = sub.add_parser(
        "reward-classifier", help="success classifier on camera frames (a learned sparse reward)"
    )
    p.set_defaults(_rl=True)
    p.add_argument("--data", required=True, help="episode store with camera frames")
    p.add_argument("--camera", default="front")
    p.add_argument("--out", required=True, help="classifier directory (use with --reward-classifier)")
    p.add_argument("--steps", type=positive_int, default=2000)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument(
        "--positive-window", type=positive_int, default=3, help="last frames of a successful episode"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch

    from robot_rl.gl import configure_gl

    configure_gl()  # before anything imports mujoco (robot_rl/gl.py)

    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, getattr(args, "threads", 1)))
    learners = {"iql": _offline, "calql": _offline, "rlpd": _rlpd, "wsrl": _wsrl, "dsrl": _dsrl}
    return learners.get(args.learner, _reward_classifier)(args)


def _reward_classifier(args) -> int:
    from robot_rl import keys
    from robot_rl.data.store import EpisodeStore
    from robot_rl.models.reward_classifier import RewardClassifierConfig, train_reward_classifier

    store = EpisodeStore.open(args.data, mode="r")
    spec = store.spec.get(keys.image_key(args.camera))
    size = int(spec.shape[0]) if spec is not None else 96
    config = RewardClassifierConfig(camera=args.camera, image_size=size, positive_window=args.positive_window)
    model, stats = train_reward_classifier(
        store,
        config,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.no_progress,
    )
    model.save(args.out)
    print(", ".join(f"{k}={v:.3g}" for k, v in stats.items()))
    print(f"reward classifier: {args.out}   (train ... --reward-classifier {args.out})")
    return 0


# ---- shared pieces ---------------------------------------------------------------------------------
def add_relative_to_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--relative-to",
        default=None,
        metavar="KEY",
        help="the actor outputs changes from this state key (joint_pos: arm targets = joint_pos + "
        "action, gripper absolute), bounded by the data's per-step changes (no data: what the joint "
        "can move in one step); exploration then moves the arm a little from where it is. "
        "Default: absolute targets",
    )


def hidden_sizes(args) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in args.hidden.split(",") if w.strip())
    except ValueError as exc:
        raise ValueError(f"--hidden must be comma-separated integers, got {args.hidden!r}") from exc
    if not widths or min(widths) < 1:
        raise ValueError(f"--hidden must be comma-separated positive integers, got {args.hidden!r}")
    return widths


def add_sac_arguments(p: argparse.ArgumentParser) -> None:
    """SAC's temperature and actor-update knobs (train rlpd / dsrl and learn): read back by sac_config."""
    p.add_argument(
        "--target-entropy",
        type=float_in(-math.inf),
        default=None,
        help="SAC's entropy target in nats (default: -action_dim / 2; the DSRL authors use 0)",
    )
    p.add_argument(
        "--init-temperature",
        type=positive_float,
        default=1.0,
        help="SAC's initial entropy weight alpha (tuned towards the target from there)",
    )
    p.add_argument(
        "--no-entropy-backup",
        action="store_true",
        help="leave the entropy bonus out of the TD target (Q then sums rewards only)",
    )
    p.add_argument(
        "--actor-every",
        type=non_negative_int,
        default=0,
        help="critic updates per actor and temperature update (0, the default: --utd, once per env "
        "step as RLPD does; 1 updates the actor with every critic step, as SB3 and the DSRL authors do)",
    )


def sac_config(args, hidden):
    """The SACConfig the command line asks for (add_sac_arguments' options included)."""
    from robot_rl.algorithms.sac import SACConfig

    return SACConfig(
        hidden=hidden,
        critic_members=args.critics,
        gamma=args.discount,
        utd=args.utd,
        target_entropy=args.target_entropy,
        init_temperature=args.init_temperature,
        backup_entropy=not args.no_entropy_backup,
        actor_every=args.actor_every,
    )


def _make_env(args, reward_classifier: bool = True):
    import sim

    overrides = {"reward": args.reward}
    if args.max_episode_steps:
        overrides["max_episode_steps"] = args.max_episode_steps
    if args.reward_classifier and reward_classifier:
        from robot_rl.models.reward_classifier import ClassifierReward, RewardClassifier

        classifier = RewardClassifier.load(args.reward_classifier)
        overrides["cameras"] = (classifier.camera,)
        env = ClassifierReward(sim.make_env(args.task, **overrides), classifier)
    else:
        env = sim.make_env(args.task, **overrides)
    if args.reward_offset:
        from gymnasium.wrappers import TransformReward

        env = TransformReward(env, lambda reward, offset=args.reward_offset: float(reward) - offset)
    return env


def offline_buffer(args, requested: list[str] | None, n_step: int = 1):
    """All transitions of --data, and the state keys taken (`select_obs_keys`). With --reward
    sparse the stored rewards are relabelled to the task's sparse signal (1.0 on the terminal
    success step, else 0), as the online env gives them."""

    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.data.store import EpisodeStore

    store = EpisodeStore.open(args.data, mode="r")
    keys_here = select_obs_keys(requested, store.keys, f"{args.data}:", "in the store")
    reward = learner_reward(args.reward, args.reward_offset)
    buffer = ReplayBuffer.from_store(store, tuple(keys_here), args.discount, n_step, reward=reward)
    return buffer, keys_here


def learner_reward(kind: str, offset: float):
    """episode -> the rewards a learner trains on: the sparse success signal (1.0 on the terminal
    success step, else 0) or the stored dense reward, minus --reward-offset."""
    import numpy as np

    from robot_rl import keys

    def reward(episode):
        r = episode[keys.TERMINAL].astype(np.float32) if kind == "sparse" else episode[keys.REWARD]
        return r - offset

    return reward


def policy_from_data(buffer, obs_keys: list[str], hidden, env_low=None, env_high=None, relative_to=None):
    """Normaliser from the data; action bounds = data range + 10% margin (inside the env's bounds).
    With `relative_to` (--relative-to) the bounds are those of the data's actions minus that
    observation in its dims (the per-step changes the demonstrations made)."""
    import numpy as np

    from robot_rl import keys
    from robot_rl.algorithms.common import REPLAY_OBS
    from robot_rl.models.actor import ActorPolicy

    check_relative_to(relative_to, obs_keys)
    data = buffer.take(np.arange(len(buffer)))
    obs = np.concatenate([data[REPLAY_OBS + k] for k in obs_keys], axis=1)
    dims = [data[REPLAY_OBS + k].shape[1] for k in obs_keys]
    act = data[keys.ACTION].copy()
    k = 0  # the dims that are changes
    if relative_to is not None:
        k = data[REPLAY_OBS + relative_to].shape[1]
        act[:, :k] -= data[REPLAY_OBS + relative_to]
    lo, hi = act.min(0), act.max(0)
    margin = np.maximum(0.1 * (hi - lo), 0.05)
    lo, hi = lo - margin, hi + margin
    if env_low is not None:  # the env's bounds are absolute: they bound only the absolute dims
        lo[k:], hi[k:] = np.maximum(lo[k:], env_low[k:]), np.minimum(hi[k:], env_high[k:])
    return ActorPolicy(
        obs_keys, dims, lo, hi, hidden, obs.mean(0), obs.std(0) + 1e-3, relative_to=relative_to
    )


def _policy_from_env(env, requested: list[str] | None, hidden, relative_to=None):
    """Bounds from the env's action space; with `relative_to`, the change one policy step can
    make (the arm env's max_action_step: velocity limit x step) in that key's dims."""
    from robot_rl.models.actor import ActorPolicy

    obs_keys = select_obs_keys(requested, list(env.observation_space.spaces), "", "observed by the env")
    check_relative_to(relative_to, obs_keys)
    dims = [env.observation_space[k].shape[0] for k in obs_keys]
    low, high = env.action_space.low.copy(), env.action_space.high.copy()
    if relative_to is not None:
        k = env.observation_space[relative_to].shape[0]
        step = getattr(env.unwrapped, "max_action_step", None)
        if step is None:
            raise ValueError(
                f"--relative-to without --data needs an env with max_action_step ({env.unwrapped})"
            )
        low[:k], high[:k] = -step[:k], step[:k]
    return ActorPolicy(obs_keys, dims, low, high, hidden, relative_to=relative_to)


def check_relative_to(relative_to: str | None, obs_keys: list[str]) -> None:
    if relative_to is not None and relative_to not in obs_keys:
        raise ValueError(
            f"--relative-to {relative_to}: not one of the observation keys {','.join(obs_keys)} "
            "(the actor must see what its actions are relative to; add it to --obs-keys)"
        )


def obs_keys_of(args) -> list[str] | None:
    """--obs-keys as a list of whole keys (the RL learners' actors and critics read whole keys;
    KEY[a:b] slices are for `train diffusion`); None when not given: the defaults."""
    if args.obs_keys is None:
        return None
    entries = [k.strip() for k in args.obs_keys.split(",") if k.strip()]
    if not entries:
        raise ValueError("--obs-keys: no key given")
    sliced = [k for k in entries if "[" in k or "]" in k]
    if sliced:
        raise ValueError(
            f"--obs-keys: {', '.join(sliced)}: the RL learners take whole keys "
            "(KEY[a:b] slices are for train diffusion)"
        )
    return entries


def select_obs_keys(requested: list[str] | None, available, where: str, has: str) -> list[str]:
    """The requested keys, each of which must be available; without a request, those of the
    default keys that are (reach has no object). `where` and `has` word the error."""
    from robot_rl.training.cli import DEFAULT_STATE_KEYS

    available = list(available)
    where = f"{where} " if where else ""
    if requested is None:
        chosen = [k for k in DEFAULT_STATE_KEYS if k in available]
        if not chosen:
            raise ValueError(
                f"{where}none of the default --obs-keys {','.join(DEFAULT_STATE_KEYS)} is {has} "
                f"({', '.join(available)}): name the keys to use"
            )
        return chosen
    missing = [k for k in requested if k not in available]
    if missing:
        raise ValueError(f"{where}--obs-keys {', '.join(missing)} not {has} ({', '.join(available)})")
    return requested


def _evaluator(args):
    if not args.task:
        return None
    from robot_rl.training.cli import make_evaluator

    return make_evaluator(args.task, args.eval_episodes, 1, SimpleNamespace(image_keys=[]))


def _online_config(args, **changes):
    from robot_rl.training.online import OnlineConfig

    values = dict(
        env_steps=args.env_steps,
        utd=args.utd,
        batch_size=args.batch_size,
        discount=args.discount,
        n_step=args.n_step,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        progress=not args.no_progress,
        learning_starts=args.learning_starts,
    )
    values.update(changes)
    return OnlineConfig(**values)


def _run_config(args, **extra) -> dict:
    skip = {
        "out",
        "no_progress",
        "env_steps",
        "steps",
        "_run",
        "_rl",
        "eval_every",
        "eval_episodes",
        "threads",
    }
    return {**{k: v for k, v in vars(args).items() if k not in skip and not callable(v)}, **extra}


def _finish(curve, out) -> int:
    last = curve[-1] if curve else {}
    print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()))
    print(f"policy: {out}/policy   curve: {out}/curve.png")
    return 0


# ---- learners ---------------------------------------------------------------------------------------
def _offline(args) -> int:
    from robot_rl.algorithms.calql import CalQL, CalQLConfig
    from robot_rl.algorithms.iql import IQL, IQLConfig
    from robot_rl.training.online import run_online
    from robot_rl.training.trainer import Trainer, TrainerConfig

    hidden = hidden_sizes(args)
    buffer, obs_keys = offline_buffer(args, obs_keys_of(args), args.n_step)
    policy = policy_from_data(buffer, obs_keys, hidden, relative_to=args.relative_to)
    if args.learner == "iql":
        algo = IQL(policy, IQLConfig(hidden=hidden, gamma=args.discount, batch_size=args.batch_size))
    else:
        algo = CalQL(policy, CalQLConfig(hidden=hidden, gamma=args.discount, batch_size=args.batch_size))
    data = TransitionDataset(buffer, policy)
    trainer_cfg = TrainerConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        val_every=0,
        eval_every=args.eval_every if args.task else 0,
        checkpoint_every=args.checkpoint_every,
        device="cpu",
        progress=not args.no_progress,
    )
    run_config = _run_config(args)
    metrics = Trainer(
        algo, data, args.out, trainer_cfg, evaluator=_evaluator(args), run_config=run_config
    ).fit()
    print("offline final: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    if args.env_steps <= 0:
        print(f"policy: {args.out}/policy")
        return 0
    env = _make_env(args)
    out = Path(args.out) / "online"
    curve = run_online(
        algo,
        env,
        out,
        _online_config(args),
        offline=buffer,
        evaluator=_evaluator(args),
        run_config=run_config,
    )
    return _finish(curve, out)


def _rlpd(args) -> int:
    from robot_rl.algorithms.sac import SAC
    from robot_rl.training.online import run_online

    hidden = hidden_sizes(args)
    env = _make_env(args)
    buffer = None
    if args.data:
        buffer, obs_keys = offline_buffer(args, obs_keys_of(args), args.n_step)
        low, high = env.action_space.low, env.action_space.high
        policy = policy_from_data(buffer, obs_keys, hidden, low, high, relative_to=args.relative_to)
    else:
        policy = _policy_from_env(env, obs_keys_of(args), hidden, relative_to=args.relative_to)
    algo = SAC(policy, sac_config(args, hidden))
    config = _online_config(args, random_steps=args.random_steps, offline_fraction=args.offline_fraction)
    curve = run_online(
        algo, env, args.out, config, offline=buffer, evaluator=_evaluator(args), run_config=_run_config(args)
    )
    return _finish(curve, args.out)


def _wsrl(args) -> int:
    import yaml

    from robot_rl.algorithms.wsrl import WSRLConfig, warm_start
    from robot_rl.models.actor import ActorPolicy
    from robot_rl.training.checkpoint import load_checkpoint
    from robot_rl.training.online import run_online
    from robot_rl.training.trainer import STATE_KIND

    init = Path(args.init)
    latest = init / "checkpoints" / "latest"
    if not latest.exists():
        raise FileNotFoundError(f"{init}: no checkpoints/latest (train calql --out {init} first)")
    tensors, _ = load_checkpoint(init / "checkpoints" / latest.read_text().strip(), kind=STATE_KIND)
    pretrained = {k[5:]: v for k, v in tensors.items() if k.startswith("algo.")}
    saved = yaml.safe_load((init / "run.yaml").read_text()) or {}
    hidden = tuple(int(w) for w in str(saved.get("run", {}).get("hidden", args.hidden)).split(","))
    policy = ActorPolicy.load(init / "policy")
    from robot_rl.algorithms.sac import SACConfig

    sac = SACConfig(
        hidden=hidden, critic_members=2, target_members=2, layer_norm=False, gamma=args.discount, utd=args.utd
    )
    algo = warm_start(
        pretrained, policy, WSRLConfig(sac=sac, warmup_steps=args.warmup_steps), source=str(init)
    )
    env = _make_env(args)
    config = _online_config(args, warmup_steps=args.warmup_steps, offline_fraction=0.0)
    curve = run_online(algo, env, args.out, config, evaluator=_evaluator(args), run_config=_run_config(args))
    return _finish(curve, args.out)


def _dsrl(args) -> int:
    from robot_rl.algorithms.dsrl import DSRLConfig, DSRLPolicy, NoiseActionEnv, noise_actor_policy
    from robot_rl.algorithms.sac import SAC
    from robot_rl.policies import load_policy
    from robot_rl.training.online import run_online

    diffusion = load_policy(args.diffusion)
    diffusion.reset()
    hidden = hidden_sizes(args)
    dsrl = DSRLConfig(noise_max=args.noise_max, hidden=hidden)
    env = NoiseActionEnv(_make_env(args), diffusion, dsrl.noise_max)
    policy = noise_actor_policy(diffusion, dsrl)
    algo = SAC(policy, sac_config(args, hidden))
    evaluator = _evaluator(args)
    wrapped = (lambda p, step: evaluator(DSRLPolicy(diffusion, p), step)) if evaluator else None
    config = _online_config(args, random_steps=args.random_steps, offline_fraction=0.0)
    curve = run_online(algo, env, args.out, config, evaluator=wrapped, run_config=_run_config(args))
    DSRLPolicy(diffusion, algo.policy).save(Path(args.out) / "dsrl_policy")
    return _finish(curve, args.out)


class TransitionDataset:
    """Offline transitions in the algorithms' batch contract, for the trainer (batched fetch)."""

    def __init__(self, buffer, policy):
        import numpy as np

        from robot_rl.algorithms.common import from_replay

        self.tensors = from_replay(buffer.take(np.arange(len(buffer))), policy)
        self.n = len(buffer)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return {k: v[i] for k, v in self.tensors.items()}

    def __getitems__(self, indices: list[int]):
        import torch

        idx = torch.as_tensor(indices)
        return {k: v[idx] for k, v in self.tensors.items()}

    @staticmethod
    def collate(batch):
        return batch
