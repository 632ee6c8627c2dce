"""Windows of observation history and action horizon for learners (diffusion policy's scheme).

One sample is a window of `horizon` steps inside one episode. Observations cover its first
`n_obs_steps` (To) steps, actions all `horizon` (Tp) steps; at execution the policy
applies `n_action_steps` (Ta) of them starting at the last observed step:

    step in window:   0   1   2   3   4   5   6   7   ...  Tp-1
    observations:    |o0 |o1 |                                       To = 2
    actions:         |a0 |a1 |a2 |a3 |a4 |a5 |a6 |a7 | ... |         Tp = horizon
    executed:            |a1 |a2 |a3 |a4 |a5 |a6 |a7 |a8 |           Ta = 8, from step To-1

Windows may start up to To-1 steps before an episode and end up to Ta-1 steps after
it; those steps repeat the first / last step (edge padding), so every step of every
episode is seen as "now" and the policy learns to stop at the end.

Episodes are split into train and validation by a seeded permutation, never mid-episode.
Low-dimensional keys are loaded into memory once (float32); images are decoded per frame
on demand by a `FrameReader` in each DataLoader worker and returned uint8 (B, To, H, W, C).
`__getitems__` gathers a whole batch with one fancy-index per key, which is where the
speed against robomimic's per-sample SequenceDataset comes from; use `loader(...)`,
which sets the matching collate function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.frames import FrameReader
from robot_rl.data.store import DataError, EpisodeStore


@dataclass(frozen=True)
class SequenceConfig:
    horizon: int = 16  # Tp: action steps per sample
    n_obs_steps: int = 2  # To: observation history
    n_action_steps: int = 8  # Ta: steps executed per chunk (sets the end padding)
    obs_keys: tuple[str, ...] = (keys.JOINT_POS, keys.GRIPPER_POS)
    action_key: str = keys.ACTION
    val_ratio: float = 0.1  # fraction of episodes held out
    seed: int = 42  # of the train/validation split
    extra_keys: tuple[str, ...] = field(default_factory=tuple)  # per-step keys over the horizon (reward, ...)

    def __post_init__(self):
        if not 1 <= self.n_obs_steps <= self.horizon:
            raise ValueError(f"n_obs_steps must be in [1, horizon={self.horizon}], got {self.n_obs_steps}")
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ValueError(
                f"n_action_steps must be in [1, horizon - n_obs_steps + 1 = "
                f"{self.horizon - self.n_obs_steps + 1}], got {self.n_action_steps}"
            )
        if not 0.0 <= self.val_ratio < 1.0:
            raise ValueError(f"val_ratio must be in [0, 1), got {self.val_ratio}")
        if not self.obs_keys:
            raise ValueError("obs_keys must name at least one key")


def split_episodes(num_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) episode indices, sorted. At least one of each when both are possible."""
    perm = np.random.default_rng(seed).permutation(num_episodes)
    n_val = int(round(num_episodes * val_ratio))
    if val_ratio > 0 and num_episodes > 1:
        n_val = min(max(n_val, 1), num_episodes - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class SequenceDataset:
    """A torch map-style Dataset of windows from one store (see the module docstring)."""

    def __init__(
        self, store_path: str | Path, config: SequenceConfig = SequenceConfig(), split: str = "train"
    ):
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be train, val or all, got {split!r}")
        self.store_path = Path(store_path)
        self.config = config
        self.split = split
        store = EpisodeStore.open(self.store_path, mode="r")
        cfg = config
        wanted = (*cfg.obs_keys, cfg.action_key, *cfg.extra_keys)
        unknown = [k for k in wanted if k not in store.spec]
        if unknown:
            raise DataError(f"{self.store_path}: no key {unknown[0]!r} (keys: {', '.join(store.keys)})")
        if len(store) == 0:
            raise DataError(f"{self.store_path}: the store holds no episodes")
        train, val = split_episodes(len(store), cfg.val_ratio, cfg.seed)
        self.episodes = {"train": train, "val": val, "all": np.arange(len(store))}[split]
        starts, ends = store.episode_starts, store.episode_ends
        self.image_keys = tuple(k for k in cfg.obs_keys if store.spec[k].is_image)
        self.lowdim_obs_keys = tuple(k for k in cfg.obs_keys if k not in self.image_keys)
        # Low-dim data in memory: only the selected episodes' rows, re-indexed contiguously.
        rows = (
            np.concatenate([np.arange(starts[e], ends[e]) for e in self.episodes])
            if len(self.episodes)
            else []
        )
        rows = np.asarray(rows, np.int64)
        self._lowdim: dict[str, np.ndarray] = {}
        for k in (*self.lowdim_obs_keys, cfg.action_key, *cfg.extra_keys):
            full = store.read_steps(k, 0, store.num_steps)
            x = full[rows]
            self._lowdim[k] = x.astype(np.float32) if x.dtype.kind == "f" else x
        self._image_rows = rows  # local row -> global step in the store, for image frames
        # Windows: start offset in local rows and the episode bounds each one clips to.
        lengths = (ends - starts)[self.episodes]
        local_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        pad_before, pad_after = cfg.n_obs_steps - 1, cfg.n_action_steps - 1
        win_start, lo, hi = [], [], []
        for s, n in zip(local_starts, lengths):
            first, last = -pad_before, n - cfg.horizon + pad_after
            if last < first:
                last = first  # an episode shorter than the horizon still gives one window
            w = np.arange(first, last + 1)
            win_start.append(s + w)
            lo.append(np.full(len(w), s))
            hi.append(np.full(len(w), s + n - 1))
        self._win_start = np.concatenate(win_start) if win_start else np.zeros(0, np.int64)
        self._lo = np.concatenate(lo) if lo else np.zeros(0, np.int64)
        self._hi = np.concatenate(hi) if hi else np.zeros(0, np.int64)
        self._readers: dict[str, FrameReader] | None = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_readers"] = None  # each worker builds its own
        return state

    def __len__(self) -> int:
        return len(self._win_start)

    def validation(self) -> SequenceDataset:
        """The held-out episodes, same config and seed."""
        return SequenceDataset(self.store_path, self.config, split="val")

    def _frame_readers(self) -> dict[str, FrameReader]:
        if self._readers is None:
            self._readers = {k: FrameReader(self.store_path, k) for k in self.image_keys}
        return self._readers

    def window_rows(self, indices) -> np.ndarray:
        """(B, horizon) local row indices of the windows, edge-padded within each episode."""
        idx = np.asarray(indices, np.int64)
        t = self._win_start[idx, None] + np.arange(self.config.horizon)
        return np.clip(t, self._lo[idx, None], self._hi[idx, None])

    def gather(self, indices) -> dict:
        """A batch as numpy arrays: {"obs": {key: (B, To, ...)}, action: (B, Tp, A), ...}."""
        cfg = self.config
        t = self.window_rows(indices)
        t_obs = t[:, : cfg.n_obs_steps]
        obs = {k: self._lowdim[k][t_obs] for k in self.lowdim_obs_keys}
        for k, reader in self._frame_readers().items():
            obs[k] = reader.read_many(self._image_rows[t_obs])
        batch = {"obs": obs}
        for k in (cfg.action_key, *cfg.extra_keys):
            batch[k] = self._lowdim[k][t]
        return batch

    def get_batch(self, indices) -> dict:
        """`gather` as torch tensors."""
        return _to_torch(self.gather(indices))

    def __getitems__(self, indices) -> dict:
        # Small arrays stay numpy: a worker pickles them through its pipe far faster than
        # torch moves tensors to shared memory (about 8x for a state-only batch). Large ones
        # (image stacks) become tensors, which cross in shared memory without a pickle copy.
        batch = self.gather(indices)
        batch["obs"] = {k: _shared_if_large(v) for k, v in batch["obs"].items()}
        return batch

    def __getitem__(self, i: int) -> dict:
        """One sample (no batch dimension)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range ({len(self)} windows)")
        batch = self.get_batch([i % len(self)])
        return {
            "obs": {k: v[0] for k, v in batch["obs"].items()},
            **{k: v[0] for k, v in batch.items() if k != "obs"},
        }

    @staticmethod
    def collate(batch):
        """Collate for a plain DataLoader: `__getitems__` already returns a whole batch."""
        return _to_torch(batch)

    def loader(self, batch_size: int, num_workers: int = 0, shuffle: bool = True, seed: int = 0, **kwargs):
        """Batches of torch tensors. Workers gather numpy batches; they become tensors
        (zero-copy) in the consuming process."""
        import torch
        from torch.utils.data import DataLoader

        gen = torch.Generator().manual_seed(seed)
        return TorchBatches(
            DataLoader(
                self,
                batch_size=batch_size,
                shuffle=shuffle,
                num_workers=num_workers,
                collate_fn=_identity,
                generator=gen,
                persistent_workers=num_workers > 0,
                **kwargs,
            )
        )


class TorchBatches:
    """Iterates a DataLoader of numpy batches, yielding torch tensors."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield _to_torch(batch)


def _identity(batch):
    return batch


def _shared_if_large(x: np.ndarray, limit: int = 1 << 20):
    if x.nbytes < limit:
        return x
    import torch

    return torch.from_numpy(x)


def _to_torch(batch: dict) -> dict:
    import torch

    return {k: _to_torch(v) if isinstance(v, dict) else torch.as_tensor(v) for k, v in batch.items()}
