"""ChunkExecutor and its spline: interpolation, latency compensation, seam blending, stamps."""

import numpy as np
import pytest

from robot_rl.control.config import ExecutorConfig
from robot_rl.control.executor import MAX_CHUNK_STEPS, Chunk, ChunkExecutor, Submit
from robot_rl.control.spline import CubicChunk

DT = 0.002  # control period


def _wave(t):
    """A smooth 7-d signal: 6 joints + gripper."""
    t = np.asarray(t, dtype=float)[..., None]
    return np.concatenate([0.3 * np.sin(1.3 * t + np.arange(6)), 0.5 + 0.2 * np.sin(0.7 * t)], axis=-1)


def test_spline_interpolates_and_is_c2():
    t0, h = 1.0, 0.1
    pts = np.random.default_rng(0).normal(size=(9, 3))
    spline = CubicChunk(t0, h, pts)
    for i, p in enumerate(pts):
        np.testing.assert_allclose(spline(t0 + i * h), p, atol=1e-12)
    # Finite-difference acceleration is continuous across the knots and across the end
    # (linear extrapolation: the natural spline has zero curvature there).
    ts = np.arange(t0, t0 + 1.0, 1e-4)
    y = np.array([spline(t, extrapolate=True) for t in ts])
    acc = np.diff(y, 2, axis=0) / 1e-8
    assert np.abs(np.diff(acc, axis=0)).max() < 0.05 * np.abs(acc).max()
    single = CubicChunk(0.0, 0.1, pts[:1])
    np.testing.assert_array_equal(single(5.0), pts[0])


def _stream(mode, dt=DT, seed=0):
    """Chunks every 0.1 s, predicted 0.05 s ahead, each with its own error (a replanning policy)."""
    rng = np.random.default_rng(seed)
    ex = ChunkExecutor(7, ExecutorConfig(blend=mode, blend_window_s=0.1))
    out, seams = [], []
    every = round(0.1 / dt)
    for k in range(round(3.0 / dt)):
        now = k * dt
        if k % every == 0:
            times = now + 0.05 + 0.1 * np.arange(16)
            ex.submit(Chunk(times[0], 0.1, _wave(times) + rng.normal(0, 0.02, 7)), now)
            seams.append(k)
        out.append(ex.sample(now))
    return np.array(out), seams


def _largest_accel_step(mode, dt):
    y, _ = _stream(mode, dt)
    acc = np.diff(y[round(0.2 / dt) :, :6], 2, axis=0) / dt**2
    return np.abs(np.diff(acc, axis=0)).max()


@pytest.mark.parametrize("mode", ["crossfade", "ensemble"])
def test_blending_keeps_acceleration_continuous_where_switching_jumps(mode):
    # Continuous acceleration: its step per sample shrinks with the sample period (it is jerk
    # times dt). A jump does not shrink; switching without blending jumps by error / dt^2.
    coarse, fine = _largest_accel_step(mode, DT), _largest_accel_step(mode, DT / 4)
    assert fine < 0.4 * coarse
    assert _largest_accel_step("none", DT) > 100 * coarse


def test_late_chunk_steps_are_skipped():
    ex = ChunkExecutor(7)
    times = 10.0 + 0.1 * np.arange(16)
    assert ex.submit(Chunk(times[0], 0.1, _wave(times)), now=10.73) is Submit.ACCEPTED
    # The first target is where the chunk is at `now`, not its first step.
    np.testing.assert_allclose(ex.sample(10.73), CubicChunk(10.0, 0.1, _wave(times))(10.73))


def test_stale_duplicate_expired_and_malformed():
    ex = ChunkExecutor(7)
    times = 1.0 + 0.1 * np.arange(8)
    assert ex.submit(Chunk(1.0, 0.1, _wave(times)), now=1.0) is Submit.ACCEPTED
    before = ex.sample(1.05).copy()
    assert ex.submit(Chunk(1.0, 0.1, _wave(times) + 1), now=1.01) is Submit.DUPLICATE
    assert ex.submit(Chunk(0.9, 0.1, _wave(times) + 1), now=1.02) is Submit.STALE
    assert ex.submit(Chunk(1.1, 0.01, _wave(times) + 1), now=1.5) is Submit.EXPIRED
    np.testing.assert_array_equal(ex.sample(1.05), before)
    assert ex.counts == {Submit.ACCEPTED: 1, Submit.DUPLICATE: 1, Submit.STALE: 1, Submit.EXPIRED: 1}
    with pytest.raises(ValueError, match="shape"):
        ex.submit(Chunk(2.0, 0.1, np.zeros((4, 6))), now=1.1)
    with pytest.raises(ValueError, match="NaN"):
        ex.submit(Chunk(2.0, 0.1, np.full((4, 7), np.nan)), now=1.1)
    with pytest.raises(ValueError, match="at most"):
        ex.submit(Chunk(2.0, 0.1, np.zeros((MAX_CHUNK_STEPS + 1, 7))), now=1.1)
    with pytest.raises(ValueError, match="dt"):
        ex.submit(Chunk(2.0, 0.0, np.zeros((4, 7))), now=1.1)


