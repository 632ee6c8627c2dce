"""The braking math: the closed-form stop distance bounds the simulated braking law, which
respects every limit and stops within worst_stopping_time."""

import numpy as np
import pytest

from robot_rl.control import jerk_limits as jl


def _viable_grid(vmax, amax, jmax, n):
    v, a = np.meshgrid(np.linspace(-vmax, vmax, n), np.linspace(-amax, amax, n))
    v, a = v.ravel(), a.ravel()
    ok = (v + np.maximum(a, 0) ** 2 / (2 * jmax) <= vmax) & (v - np.maximum(-a, 0) ** 2 / (2 * jmax) >= -vmax)
    return v[ok], a[ok]


@pytest.mark.parametrize(
    "vmax, amax, jmax, dt",
    [
        (3.1416, 10.0, 400.0, 0.002),
        (2.0, 15.0, 5000.0, 0.001),
        (1.0, 3.0, 50.0, 0.004),
        (3.0, 30.0, 300.0, 0.002),
    ],
)
def test_braking_law_stays_within_its_bound_and_limits(vmax, amax, jmax, dt):
    v0, a0 = _viable_grid(vmax, amax, jmax, 121)
    n = v0.size
    V, A, J = (np.full(n, x) for x in (vmax, amax, jmax))
    p, v, a = np.zeros(n), v0.copy(), a0.copy()
    top, bottom = np.zeros(n), np.zeros(n)
    steps = int(np.ceil(jl.worst_stopping_time(vmax, amax, jmax) / dt)) + 1
    for _ in range(steps):
        lo, hi = jl.accel_bounds(v, a, V, A, J, dt)
        assert np.all(lo <= hi)
        a_next = np.clip(jl.brake_accel(v, a, A, J, dt), lo, hi)
        assert np.all(np.abs(a_next - a) <= jmax * dt * (1 + 1e-9))
        assert np.all(np.abs(a_next) <= amax * (1 + 1e-12))
        p, v, a = jl.step(p, v, a_next, dt)
        assert np.all(np.abs(v) <= vmax * (1 + 1e-12))
        top, bottom = np.maximum(top, p), np.minimum(bottom, p)
    # Every state is at rest, exactly, within the worst-case stopping time.
    assert np.all(v == 0) and np.all(a == 0)
    up, down = jl.stop_distance(v0, a0, A, J, dt), jl.stop_distance(-v0, -a0, A, J, dt)
    assert np.all(top <= up) and np.all(-bottom <= down)
    # The filter's fast path relies on (vmax, amax) giving the longest stopping distance.
    longest = jl.stop_distance(np.array(vmax), np.array(amax), amax, jmax, dt)
    assert up.max() <= longest and down.max() <= longest


def test_accel_bounds_keep_the_velocity_invariant_under_random_choices():
    rng = np.random.default_rng(0)
    dt, n = 0.002, 2000
    V, A, J = np.full(n, 3.0), np.full(n, 10.0), np.full(n, 400.0)
    v, a = np.zeros(n), np.zeros(n)
    for _ in range(500):
        lo, hi = jl.accel_bounds(v, a, V, A, J, dt)
        a_next = lo + rng.random(n) * (hi - lo)
        # The extremes are the dangerous choices: take them a third of the time each.
        pick = rng.random(n)
        a_next = np.where(pick < 0.33, lo, np.where(pick > 0.66, hi, a_next))
        _, v, a = jl.step(np.zeros(n), v, a_next, dt)
        assert np.all(v + np.maximum(a, 0) ** 2 / (2 * J) <= V + 1e-9)
        assert np.all(v - np.maximum(-a, 0) ** 2 / (2 * J) >= -V - 1e-9)
