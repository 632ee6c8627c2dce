"""The limits every command stream must respect, checked on finite differences (tests/control).

A module with its own name (not conftest) so that `from control_limits import ...` resolves
to this file in a whole-suite run, where several conftest.py files exist.
"""

import numpy as np


def limit_violations(commands: np.ndarray, hw, start: np.ndarray) -> dict[str, float]:
    """Worst excess over each limit (<= 0 everywhere means within limits) of a command stream
    (N, J + 1) sent after the arm rested at `start` (J + 1,)."""
    n = hw.num_joints
    arm = np.vstack([np.repeat(start[None, :n], 3, axis=0), commands[:, :n]])
    dt = hw.control_period_s
    v = np.diff(arm, axis=0) / dt
    a = np.diff(v, axis=0) / dt
    j = np.diff(a, axis=0) / dt
    margin = hw.safety.position_margin
    lo, hi = (
        np.minimum(hw.position_lower + margin, start[:n]),
        np.maximum(hw.position_upper - margin, start[:n]),
    )
    grip = np.concatenate([[start[n]], commands[:, n]])
    return {
        "position": float(max((arm - hi).max(), (lo - arm).max())),
        "velocity": float((np.abs(v) / hw.velocity_limit).max() - 1),
        "acceleration": float((np.abs(a) / hw.acceleration_limit).max() - 1),
        "jerk": float((np.abs(j) / hw.jerk_limit).max() - 1),
        "gripper_range": float(max(grip.max() - 1, -grip.min())),
        "gripper_rate": float((np.abs(np.diff(grip)) / (hw.gripper.velocity_limit * dt)).max() - 1),
        "finite": 0.0 if np.all(np.isfinite(commands)) else 1.0,
    }


def assert_within_limits(commands, hw, start, tol=1e-6):
    bad = {k: x for k, x in limit_violations(np.asarray(commands), hw, np.asarray(start)).items() if x > tol}
    assert not bad, f"limits exceeded (relative excess): {bad}"
