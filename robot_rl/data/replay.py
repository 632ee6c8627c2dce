"""In-memory replay for online RL, and a sampler that mixes buffers at chosen ratios.

    spec = {"obs/joint_pos": ((6,), np.float32), "action": ((7,), np.float32), "reward": ((), np.float32), ...}
    offline = ReplayBuffer.from_store(store, obs_keys=(keys.JOINT_POS,), discount=0.99)
    interventions = ReplayBuffer(50_000, offline.spec)
    online = ReplayBuffer(1_000_000, offline.spec, intervention_buffer=interventions)
    sampler = MixedSampler([(offline, 0.5), (online, 0.25), (interventions, 0.25)])  # RLPD / HIL-SERL
    batch = sampler.sample(256, rng)                   # dict of numpy arrays
    batch = to_torch(batch, device)                    # dict of tensors

Every transition `add`ed to `online` whose `intervention` flag is set is also copied to
`interventions`, which the sampler always draws its share from (HIL-SERL keeps human
corrections in every batch). A source that is still empty gives its share to the others,
so training can start before the first online step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from robot_rl import keys


class ReplayBuffer:
    """A ring buffer of named fields, each a preallocated numpy array."""

    def __init__(
        self,
        capacity: int,
        spec: Mapping[str, tuple[tuple[int, ...], np.dtype | type | str]],
        intervention_buffer: ReplayBuffer | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.spec = {k: (tuple(shape), np.dtype(dt)) for k, (shape, dt) in spec.items()}
        self._data = {k: np.zeros((self.capacity, *shape), dt) for k, (shape, dt) in self.spec.items()}
        self._next = 0
        self._size = 0
        self.intervention_buffer = intervention_buffer

    def __len__(self) -> int:
        return self._size

    @classmethod
    def from_store(
        cls,
        store,
        obs_keys: tuple[str, ...],
        discount: float = 0.99,
        n_step: int = 1,
        capacity: int | None = None,
        reward=None,
    ) -> ReplayBuffer:
        """All transitions of a store (the offline part of a mix); `reward` relabels each
        episode's rewards (see store_transitions)."""
        from robot_rl.data.transitions import store_transitions

        data = store_transitions(store, obs_keys, discount, n_step, reward=reward)
        n = len(data[keys.ACTION])
        buf = cls(capacity or n, {k: (v.shape[1:], v.dtype) for k, v in data.items()})
        buf.add(data)
        return buf

    def add(self, transitions: Mapping[str, np.ndarray]) -> None:
        """One transition (per-field arrays without a batch dimension) or a batch of them."""
        missing = [k for k in self.spec if k not in transitions]
        extra = [k for k in transitions if k not in self.spec]
        if missing or extra:
            raise ValueError(f"replay add: missing fields {missing}, unknown fields {extra}")
        first = next(iter(self.spec))
        batched = np.ndim(transitions[first]) == len(self.spec[first][0]) + 1
        arrays = {}
        for k, (shape, dt) in self.spec.items():
            v = np.asarray(transitions[k], dtype=dt)
            v = v if batched else v[None]
            if v.shape[1:] != shape:
                raise ValueError(
                    f"replay add: field {k!r} has shape {v.shape[1:]} per transition, expected {shape}"
                )
            arrays[k] = v
        n = len(arrays[first])
        if any(len(v) != n for v in arrays.values()):
            raise ValueError(
                f"replay add: fields have different batch sizes { ({k: len(v) for k, v in arrays.items()}) }"
            )
        if n > self.capacity:
            arrays = {k: v[-self.capacity :] for k, v in arrays.items()}
            n = self.capacity
        pos = (self._next + np.arange(n)) % self.capacity
        for k, v in arrays.items():
            self._data[k][pos] = v
        self._next = int((self._next + n) % self.capacity)
        self._size = min(self.capacity, self._size + n)
        if self.intervention_buffer is not None and keys.INTERVENTION in arrays:
            human = arrays[keys.INTERVENTION].astype(bool)
            if human.any():
                self.intervention_buffer.add({k: v[human] for k, v in arrays.items()})

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self._size == 0:
            raise ValueError("replay sample: the buffer is empty")
        return self.take(rng.integers(0, self._size, size=batch_size))

    def take(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[indices] for k, v in self._data.items()}


class MixedSampler:
    """Draws each batch from several buffers in fixed proportions (offline/online, RLPD 50/50)."""

    def __init__(self, sources: list[tuple[ReplayBuffer, float]]):
        if not sources:
            raise ValueError("MixedSampler needs at least one (buffer, fraction)")
        fractions = np.array([f for _, f in sources], np.float64)
        if np.any(fractions < 0) or fractions.sum() <= 0:
            raise ValueError(f"fractions must be >= 0 with a positive sum, got {fractions.tolist()}")
        specs = [set(b.spec) for b, _ in sources]
        if any(s != specs[0] for s in specs):
            raise ValueError("MixedSampler: every buffer must hold the same fields")
        self.sources = [b for b, _ in sources]
        self.fractions = fractions / fractions.sum()

    def counts(self, batch_size: int) -> np.ndarray:
        """How many samples each source gives; empty sources' shares go to the rest."""
        live = np.array([len(b) > 0 for b in self.sources])
        if not live.any():
            raise ValueError("MixedSampler: every buffer is empty")
        f = np.where(live, self.fractions, 0.0)
        if f.sum() == 0:
            f = live.astype(np.float64)
        f = f / f.sum()
        counts = np.floor(f * batch_size).astype(int)
        rest = batch_size - counts.sum()
        order = np.argsort(-(f * batch_size - counts))  # largest remainders first
        counts[order[:rest]] += 1
        return counts

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        parts = [b.sample(int(c), rng) for b, c in zip(self.sources, self.counts(batch_size)) if c > 0]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def to_torch(batch: Mapping[str, np.ndarray], device="cpu") -> dict:
    """A sampled batch as torch tensors on `device`."""
    import torch

    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}
