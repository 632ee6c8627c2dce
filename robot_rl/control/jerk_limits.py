"""Jerk-limited motion of one command stream, per joint: the math under the safety filter.

The filter sends positions p_k every control period dt. Velocity, acceleration and jerk
are the finite differences of consecutive commands, the quantities a drive sees:

    v_k = (p_k - p_{k-1}) / dt     a_k = (v_k - v_{k-1}) / dt     j_k = (a_k - a_{k-1}) / dt

so one step is the discrete triple integrator: a' = a + j dt, v' = v + a' dt, p' = p + v' dt,
and every step chooses the next acceleration a' inside an interval that keeps

    |j| <= J,  |a'| <= A,  |v'| <= V   and the position limits, forever after.

"Forever after" needs two invariants, because a jerk limit means neither the acceleration
nor the velocity can be stopped at once:

1. Velocity. With a > 0 the velocity keeps rising while a is ramped down at -J; it rises by
   at most a^2 / (2 J) (the discrete sum is below the continuous integral). So we require
       g_up(v, a) = v + max(a, 0)^2 / (2 J) <= V    and    g_lo(v, a) = v - max(-a, 0)^2 / (2 J) >= -V
   at every step. `accel_bounds` turns both into bounds on a'. If they hold now, "ramp a
   toward zero at full jerk" keeps them next step, so the interval is never empty.

2. Position. A braking law `brake_accel` (ramp the acceleration at up to J onto a discrete
   braking curve that reaches v = 0 and a = 0 together, jerk Js = 0.8 J along it) stops the joint.
   The invariant is: *following the braking law from the current state never leaves the
   position limits.* A candidate step is accepted only if p' + stop_distance(v', a') stays
   inside, where stop_distance is a closed-form upper bound on how far the braking law
   travels (tests/control check the bound against simulation over the whole (v, a) range).
   If no candidate passes, the filter applies the braking law itself, whose next state
   satisfies the invariant because it is the same braking trajectory one step later.

Everything is vectorised over joints (arrays of shape (J,)); nothing allocates per joint.
"""

from __future__ import annotations

import numpy as np

# The braking law follows its curve with this fraction of the jerk limit, keeping the rest
# as headroom for the discrete-time lag of following it (no chatter at the stop).
BRAKE_JERK_FRACTION = 0.8


def accel_bounds(
    v: np.ndarray, a: np.ndarray, vmax: np.ndarray, amax: np.ndarray, jmax: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Interval [lo, hi] for the next acceleration a' that respects jerk, acceleration and
    the velocity invariant (1). Never empty when (v, a) satisfies the invariant; rounding
    is resolved toward the always-feasible "acceleration toward zero" step."""
    room_up = vmax - v
    hi_v = np.where(
        room_up > 0, jmax * (np.sqrt(dt * dt + 2.0 * np.maximum(room_up, 0.0) / jmax) - dt), room_up / dt
    )
    room_lo = vmax + v
    lo_v = -np.where(
        room_lo > 0, jmax * (np.sqrt(dt * dt + 2.0 * np.maximum(room_lo, 0.0) / jmax) - dt), room_lo / dt
    )
    step = jmax * dt
    lo = np.maximum(np.maximum(a - step, -amax), lo_v)
    hi = np.minimum(np.minimum(a + step, amax), hi_v)
    bad = lo > hi
    if bad.any():
        toward_zero = a - np.clip(a, -step, step)
        lo = np.where(bad, toward_zero, lo)
        hi = np.where(bad, toward_zero, hi)
    return lo, hi


def brake_accel(v: np.ndarray, a: np.ndarray, amax: np.ndarray, jmax: np.ndarray, dt: float) -> np.ndarray:
    """The braking law's wish for the next acceleration (before `accel_bounds` clipping).

    The discrete braking curve: with h = Js dt, a velocity v = dt h n (n + 1) / 2 is brought to
    rest by the accelerations -n h, -(n - 1) h, ..., 0 (jerk exactly Js). The law solves for the
    real n, so the state one step later sits on the curve at n - 1: following it needs jerk Js
    and no more. Below n = 1 one dead-beat step (v' = 0) ends the motion exactly; above
    n h = A it cruises at -A. Mirror image for v < 0.
    """
    h = BRAKE_JERK_FRACTION * jmax * dt
    speed = np.abs(v)
    n = 0.5 * (np.sqrt(1.0 + 8.0 * speed / (dt * h)) - 1.0)
    target = np.where(n <= 1.0, speed / dt, np.minimum(amax, n * h))
    return -np.sign(v) * target


def stop_distance(v: np.ndarray, a: np.ndarray, amax: np.ndarray, jmax: np.ndarray, dt: float) -> np.ndarray:
    """Upper bound on how far in the +direction the braking law travels from (v, a), >= 0.

    Phase 1: ramp any positive acceleration away (velocity peaks at vp = v + a+^2/2J) and then
    reach the braking curve: at most (a+ + A)/J seconds, travelling at most vp per second.
    Phase 2: follow a = -min(A, sqrt(2 Js v)) from vp to rest: constant -A down to
    vb = A^2/(2 Js), then the jerk ramp, which covers a0^3/(6 Js^2) from a0 = sqrt(2 Js v).
    Discrete time adds at most a few steps of travel at vp; 3 dt vp plus a micro-radian covers it.
    For the -direction use stop_distance(-v, -a, ...).
    """
    js = BRAKE_JERK_FRACTION * jmax
    ap = np.maximum(a, 0.0)
    vp = np.maximum(v + ap * ap / (2.0 * jmax), 0.0)
    vb = amax * amax / (2.0 * js)
    a0 = np.sqrt(2.0 * js * np.minimum(vp, vb))
    ramp = a0 * a0 * a0 / (6.0 * js * js)
    cruise = np.maximum(vp * vp - vb * vb, 0.0) / (2.0 * amax)
    reach = vp * (ap + amax) / jmax
    return reach + cruise + ramp + 3.0 * dt * vp + 1e-6


def worst_stopping_time(vmax: np.ndarray, amax: np.ndarray, jmax: np.ndarray) -> np.ndarray:
    """Time the braking law needs from the worst state (|v| = V, a = A away from rest), s."""
    js = BRAKE_JERK_FRACTION * jmax
    vb = amax * amax / (2.0 * js)
    t_reach = 2.0 * amax / jmax
    t_cruise = np.maximum(vmax - vb, 0.0) / amax
    t_ramp = np.sqrt(2.0 * np.minimum(vmax, vb) / js)
    return t_reach + t_cruise + t_ramp


def step(
    p: np.ndarray, v: np.ndarray, a_next: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate one step with next acceleration a_next: returns (p', v', a')."""
    v_next = v + a_next * dt
    return p + v_next * dt, v_next, a_next