def test_hold_then_blend_in_from_the_held_position():
    ex = ChunkExecutor(7, ExecutorConfig(blend_window_s=0.1))
    held = np.full(7, 0.25)
    assert ex.sample(0.0) is None
    ex.hold(held)
    np.testing.assert_array_equal(ex.sample(0.0), held)
    times = 0.5 + 0.1 * np.arange(10)
    ex.submit(Chunk(0.5, 0.1, _wave(times)), now=0.4)
    np.testing.assert_array_equal(ex.sample(0.45), held)  # the chunk starts at its t0
    mid = ex.sample(0.55)
    assert not np.allclose(mid, held) and not np.allclose(mid, _wave(0.55))
    np.testing.assert_allclose(ex.sample(0.61), CubicChunk(0.5, 0.1, _wave(times))(0.61))
    # After the last step: hold the last point.
    np.testing.assert_allclose(ex.sample(5.0), _wave(times)[-1])


def test_ensemble_averages_overlapping_steps_with_the_newest_weight():
    w = 0.3
    ex = ChunkExecutor(7, ExecutorConfig(blend="ensemble", blend_window_s=0.05, ensemble_new_weight=w))
    old = np.zeros((20, 7))
    ex.submit(Chunk(0.0, 0.1, old), now=0.0)
    ex.submit(Chunk(0.5, 0.1, np.ones((20, 7))), now=0.45)
    # After the fade, on steps both chunks cover: w new + (1 - w) old; beyond the old chunk: new.
    np.testing.assert_allclose(ex.sample(1.0), np.full(7, w), atol=1e-9)
    np.testing.assert_allclose(ex.sample(2.45), np.ones(7), atol=1e-9)


@pytest.mark.parametrize("blend", ["crossfade", "ensemble"])
@pytest.mark.parametrize("period", [0.002, 0.005, 0.02, 0.1])
def test_fast_chunk_streams_track_a_ramp(blend, period):
    """Chunks arriving faster than the blend window (down to every control tick) must not
    feed back on themselves: a constant-velocity ramp is tracked exactly."""
    ex = ChunkExecutor(2, ExecutorConfig(blend=blend))
    rate, v, dt = 500, 0.5, 0.1
    next_chunk, worst = 0.0, 0.0
    for k in range(3 * rate):
        t = k / rate
        if t >= next_chunk - 1e-12:
            ex.submit(Chunk(t, dt, np.stack([v * (t + dt * np.arange(8)), np.zeros(8)], 1)), t)
            next_chunk += period
        worst = max(worst, abs(ex.sample(t)[0] - v * t))
    assert worst < 1e-9


@pytest.mark.parametrize("blend", ["crossfade", "ensemble"])
def test_replanning_every_tick_stays_within_the_chunks_range(blend):
    """Hostile: a re-planned chunk with a random offset at every 500 Hz tick. The target is
    a convex combination of chunk splines, so it never leaves the range of the points sent."""
    rng = np.random.default_rng(0)
    ex = ChunkExecutor(2, ExecutorConfig(blend=blend))
    lo, hi = np.inf, -np.inf
    for k in range(2000):
        t = k / 500
        points = np.sin(t + 0.1 * np.arange(8))[:, None] + rng.uniform(-0.05, 0.05, size=(8, 2))
        lo, hi = min(lo, points.min()), max(hi, points.max())
        ex.submit(Chunk(t, 0.1, points), t)
        y = ex.sample(t)
        # The natural spline may overshoot its points slightly; allow a small margin.
        assert np.all(y >= lo - 0.05) and np.all(y <= hi + 0.05), (k, y)
