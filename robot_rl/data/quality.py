"""A data-quality report for demonstration datasets.

Imitation learning suffers less from too few demonstrations than from inconsistent ones:
demonstrators who do different things in the same state, jerky teleoperation, and odd
episodes that are much longer or rougher than the rest. The report measures:

- state coverage: the state is projected on its first (up to) three principal axes, each
  cut into `bins` bins; coverage is the fraction of cells any step visits.
- action divergence: for each (sub-sampled) step, the nearest step of a *different*
  episode in state space; over pairs closer than the median such distance, the distance
  between their actions in units of the action's per-dimension std. High: demonstrators
  disagree about what to do in the same place.
- length and jerk: per-episode step count and RMS jerk of the state (third difference
  over the median step time, state units / s^3).
- outliers: episodes whose length, jerk or divergence is more than 3.5 robust z-scores
  (median and MAD) from the rest; divergence counts only above MIN_DIVERGENCE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_rl import keys
from robot_rl.data.store import DataError, EpisodeStore

OUTLIER_Z = 3.5
MIN_DIVERGENCE = 0.1  # action stds: below this, demonstrators agree whatever the z-score


@dataclass
class QualityReport:
    num_episodes: int
    lengths: np.ndarray  # (E,)
    jerk_rms: np.ndarray  # (E,)
    coverage: float  # fraction of occupied cells
    coverage_cells: int  # cells in the grid
    action_divergence: float  # mean over close cross-episode pairs, in action stds
    episode_divergence: np.ndarray  # (E,), NaN where an episode had no close pair
    outliers: dict[int, list[str]] = field(default_factory=dict)  # episode -> reasons

    def summary(self) -> str:
        lines = [
            f"episodes: {self.num_episodes}",
            f"length: min {self.lengths.min()}, median {np.median(self.lengths):.0f}, max {self.lengths.max()}",
            f"jerk (RMS): median {np.median(self.jerk_rms):.3g}, max {self.jerk_rms.max():.3g}",
            f"state coverage: {self.coverage:.3f} of {self.coverage_cells} cells",
            f"action divergence at similar states: {self.action_divergence:.3f} action stds",
        ]
        if self.outliers:
            lines.append("outlier episodes:")
            lines += [f"  {e}: {', '.join(r)}" for e, r in sorted(self.outliers.items())]
        else:
            lines.append("outlier episodes: none")
        return "\n".join(lines)


def _robust_z(x: np.ndarray) -> np.ndarray:
    med = np.nanmedian(x)
    mad = np.nanmedian(np.abs(x - med)) * 1.4826
    if not np.isfinite(mad) or mad == 0:
        mad = np.nanstd(x) or 1.0
    return (x - med) / mad


def quality_report(
    store: EpisodeStore,
    state_key: str = keys.JOINT_POS,
    action_key: str = keys.ACTION,
    bins: int = 10,
    max_points: int = 4000,
    seed: int = 0,
) -> QualityReport:
    for k in (state_key, action_key):
        if k not in store.spec:
            raise DataError(
                f"{store.path}: no key {k!r} for the quality report (keys: {', '.join(store.keys)})"
            )
    if len(store) < 2:
        raise DataError(f"{store.path}: a quality report needs at least 2 episodes, found {len(store)}")
    n = store.num_steps
    state = store.read_steps(state_key, 0, n).reshape(n, -1).astype(np.float64)
    action = store.read_steps(action_key, 0, n).reshape(n, -1).astype(np.float64)
    stamp = store.read_steps(keys.TIMESTAMP, 0, n)
    ends = store.episode_ends
    starts = store.episode_starts
    episode_of = np.repeat(np.arange(len(store)), ends - starts)
    lengths = (ends - starts).astype(np.int64)

    # Jerk per episode.
    jerk = np.zeros(len(store))
    for e, (a, b) in enumerate(zip(starts, ends)):
        if b - a < 4:
            continue
        dt = float(np.median(np.diff(stamp[a:b]))) or store.step_dt
        j = np.diff(state[a:b], n=3, axis=0) / dt**3
        jerk[e] = float(np.sqrt(np.mean(np.square(j))))

    # Coverage on the first principal axes.
    centred = state - state.mean(0)
    rng = np.random.default_rng(seed)
    sub = rng.choice(n, size=min(n, max_points), replace=False)
    _, _, vt = np.linalg.svd(centred[sub], full_matrices=False)
    k = min(3, vt.shape[0])
    proj = centred @ vt[:k].T
    lo, hi = proj.min(0), proj.max(0)
    cell = np.clip(((proj - lo) / np.where(hi > lo, hi - lo, 1.0) * bins).astype(int), 0, bins - 1)
    occupied = len(np.unique(cell, axis=0))
    coverage = occupied / bins**k

    # Action divergence: nearest cross-episode neighbour in (standardised) state space.
    s_std = np.where(state.std(0) > 1e-9, state.std(0), 1.0)
    a_std = np.where(action.std(0) > 1e-9, action.std(0), 1.0)
    zs, za, ep = (state[sub] / s_std).astype(np.float32), action[sub] / a_std, episode_of[sub]
    nn_dist = np.full(len(sub), np.inf)
    nn_idx = np.zeros(len(sub), np.int64)
    sq = np.sum(zs * zs, 1)
    for a in range(0, len(sub), 1024):
        d = sq[a : a + 1024, None] + sq[None, :] - 2 * zs[a : a + 1024] @ zs.T
        d[ep[a : a + 1024, None] == ep[None, :]] = np.inf  # other episodes only
        nn_idx[a : a + 1024] = np.argmin(d, 1)
        nn_dist[a : a + 1024] = np.sqrt(np.maximum(d[np.arange(len(d)), nn_idx[a : a + 1024]], 0))
    close = nn_dist <= np.median(nn_dist[np.isfinite(nn_dist)])
    div = np.linalg.norm(za - za[nn_idx], axis=1) / np.sqrt(za.shape[1])
    divergence = float(div[close].mean()) if close.any() else float("nan")
    per_episode = np.full(len(store), np.nan)
    for e in range(len(store)):
        m = close & (ep == e)
        if m.any():
            per_episode[e] = div[m].mean()

    outliers: dict[int, list[str]] = {}
    for name, values in (
        ("length", lengths.astype(float)),
        ("jerk", jerk),
        ("action divergence", per_episode),
    ):
        z = _robust_z(values)
        score = np.abs(z) if name == "length" else z  # too short is as odd as too long
        if name == "action divergence":
            score = np.where(values > MIN_DIVERGENCE, score, 0.0)  # ignore z-scores of tiny spreads
        for e in np.flatnonzero(np.nan_to_num(score) > OUTLIER_Z):
            outliers.setdefault(int(e), []).append(f"{name} {values[e]:.3g} (z={z[e]:.1f})")
    return QualityReport(len(store), lengths, jerk, coverage, bins**k, divergence, per_episode, outliers)
