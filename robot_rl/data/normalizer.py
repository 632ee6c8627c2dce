"""Per-key normalizers: min-max to [-1, 1] and mean-std, computed once from a store.

Statistics (min, max, mean, std per dimension) are computed over every committed step
and saved in the store under `meta/normalizer/<key>/<stat>`, tagged with the step count
they cover, so later opens reuse them. A `Normalizer` turns stats into an affine map per
key, `y = x * scale + offset`, and serialises to a flat dict of arrays

    {"action.scale": ..., "action.offset": ..., "action.min": ..., "joint_pos.mean": ...}

that goes into a policy's safetensors checkpoint as it is; `Normalizer.from_state_dict`
reads it back with no store and no pickle. Images are not normalized here (uint8 in, the
policy divides by 255).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from robot_rl.data.store import DataError, EpisodeStore

Mode = Literal["minmax", "meanstd", "identity"]
STATS = ("min", "max", "mean", "std")
RANGE_EPS = 1e-4  # a dimension whose range is below this is centred, not stretched


@dataclass(frozen=True)
class KeyStats:
    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def compute_stats(
    store: EpisodeStore, keys_: list[str] | tuple[str, ...], block: int = 1 << 16
) -> dict[str, KeyStats]:
    """Exact per-dimension statistics over every committed step, read in blocks."""
    n = store.num_steps
    if n == 0:
        raise DataError(f"{store.path}: no episodes to compute normalizer statistics from")
    out = {}
    for k in keys_:
        spec = store.spec.get(k)
        if spec is None:
            raise DataError(f"{store.path}: no key {k!r} to normalize (keys: {', '.join(store.keys)})")
        lo = hi = None
        total = np.zeros(spec.shape, np.float64)
        total_sq = np.zeros(spec.shape, np.float64)
        for a in range(0, n, block):
            x = store.read_steps(k, a, min(n, a + block)).astype(np.float64)
            lo = x.min(0) if lo is None else np.minimum(lo, x.min(0))
            hi = x.max(0) if hi is None else np.maximum(hi, x.max(0))
            total += x.sum(0)
            total_sq += np.square(x).sum(0)
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - np.square(mean), 0.0))
        out[k] = KeyStats(*(np.asarray(v, np.float32) for v in (lo, hi, mean, std)))
    return out


def relative_action_stats(
    store: EpisodeStore, action_key: str, ref_key: str, obs_horizon: int, pred_horizon: int
) -> KeyStats:
    """Stats of actions relative to the state `ref_key` at the step they are predicted from.

    A policy with relative actions (DiffusionPolicy's relative_action_key) predicts, from step t,
    a[t + j] - s[t] for j in [-(To - 1), Tp - To] (the window SequenceDataset cuts, edges padded
    with the first and last action, which other offsets already cover); the leading dimensions
    of the action are shifted, the rest (the gripper) stay absolute. Computed over every
    committed episode; not cached in the store (it depends on the horizons).
    """
    parts = []
    for i in range(store.num_episodes):
        ep = store.episode(i, (action_key, ref_key))
        a, ref = ep[action_key].astype(np.float64), ep[ref_key].astype(np.float64)
        if ref.ndim != 2 or ref.shape[1] > a.shape[1]:
            raise DataError(
                f"{store.path}: {ref_key!r} {ref.shape[1:]} cannot be subtracted from {action_key!r}"
            )
        k, n = ref.shape[1], len(a)
        for j in range(-(obs_horizon - 1), pred_horizon - obs_horizon + 1):
            shifted = a[np.clip(np.arange(n) + j, 0, n - 1)].copy()
            shifted[:, :k] -= ref
            parts.append(shifted)
    if not parts:
        raise DataError(f"{store.path}: no episodes to compute normalizer statistics from")
    x = np.concatenate(parts)
    return KeyStats(*(np.asarray(v, np.float32) for v in (x.min(0), x.max(0), x.mean(0), x.std(0))))


def load_or_compute_stats(store: EpisodeStore, keys_: list[str] | tuple[str, ...]) -> dict[str, KeyStats]:
    """Stats saved with the dataset when they cover every step; computed (and saved, when
    the store is writable) otherwise."""
    import zarr

    saved: dict[str, KeyStats] = {}
    try:
        group = zarr.open_group(str(store.path / "meta" / "normalizer"), mode="r")
        if group.attrs.get("num_steps") == store.num_steps:
            for k in keys_:
                if k in group:
                    saved[k] = KeyStats(*(np.asarray(group[f"{k}/{s}"][:]) for s in STATS))
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
        pass
    missing = [k for k in keys_ if k not in saved]
    if missing:
        fresh = compute_stats(store, missing)
        saved.update(fresh)
        if store.mode == "a":
            save_stats(store, saved)
    return {k: saved[k] for k in keys_}


def save_stats(store: EpisodeStore, stats: dict[str, KeyStats]) -> None:
    import zarr

    group = zarr.open_group(str(store.path / "meta" / "normalizer"), mode="a")
    for k, st in stats.items():
        for s in STATS:
            v = getattr(st, s)
            group.create_array(f"{k}/{s}", shape=v.shape, dtype=v.dtype, overwrite=True)[...] = v
    group.attrs["num_steps"] = store.num_steps


class Normalizer:
    """Affine per-key maps `y = x * scale + offset`, applied to numpy arrays or torch tensors."""

    def __init__(
        self, scale: dict[str, np.ndarray], offset: dict[str, np.ndarray], stats: dict[str, KeyStats]
    ):
        self.scale = scale
        self.offset = offset
        self.stats = stats

    @classmethod
    def from_stats(cls, stats: dict[str, KeyStats], modes: dict[str, Mode] | Mode = "minmax") -> Normalizer:
        scale, offset = {}, {}
        for k, st in stats.items():
            mode = modes if isinstance(modes, str) else modes.get(k, "minmax")
            if mode == "minmax":
                rng = st.max - st.min
                flat = rng < RANGE_EPS
                rng = np.where(flat, 2.0, rng)
                s = 2.0 / rng
                o = -1.0 - st.min * s
                o = np.where(flat, -(st.min + st.max) / 2 * s, o)  # centre flat dims at 0
            elif mode == "meanstd":
                std = np.where(st.std < RANGE_EPS, 1.0, st.std)
                s = 1.0 / std
                o = -st.mean * s
            elif mode == "identity":
                s, o = np.ones_like(st.min), np.zeros_like(st.min)
            else:
                raise ValueError(
                    f"normalizer mode for {k!r} must be minmax, meanstd or identity, got {mode!r}"
                )
            scale[k], offset[k] = s.astype(np.float32), o.astype(np.float32)
        return cls(scale, offset, stats)

    @classmethod
    def from_store(cls, store: EpisodeStore, modes: dict[str, Mode]) -> Normalizer:
        """Stats for the keys in `modes`, saved with the dataset on first use."""
        return cls.from_stats(load_or_compute_stats(store, list(modes)), modes)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.scale)

    def _coeffs(self, key: str, like):
        s, o = self.scale[key], self.offset[key]
        if isinstance(like, np.ndarray):
            return s, o
        import torch

        return (
            torch.as_tensor(s, device=like.device, dtype=like.dtype),
            torch.as_tensor(o, device=like.device, dtype=like.dtype),
        )

    def normalize(self, key: str, x):
        s, o = self._coeffs(key, x)
        return x * s + o

    def unnormalize(self, key: str, y):
        s, o = self._coeffs(key, y)
        return (y - o) / s

    def normalize_dict(self, batch: dict) -> dict:
        """Normalize every key this normalizer knows; others pass through unchanged."""
        return {k: self.normalize(k, v) if k in self.scale else v for k, v in batch.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of float32 arrays, ready for safetensors."""
        out = {}
        for k in self.scale:
            out[f"{k}.scale"] = self.scale[k]
            out[f"{k}.offset"] = self.offset[k]
            for s in STATS:
                out[f"{k}.{s}"] = getattr(self.stats[k], s)
        return out

    @classmethod
    def from_state_dict(cls, state: dict) -> Normalizer:
        keys_ = sorted({name.rsplit(".", 1)[0] for name in state})
        scale, offset, stats = {}, {}, {}
        for k in keys_:
            try:
                arr = {s: np.asarray(state[f"{k}.{s}"], np.float32) for s in ("scale", "offset", *STATS)}
            except KeyError as exc:
                raise ValueError(f"normalizer state for {k!r} is missing {exc.args[0]!r}") from None
            scale[k], offset[k] = arr["scale"], arr["offset"]
            stats[k] = KeyStats(*(arr[s] for s in STATS))
        return cls(scale, offset, stats)
