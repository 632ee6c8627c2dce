"""The store seen as RL transitions: (obs, action, reward, next_obs, terminal, intervention).

Within an episode of L steps, step t is a transition to t+1 for t < L-1. The last step is a
transition only when it is terminal (its next_obs is itself, masked by `terminal`); a
truncated episode's last step has no successor and is left out.

n-step targets (discount g, n steps), for a transition at t:

    t      t+1    ...   t+m-1   t+m
    r_t    r_t+1  ...   r_t+m-1 | bootstrap from next_obs_n = obs[t+m] with discount_n = g^m
                                  (discount_n = 0 when the window reaches the terminal step)

with m = min(n, transitions left in the episode). Monte-Carlo returns-to-go (Cal-QL's
lower bound) are sum_{k>=t} g^(k-t) r_k over the rest of the episode.

Arrays come back flat, keyed like the replay buffer's spec: `obs/<key>`, `next_obs/<key>`,
`next_obs_n/<key>`, action, reward, terminal, intervention, n_step_return, discount_n,
mc_return.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robot_rl import keys
from robot_rl.data.store import DataError, EpisodeStore


def mc_returns(reward: np.ndarray, discount: float) -> np.ndarray:
    """Discounted returns-to-go of one episode's rewards."""
    out = np.zeros(len(reward), np.float64)
    acc = 0.0
    for t in range(len(reward) - 1, -1, -1):
        acc = float(reward[t]) + discount * acc
        out[t] = acc
    return out.astype(np.float32)


def n_step_window(
    reward: np.ndarray, count: int, terminal_end: bool, discount: float, n_step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For transitions t < count of one episode: (n-step return, discount_n, m_t), where m_t =
    min(n, count - t) rewards are summed and the bootstrap is from the observation at t + m_t
    (discount_n = g^m_t, or 0 when the window reaches the terminal step)."""
    t = np.arange(count)
    m = np.minimum(n_step, count - t)
    reward = np.asarray(reward, np.float64)
    n_ret = np.zeros(count, np.float64)
    for k in range(n_step):
        valid = k < m
        n_ret[valid] += discount**k * reward[t[valid] + k]
    reaches_terminal = terminal_end & (t + m >= count)
    discount_n = np.where(reaches_terminal, 0.0, discount ** m.astype(np.float64))
    return n_ret.astype(np.float32), discount_n.astype(np.float32), m


def episode_transitions(
    ep: dict[str, np.ndarray], obs_keys: tuple[str, ...], discount: float = 0.99, n_step: int = 1
) -> dict[str, np.ndarray]:
    """Transitions of one episode (see the module docstring for the timing)."""
    if n_step < 1:
        raise ValueError(f"n_step must be >= 1, got {n_step}")
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount}")
    length = len(ep[keys.ACTION])
    terminal_end = bool(ep[keys.TERMINAL][-1])
    count = length if terminal_end else length - 1  # transitions in this episode
    if count <= 0:
        return {}
    t = np.arange(count)
    nxt = np.minimum(t + 1, length - 1)
    n_ret, discount_n, m = n_step_window(ep[keys.REWARD], count, terminal_end, discount, n_step)
    boot = np.minimum(t + m, length - 1)
    out = {
        keys.ACTION: ep[keys.ACTION][:count].astype(np.float32),
        keys.REWARD: ep[keys.REWARD][:count].astype(np.float32),
        keys.TERMINAL: ep[keys.TERMINAL][:count].astype(np.bool_),
        keys.INTERVENTION: ep[keys.INTERVENTION][:count].astype(np.bool_),
        "n_step_return": n_ret,
        "discount_n": discount_n,
        "mc_return": mc_returns(ep[keys.REWARD], discount)[:count],
    }
    for k in obs_keys:
        out[f"obs/{k}"] = ep[k][:count]
        out[f"next_obs/{k}"] = ep[k][nxt]
        if n_step > 1:
            out[f"next_obs_n/{k}"] = ep[k][boot]
    return out


def store_transitions(
    store: EpisodeStore,
    obs_keys: tuple[str, ...],
    discount: float = 0.99,
    n_step: int = 1,
    progress: bool = False,
    reward: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Every transition of every committed episode, concatenated (for offline RL). `reward`, when
    given, relabels each episode's rewards from its fields (a sparse success signal, an offset)."""
    from tqdm import tqdm

    missing = [k for k in obs_keys if k not in store.spec]
    if missing:
        raise DataError(f"{store.path}: no key {missing[0]!r} (keys: {', '.join(store.keys)})")
    need = (*obs_keys, keys.ACTION, keys.REWARD, keys.TERMINAL, keys.INTERVENTION)
    parts: dict[str, list[np.ndarray]] = {}
    for i in tqdm(range(len(store)), desc="transitions", unit="ep", disable=not progress):
        episode = store.episode(i, need)
        if reward is not None:
            episode[keys.REWARD] = np.asarray(reward(episode), np.float32)
        for k, v in episode_transitions(episode, obs_keys, discount, n_step).items():
            parts.setdefault(k, []).append(v)
    if not parts:
        raise DataError(f"{store.path}: no transitions (every episode is a single truncated step?)")
    return {k: np.concatenate(v) for k, v in parts.items()}
