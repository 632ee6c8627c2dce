"""Natural cubic spline through one chunk's uniformly spaced points: the control-rate interpolant.

Why a natural cubic spline: it passes through every predicted point, has continuous
position, velocity and acceleration inside the chunk (C2, which a quintic-per-segment
Hermite also gives but only with velocities and accelerations the policy does not
predict), and its second derivative is zero at both ends, so holding the end point's
position with its end velocity extrapolated linearly keeps C2 at the chunk's ends too.
Catmull-Rom or linear interpolation would step the acceleration at every chunk point.

    t0        t0+dt      t0+2dt            t0+(T-1)dt
    |----------|----------|-- ... ----------|
    p[0]       p[1]       p[2]              p[T-1]   then p[T-1] + v_end (t - t_end), see `end`
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _second_derivative_operator(n: int) -> np.ndarray:
    """(n, n) matrix M with second derivatives = M @ points / dt^2 (natural ends)."""
    op = np.zeros((n, n))
    if n < 3:
        return op
    m = n - 2
    tri = 4.0 * np.eye(m) + np.eye(m, k=1) + np.eye(m, k=-1)
    second_diff = np.zeros((m, n))
    for i in range(m):
        second_diff[i, i : i + 3] = (6.0, -12.0, 6.0)
    op[1:-1] = np.linalg.solve(tri, second_diff)
    op.flags.writeable = False
    return op


class CubicChunk:
    """The interpolant of one chunk: points (T, D) at t0, t0 + dt, ... on the robot clock."""

    __slots__ = ("t0", "dt", "points", "coef", "t_end", "end_velocity")

    def __init__(self, t0: float, dt: float, points: np.ndarray):
        self.t0 = float(t0)
        self.dt = float(dt)
        self.points = points
        n = len(points)
        second = (_second_derivative_operator(n) @ points) / (dt * dt)
        self.t_end = self.t0 + (n - 1) * self.dt
        if n >= 2:
            # Per segment: y(u) = c0 + c1 u + c2 u^2 + c3 u^3 for u in [0, dt).
            m0, m1 = second[:-1], second[1:]
            slope = (points[1:] - points[:-1]) / dt
            self.coef = np.stack(
                [points[:-1], slope - dt * (2.0 * m0 + m1) / 6.0, m0 / 2.0, (m1 - m0) / (6.0 * dt)]
            )
            # Derivative at the end (the second derivative there is zero).
            self.end_velocity = slope[-1] + dt * m0[-1] / 6.0
        else:
            self.coef = None
            self.end_velocity = np.zeros_like(points[0])

    def __call__(self, t: float, extrapolate: bool = False) -> np.ndarray:
        """Position at time t. Before t0: the first point. After the end: the last point, or with
        `extrapolate` the last point plus the end velocity times the overrun (keeps C2)."""
        if t >= self.t_end:
            if extrapolate:
                return self.points[-1] + self.end_velocity * (t - self.t_end)
            return self.points[-1]
        if t <= self.t0:
            return self.points[0]
        x = (t - self.t0) / self.dt
        i = int(x)
        u = (x - i) * self.dt
        c = self.coef[:, i]
        return c[0] + u * (c[1] + u * (c[2] + u * c[3]))
