"""The online actor/learner loop: actors step environments, the learner trains and sends weights.

    actor (env worker, later a robot)                 learner
    ---------------------------------                 -------------------------------------------
    obs -> policy copy (weights version v) -> env     replay: offline | online | interventions
    episode ends -> its transitions (with MC   ---->  add(transitions)
                    returns-to-go) are sent           every env step after `learning_starts`:
    load_weights(v')                           <----    UTD gradient updates on mixed batches
                                                      every `weights_every` steps: publish weights

One env step t of the default single-process loop:

    t:   actor.step()  ->  [episode ended? learner.add(...)]  ->  learner.train(UTD)  ->
         [t % weights_every == 0: actor.load_weights]  ->  [eval]  ->  [checkpoint]

Timing of the phases over env steps (RLPD: random_steps = warmup_steps = 0, offline data from
step 0; WSRL: warmup_steps with the warm-started policy and no updates, no offline data; SAC from
scratch: random_steps of uniform actions):

    0 ........ random_steps ........ warmup_steps ........ learning_starts ........ env_steps
    | uniform actions |  policy actions, no updates    |  policy actions + UTD updates  |

Transitions reach the replay only when their episode ends, so Monte-Carlo returns-to-go (Cal-QL)
are exact; an episode cut by a crash is lost, as in the episode store. A transition whose env
`info` carries `keys.INTERVENTION` (a human took over) stores the human's action (`info[ACTION]`)
and is copied to the intervention buffer, which every batch samples (HIL-SERL).

Checkpoints (out_dir/checkpoints/step_XXXXXXXX + `latest`, as the offline trainer writes them)
hold the algorithm state, the online and intervention replay, the RNG states, the env step and the
learning curve, so a learner killed mid-run and started again with the same command continues from
its last checkpoint. The curve is written as out_dir/curve.csv and out_dir/curve.png.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from robot_rl import keys
from robot_rl.algorithms.common import (
    ENV_STEPS_INFO,
    REPLAY_DISCOUNT_N,
    REPLAY_MC_RETURN,
    REPLAY_N_STEP_RETURN,
    REPLAY_NEXT_OBS,
    REPLAY_NEXT_OBS_N,
    REPLAY_OBS,
    SUCCESS_INFO,
    from_replay,
    replay_spec,
)
from robot_rl.data.replay import MixedSampler, ReplayBuffer
from robot_rl.data.transitions import mc_returns, n_step_window
from robot_rl.training.checkpoint import load_checkpoint, restore_rng, rng_tensors, save_checkpoint

STATE_KIND = "online_state"


@dataclass(frozen=True)
class OnlineConfig:
    env_steps: int = 50_000
    random_steps: int = 0  # uniform random actions first (SAC from scratch)
    warmup_steps: int = 0  # WSRL: steps with the initial policy before any update
    learning_starts: int = 0  # no update before this many env steps (and before one batch exists)
    utd: int = 1  # gradient updates per env step
    batch_size: int = 256
    offline_fraction: float = 0.5  # RLPD's symmetric sampling; ignored without offline data
    intervention_fraction: float = 0.25  # share of each batch from human interventions, once any exist
    discount: float = 0.99
    n_step: int = 1  # rewards summed per TD target (n-step returns; 1: plain one-step TD)
    replay_capacity: int = 1_000_000
    weights_every: int = 1  # env steps between weight pushes to the actor
    eval_every: int = 5_000
    checkpoint_every: int = 5_000
    keep_checkpoints: int = 2
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        at_least_one = ("env_steps", "utd", "batch_size", "replay_capacity", "weights_every", "n_step")
        small = [f"{name} = {getattr(self, name)}" for name in at_least_one if getattr(self, name) < 1]
        if small:
            raise ValueError(f"{', '.join(small)}: must be >= 1")
        if min(self.random_steps, self.warmup_steps, self.learning_starts, self.eval_every) < 0:
            raise ValueError("random_steps, warmup_steps, learning_starts and eval_every must be >= 0")
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("checkpoint_every and keep_checkpoints must be >= 1")
        for name in ("offline_fraction", "intervention_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class OnlineAlgorithm(Protocol):
    """The algorithm contract, plus the policy the actors run (robot_rl.models.actor.ActorPolicy)."""

    policy: Any

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, torch.Tensor]: ...
    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None: ...


Evaluator = Callable[[Any, int], dict[str, float]]


class EnvActor:
    """One environment and a private copy of the policy; returns transitions when an episode ends."""

    def __init__(self, env, policy, seed: int = 0, discount: float = 0.99, n_step: int = 1):
        self.env = env
        self.discount = discount
        self.n_step = n_step
        self.policy = copy.deepcopy(policy).eval()
        self.version = 0
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        self._seed = seed
        self._episodes = 0
        self._steps: list[dict[str, Any]] = []
        self._obs, _ = env.reset(seed=seed)
        self.episode_return = 0.0
        self.last_env_steps = 0
        self.last_transitions = 1  # transitions one step() adds (a remote source: a whole episode)

    def load_weights(self, tensors: dict[str, torch.Tensor], version: int) -> None:
        self.policy.load_state_dict(tensors)
        self.version = version

    def act(self, explore_uniform: bool) -> np.ndarray:
        if explore_uniform:
            unit = torch.as_tensor(self.rng.uniform(-1.0, 1.0, self.policy.act_dim).astype(np.float32))
        else:
            with torch.no_grad():
                x = self.policy.encode({k: self._obs[k] for k in self.policy.obs_keys})
                unit = self.policy.actor.sample(x.unsqueeze(0))[0][0]
        return self.policy.to_env_action(unit, self._obs).numpy()

    def step(
        self, explore_uniform: bool = False
    ) -> tuple[dict[str, np.ndarray] | None, dict[str, float] | None]:
        """One env step. Returns (transitions of the episode that just ended, its stats) or (None, None).

        `self.last_env_steps` is how many primitive env steps it took (Ta for DSRL's chunks, else 1).
        """
        action = self.act(explore_uniform)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        self.last_env_steps = int(info.get(ENV_STEPS_INFO, 1))
        human = bool(info.get(keys.INTERVENTION, False))
        if human and keys.ACTION in info:
            action = np.asarray(info[keys.ACTION], np.float32)
        self._steps.append(
            {
                "obs": self._obs,
                "next_obs": next_obs,
                keys.ACTION: action,
                keys.REWARD: float(reward),
                keys.TERMINAL: bool(terminated),
                keys.INTERVENTION: human,
                "success": bool(info.get(SUCCESS_INFO, False)),
            }
        )
        self.episode_return += float(reward)
        self._obs = next_obs
        if not (terminated or truncated):
            return None, None
        transitions = self._episode_transitions()
        stats = {
            "return": self.episode_return,
            "length": float(len(self._steps)),
            "success": float(any(s["success"] for s in self._steps)),
        }
        self._steps, self.episode_return = [], 0.0
        self._episodes += 1
        self._obs, _ = self.env.reset(seed=self._seed + 1_000_003 * self._episodes)
        return transitions, stats

    def restart_episode(self, episodes_done: int) -> None:
        """After a resume: drop any partial episode and start the next one with a fresh seed."""
        self._episodes = episodes_done
        self._steps, self.episode_return = [], 0.0
        self._obs, _ = self.env.reset(seed=self._seed + 1_000_003 * self._episodes)

    def _episode_transitions(self) -> dict[str, np.ndarray]:
        """Every step is a transition (a truncated last step too: its next_obs was observed)."""
        steps = self._steps
        gamma = self.discount
        reward = np.array([s[keys.REWARD] for s in steps], np.float32)
        terminal = np.array([s[keys.TERMINAL] for s in steps], bool)
        n_ret, discount_n, m = n_step_window(reward, len(steps), bool(terminal[-1]), gamma, self.n_step)
        out: dict[str, np.ndarray] = {
            keys.ACTION: np.stack([s[keys.ACTION] for s in steps]).astype(np.float32),
            keys.REWARD: reward,
            keys.TERMINAL: terminal,
            keys.INTERVENTION: np.array([s[keys.INTERVENTION] for s in steps], bool),
            REPLAY_N_STEP_RETURN: n_ret,
            REPLAY_DISCOUNT_N: discount_n,
            REPLAY_MC_RETURN: mc_returns(reward, gamma),
        }
        for k in self.policy.obs_keys:
            out[REPLAY_OBS + k] = np.stack([s["obs"][k] for s in steps]).astype(np.float32)
            out[REPLAY_NEXT_OBS + k] = np.stack([s["next_obs"][k] for s in steps]).astype(np.float32)
            if self.n_step > 1:  # the observation m_t steps on: next_obs of step t + m_t - 1
                out[REPLAY_NEXT_OBS_N + k] = out[REPLAY_NEXT_OBS + k][np.arange(len(steps)) + m - 1]
        return out


class Learner:
    """Owns the algorithm and the replay buffers; trains on mixed batches and hands out weights."""

    def __init__(self, algorithm: OnlineAlgorithm, config: OnlineConfig, offline: ReplayBuffer | None = None):
        self.algorithm = algorithm
        self.config = config
        policy = algorithm.policy
        spec = replay_spec(policy, config.n_step)
        if offline is not None:
            if set(offline.spec) != set(spec):
                raise ValueError(
                    f"offline data fields {sorted(offline.spec)} do not match the policy's {sorted(spec)}"
                )
            spec = offline.spec
        self.offline = offline
        self.interventions = ReplayBuffer(max(config.replay_capacity // 10, 1), spec)
        self.online = ReplayBuffer(config.replay_capacity, spec, intervention_buffer=self.interventions)
        sources = [
            (self.online, 1.0 - config.intervention_fraction),
            (self.interventions, config.intervention_fraction),
        ]
        if offline is not None and config.offline_fraction > 0:
            rest = 1.0 - config.offline_fraction
            sources = [(offline, config.offline_fraction)] + [(b, f * rest) for b, f in sources]
        self.sampler = MixedSampler(sources)
        self.rng = np.random.default_rng(config.seed)
        self.version = 0

    def add(self, transitions: dict[str, np.ndarray]) -> None:
        self.online.add(transitions)

    def ready(self) -> bool:
        available = len(self.online) + (len(self.offline) if self.offline is not None else 0)
        return available >= self.config.batch_size

    def train(self, updates: int) -> dict[str, float]:
        """`updates` gradient steps. An algorithm with `update_critic` (SAC) updates its actor on
        every `actor_every`-th step of them (its config's; 0: every utd-th, once per env step)."""
        info: dict[str, float] = {}
        critic_only = getattr(self.algorithm, "update_critic", None)
        every = 1
        if critic_only is not None:
            every = getattr(self.algorithm.config, "actor_every", 0) or self.config.utd
        for i in range(updates):
            batch = from_replay(self.sampler.sample(self.config.batch_size, self.rng), self.algorithm.policy)
            if (i + 1) % every:
                info = critic_only(batch)
            else:
                info = self.algorithm.update(batch)
        return info

    def weights(self) -> tuple[dict[str, torch.Tensor], int]:
        self.version += 1
        return {k: v.detach().clone() for k, v in self.algorithm.policy.state_dict().items()}, self.version

    # -- checkpoint pieces --------------------------------------------------------------------
    def replay_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, buf in (("online", self.online), ("interventions", self.interventions)):
            data = buf.take(_chronological(buf))
            out.update(
                {f"replay.{name}.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.items()}
            )
        return out

    def load_replay(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, buf in (("online", self.online), ("interventions", self.interventions)):
            data = {k: tensors[f"replay.{name}.{k}"].numpy() for k in buf.spec}
            if len(data[keys.ACTION]):
                # The intervention copy is off while restoring: the buffer is restored on its own.
                hook, buf.intervention_buffer = buf.intervention_buffer, None
                buf.add(data)
                buf.intervention_buffer = hook


def _chronological(buf: ReplayBuffer) -> np.ndarray:
    n = len(buf)
    if n < buf.capacity:
        return np.arange(n)
    start = buf._next  # the oldest entry once the ring has wrapped
    return (start + np.arange(n)) % buf.capacity


def run_online(
    algorithm: OnlineAlgorithm,
    env,
    out_dir: str | os.PathLike,
    config: OnlineConfig = OnlineConfig(),
    offline: ReplayBuffer | None = None,
    evaluator: Evaluator | None = None,
    run_config: dict[str, Any] | None = None,
    actor=None,
) -> list[dict[str, float]]:
    """Train online; returns the learning curve.

    By default actor and learner alternate in this process on `env`. With `actor` (for example
    robot_rl.training.actor_link.RemoteActors) experience comes from there instead and `env` may
    be None; UTD then applies per transition received.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_run(out_dir, config, run_config or {})
    torch.manual_seed(config.seed)
    learner = Learner(algorithm, config, offline)
    if actor is None:
        actor = EnvActor(
            env, algorithm.policy, seed=config.seed, discount=config.discount, n_step=config.n_step
        )
    state = {"env_step": 0, "episodes": 0, "updates": 0, "curve": [], "train_success": []}
    ckpt_dir = out_dir / "checkpoints"
    if (ckpt_dir / "latest").exists():
        path = ckpt_dir / (ckpt_dir / "latest").read_text().strip()
        tensors, meta = load_checkpoint(path, kind=STATE_KIND)
        try:
            algorithm.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("algo.")})
            learner.load_replay(tensors)
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"{path}: checkpoint does not fit this algorithm ({exc})") from exc
        restore_rng(tensors)
        learner.rng = np.random.default_rng([config.seed, meta["env_step"]])
        state.update({k: meta[k] for k in ("env_step", "episodes", "updates", "curve", "train_success")})
        actor.rng = np.random.default_rng([config.seed, meta["env_step"], 1])
        actor.restart_episode(state["episodes"])
        print(f"resuming from {path} at env step {state['env_step']}")
    actor.load_weights(*learner.weights())

    def checkpoint() -> None:
        tensors = {f"algo.{k}": v for k, v in algorithm.state_dict().items()}
        tensors.update(learner.replay_tensors())
        tensors.update(rng_tensors())
        name = f"step_{state['env_step']:08d}"
        save_checkpoint(ckpt_dir / name, tensors, dict(state), kind=STATE_KIND)
        algorithm.policy.save(out_dir / "policy")
        tmp = ckpt_dir / f".latest.tmp-{os.getpid()}"
        tmp.write_text(name + "\n")
        os.replace(tmp, ckpt_dir / "latest")
        for old in sorted(p for p in ckpt_dir.glob("step_*") if p.is_dir())[: -config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    window: dict[str, list[float]] = {}  # the learner's scalars since the last evaluation

    def evaluate() -> None:
        row = {"env_step": float(state["env_step"])}
        recent = state["train_success"][-20:]
        row["train_success"] = float(np.mean(recent)) if recent else 0.0
        learned = {name: float(np.mean(values)) for name, values in window.items()}
        window.clear()
        row.update(learned)
        if evaluator is not None:
            with torch.random.fork_rng(devices=[]):
                row.update(evaluator(algorithm.policy, state["env_step"]))
        state["curve"].append(row)
        write_curve(state["curve"], out_dir)
        if learned and not config.progress:  # the bar shows them otherwise
            print(
                f"[step {state['env_step']}] learner: "
                + ", ".join(f"{k} {v:.4g}" for k, v in learned.items())
            )

    bar = tqdm(
        total=config.env_steps, initial=state["env_step"], desc="env steps", disable=not config.progress
    )
    info: dict[str, float] = {}
    if state["env_step"] == 0 and config.eval_every:
        evaluate()
    while state["env_step"] < config.env_steps:
        before = state["env_step"]
        transitions, stats = actor.step(explore_uniform=before < config.random_steps)
        state["env_step"] = t = before + actor.last_env_steps
        bar.update(actor.last_env_steps)
        if transitions is not None:
            learner.add(transitions)
            state["episodes"] += 1
            state["train_success"].append(stats["success"])
            bar.set_postfix(
                ep_return=f"{stats['return']:.3g}", success=f"{stats['success']:.0f}", **_short(info)
            )
        if t > max(config.warmup_steps, config.learning_starts, config.random_steps) and learner.ready():
            updates = config.utd * actor.last_transitions
            if updates:
                info = learner.train(updates)
                state["updates"] += updates
                for name, value in info.items():
                    window.setdefault(name, []).append(value)
            if _crossed(before, t, config.weights_every):
                actor.load_weights(*learner.weights())
        if config.eval_every and _crossed(before, t, config.eval_every):
            evaluate()
        if _crossed(before, t, config.checkpoint_every) or t >= config.env_steps:
            checkpoint()
    bar.close()
    if not state["curve"] or state["curve"][-1]["env_step"] < state["env_step"]:
        evaluate()  # the end of the run is always on the curve
    return state["curve"]


def _crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of `every` lies in (before, after]."""
    return after // every > before // every


def _short(info: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.3g}" for k, v in list(info.items())[:2]}


def _check_run(out_dir: Path, config: OnlineConfig, run_config: dict[str, Any]) -> None:
    import yaml

    from robot_rl.config.loader import to_dict

    plain = {
        "run": run_config,
        "online": {k: v for k, v in to_dict(config).items() if k not in ("env_steps", "progress")},
    }
    run_file = out_dir / "run.yaml"
    if run_file.exists():
        saved = yaml.safe_load(run_file.read_text()) or {}
        if saved != plain:
            raise ValueError(
                f"{out_dir} holds a different run (see {run_file}); resume with the same settings or choose another --out"
            )
        return
    tmp = run_file.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(plain, sort_keys=False))
    os.replace(tmp, run_file)


_CSV_ONLY = {"episodes", "mean_length", "chunk_latency_p50_ms"}


def write_curve(curve: list[dict[str, float]], out_dir: str | os.PathLike) -> Path:
    """curve.csv and curve.png (every metric against env steps) in out_dir. Besides evaluation
    and training success, a row holds the learner's scalars (critic_loss, q_mean, alpha ...),
    averaged over the env steps since the row before."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    names = sorted({k for row in curve for k in row if k != "env_step"})
    lines = ["env_step," + ",".join(names)]
    for row in curve:
        lines.append(f"{row['env_step']:.0f}," + ",".join(f"{row.get(n, float('nan')):.6g}" for n in names))
    (out_dir / "curve.csv").write_text("\n".join(lines) + "\n")
    # One panel for success (evaluation with its 95% band, and training episodes), one per
    # other learning metric (returns ...); bookkeeping columns stay in the CSV only.
    steps = [row["env_step"] for row in curve]
    col = lambda name: [row.get(name, float("nan")) for row in curve]  # noqa: E731
    others = [n for n in names if "success" not in n and n not in _CSV_ONLY]
    cols = min(1 + len(others), 3)
    rows = -(-(1 + len(others)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[1 + len(others) :]:
        ax.set_visible(False)
    axes = axes[: 1 + len(others)]
    ax = axes[0]
    if "success_rate" in names:
        ax.plot(steps, col("success_rate"), marker="o", label="evaluation")
        if "success_low95" in names:
            ax.fill_between(
                steps, col("success_low95"), col("success_high95"), alpha=0.2, label="95% interval"
            )
    if "train_success" in names:
        ax.plot(steps, col("train_success"), marker=".", label="training episodes (last 20)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("success")
    ax.legend(fontsize=7)
    for ax, name in zip(axes[1:], others):
        ax.plot(steps, col(name), marker="o")
        ax.set_title(name)
    for ax in axes:
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "curve.png", dpi=80)
    plt.close(fig)
    return out_dir / "curve.png"
