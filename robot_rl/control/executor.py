"""ChunkExecutor: timestamped action chunks in, one target per control period out.

A chunk is what the policy (via the inference server) predicts: T targets (arm joints +
gripper) for the times t0, t0 + dt, ..., stamped on the robot's monotonic clock. It arrives
late (inference and transport take time); the steps whose time has passed are skipped.

    robot clock ──────────────────────────────────────────────────────────────────────►
    chunk k     t0_k ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·
    chunk k+1             (computing...)   t0_k+1 ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·  ·
                                     ▲ arrives (now)   past steps of k+1 are skipped
    target      ═══ k ════════════════════╪═╤══ blend ══╤══ k+1 ═══════════════════════
                                          s            s + W
    s = max(now, t0_k+1): the new chunk takes over from s, blended over the window W.

Between chunk points the target is a natural cubic spline (robot_rl/control/spline.py),
sampled at the control rate. At a seam the old and new chunks disagree (the policy
re-planned); `blend` decides how the target crosses over:

- crossfade (default): target = (1 - s(x)) old + s(x) new with x = (t - s) / W and
  s(x) = 10 x^3 - 15 x^4 + 6 x^5, whose first and second derivatives vanish at both ends:
  position, velocity and acceleration stay continuous. "old" is the target as it was before
  the seam (itself possibly a blend still in progress), so the target is always a convex
  combination of chunk splines and stays within their range however fast chunks arrive.
  To bound the work per sample, seams are at least W / MAX_ACTIVE_BLENDS apart: a chunk
  arriving sooner waits (a newer one replaces it) and is blended in as soon as it may be.
- ensemble: temporal ensembling with exponential weights (ACT). On the steps both cover,
  the new chunk is first averaged with the current target, new weight w (the running
  average gives chunk k weights w (1 - w)^age), then cross-faded in as above.
- none: switch at s (position jumps; for comparison in bench/control_loop.py).

Stamps are handled deliberately: a chunk older than the newest accepted one is STALE
(an inference reply overtaken by a newer one), the same t0 again is a DUPLICATE (a resend),
a chunk whose last step has already passed is EXPIRED; none of them changes the target.
Malformed chunks (shape, NaN, inf, dt <= 0) raise ValueError naming the problem.

The executor is not thread-safe; ControlLoop serialises access. After the last chunk ends,
the target holds its last point; `hold(position)` drops all chunks (watchdog, e-stop) and
holds `position`, from which the next chunk is blended in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from robot_rl.control.config import ExecutorConfig
from robot_rl.control.spline import CubicChunk

# Longest chunk accepted: bounds the spline fit (done under the control loop's lock) and its cache.
MAX_CHUNK_STEPS = 256
# Seams at least blend_window_s / MAX_ACTIVE_BLENDS apart: a sample evaluates at most this many
# unfinished blends (plus their chunks) however fast chunks arrive.
MAX_ACTIVE_BLENDS = 8


@dataclass(frozen=True)
class Chunk:
    t0: float  # time of positions[0] on the robot's monotonic clock, s
    dt: float  # step between positions, s
    positions: np.ndarray  # (T, J + 1): arm joint targets then gripper


class Submit(enum.Enum):
    ACCEPTED = "accepted"
    STALE = "stale"  # t0 older than the newest accepted chunk
    DUPLICATE = "duplicate"  # t0 equal to the newest accepted chunk
    EXPIRED = "expired"  # every step already in the past


def smoothstep5(x: float) -> float:
    """0 -> 1 with zero first and second derivatives at both ends."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


class _Hold:
    """A constant target (no chunk yet, or after a watchdog hold)."""

    __slots__ = ("position", "t_end")

    def __init__(self, position: np.ndarray):
        self.position = position
        self.t_end = -np.inf

    def __call__(self, t: float, extrapolate: bool = False) -> np.ndarray:
        return self.position


class _Blend:
    """`before` until `start`, then a cross-fade from `before` to `new` over `window`.

    Both sides are C2 at every t >= start (`before` extrapolates past its end with its end
    velocity), and smoothstep5 has zero first and second derivatives at both ends, so the
    target stays C2 through the seam. Unfinished blends nest (at most MAX_ACTIVE_BLENDS deep,
    see ChunkExecutor.submit); `_prune` collapses each one into `new` once it is over."""

    __slots__ = ("before", "new", "start", "window")

    def __init__(self, before, new: CubicChunk, start: float, window: float):
        self.before, self.new, self.start, self.window = before, new, start, window

    @property
    def t_end(self) -> float:
        return self.new.t_end

    def __call__(self, t: float, extrapolate: bool = False) -> np.ndarray:
        if t < self.start:
            return self.before(t, extrapolate)
        s = smoothstep5((t - self.start) / self.window)
        if s >= 1.0:
            return self.new(t, extrapolate)
        old = self.before(t, True)
        return old + s * (self.new(t, True) - old)


def _prune(src, t: float):
    """Collapse blends that are over (times only move forward)."""
    if isinstance(src, _Blend):
        if t >= src.start + src.window:
            return src.new
        src.before = _prune(src.before, t)
    return src


class ChunkExecutor:
    def __init__(self, action_dim: int, config: ExecutorConfig | None = None):
        self.action_dim = action_dim
        self.config = config or ExecutorConfig()
        self._source = None  # callable t -> target, or None before anything is known
        self._newest_t0 = -np.inf
        self._last_seam = -np.inf  # start of the newest blend
        self._pending: Chunk | None = None  # accepted, waiting for the minimum seam spacing
        self.counts = {result: 0 for result in Submit}

    @property
    def has_target(self) -> bool:
        return self._source is not None

    def hold(self, position: np.ndarray) -> None:
        """Drop every chunk and hold `position` (J + 1,) until the next chunk blends in.
        Chunks stamped before now stay refused as STALE/EXPIRED by their own stamps."""
        self._source = _Hold(np.array(position, dtype=np.float64))
        self._pending = None

    def submit(self, chunk: Chunk, now: float) -> Submit:
        positions = self._validate(chunk)
        n = len(positions)
        if chunk.t0 < self._newest_t0:
            result = Submit.STALE
        elif chunk.t0 == self._newest_t0:
            result = Submit.DUPLICATE
        elif chunk.t0 + (n - 1) * chunk.dt < now:
            result = Submit.EXPIRED
        else:
            result = Submit.ACCEPTED
        self.counts[result] += 1
        if result is not Submit.ACCEPTED:
            return result
        self._newest_t0 = chunk.t0
        if self._source is not None and now < self._last_seam + self._min_seam_interval:
            self._pending = Chunk(chunk.t0, chunk.dt, positions)  # replaces an older pending one
        else:
            self._pending = None
            self._blend_in(chunk.t0, chunk.dt, positions, now)
        return result

    @property
    def _min_seam_interval(self) -> float:
        return 0.0 if self.config.blend == "none" else self.config.blend_window_s / MAX_ACTIVE_BLENDS

    def _blend_in(self, t0: float, dt: float, positions: np.ndarray, now: float) -> None:
        n = len(positions)
        start = max(now, t0)
        cfg = self.config
        if cfg.blend == "ensemble" and self._source is not None:
            times = t0 + dt * np.arange(n)
            w = cfg.ensemble_new_weight
            current = self._source
            covered = times <= current.t_end
            if covered.any():
                positions = positions.copy()
                for i in np.flatnonzero(covered & (times >= start - dt)):
                    positions[i] = w * positions[i] + (1.0 - w) * current(times[i])
        new = CubicChunk(t0, dt, positions)
        if self._source is None:
            self._source = new
        else:
            window = 1e-9 if cfg.blend == "none" else cfg.blend_window_s
            self._source = _Blend(self._source, new, start, window)
            self._last_seam = start

    def sample(self, t: float) -> np.ndarray | None:
        """The target (J + 1,) at time t, or None before the first chunk or hold. Times must not
        go backwards between calls (finished blends are pruned)."""
        pending = self._pending
        if pending is not None and t >= self._last_seam + self._min_seam_interval:
            self._pending = None
            if pending.t0 + (len(pending.positions) - 1) * pending.dt >= t:
                self._blend_in(pending.t0, pending.dt, pending.positions, t)
        src = self._source
        if src is None:
            return None
        self._source = src = _prune(src, t)
        return src(t)

    def _validate(self, chunk: Chunk) -> np.ndarray:
        positions = np.asarray(chunk.positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[0] < 1 or positions.shape[1] != self.action_dim:
            raise ValueError(
                f"chunk positions must have shape (T >= 1, {self.action_dim}) (arm joints + gripper), "
                f"got {positions.shape}"
            )
        if positions.shape[0] > MAX_CHUNK_STEPS:
            raise ValueError(f"chunk has {positions.shape[0]} steps; at most {MAX_CHUNK_STEPS} are accepted")
        if not np.all(np.isfinite(positions)):
            raise ValueError("chunk positions contain NaN or inf")
        if not (np.isfinite(chunk.t0) and np.isfinite(chunk.dt) and chunk.dt > 0):
            raise ValueError(f"chunk needs finite t0 and dt > 0, got t0={chunk.t0}, dt={chunk.dt}")
        return positions
