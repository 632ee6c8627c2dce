"""Turning a desired gripper pose into absolute joint targets, for the scripted experts.

The gripper always points straight down; `yaw` turns it about the world z axis (yaw 0: fingers
close along world y, the `home` keyframe's orientation). Each call moves the target at most
`max_step` metres from where the tool centre point is now, then solves damped-least-squares IK
(robot_rl.control.kinematics, the same code the teleop node uses) seeded at the measured joints.
A few IK iterations per call are enough: the target is at most 5 cm away and the next policy
step starts again from the measured joints. Measured over 100 episodes: 2, 3 and 4 iterations
all give 100/100 on every task; 1 gives 100/100 on reach, push and lift but 50/100 on insertion.
sim.experts.IK_ITERATIONS picks the fewest that work per task (each iteration ~0.1 ms).
"""

from __future__ import annotations

import functools

import numpy as np

from robot_rl import keys
from robot_rl.config.hardware import HardwareConfig
from robot_rl.control.kinematics import ArmKinematics

# Rotation of the gripper frame at yaw 0: x (finger axis) along world y, z (approach) down.
_DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def down_quat(yaw: float) -> np.ndarray:
    return np.array(_down_quat(float(yaw)))


@functools.lru_cache(maxsize=256)
def _down_quat(yaw: float) -> tuple[float, ...]:
    """Cached: the experts ask for the same few yaws (0 for reach and push) at every step."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ _DOWN
    # Quaternion w x y z from a rotation matrix (trace is well away from -1 for these poses).
    w = np.sqrt(max(1.0 + np.trace(rot), 1e-12)) / 2
    if w > 1e-3:
        return (
            float(w),
            float((rot[2, 1] - rot[1, 2]) / (4 * w)),
            float((rot[0, 2] - rot[2, 0]) / (4 * w)),
            float((rot[1, 0] - rot[0, 1]) / (4 * w)),
        )
    # w ~ 0: a half turn about an axis in the xy plane.
    x = np.sqrt(max((1 + rot[0, 0]) / 2, 0.0))
    y = np.sqrt(max((1 + rot[1, 1]) / 2, 0.0)) * (1 if rot[0, 1] >= 0 else -1)
    return (0.0, float(x), float(y), 0.0)


def gripper_yaw(ee_quat: np.ndarray) -> float:
    """Yaw (as in down_quat) of a downward-pointing gripper from its quaternion w x y z."""
    w, x, y, z = (float(v) for v in ee_quat)
    finger_axis = np.array([1 - 2 * (y * y + z * z), 2 * (x * y + w * z)])  # first column, xy part
    return wrap(np.arctan2(finger_axis[1], finger_axis[0]) - np.pi / 2)


def object_yaw(quat: np.ndarray) -> float:
    w, x, y, z = (float(v) for v in quat)
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def grasp_yaw(object_yaw_: float, current: float = 0.0) -> float:
    """Gripper yaw that closes the fingers on a pair of faces of a square object, nearest `current`."""
    candidates = [wrap(object_yaw_ + k * np.pi / 2) for k in range(4)]
    return min(candidates, key=lambda c: abs(wrap(c - current)))


class Motion:
    def __init__(self, hw: HardwareConfig, max_step: float = 0.05, ik_iterations: int = 2):
        self.kin = ArmKinematics(hw)
        self.max_step = max_step
        self.ik_iterations = ik_iterations

    def joint_targets(
        self, obs: dict, pos: np.ndarray, yaw: float, max_step: float | None = None
    ) -> np.ndarray:
        q = obs[keys.JOINT_POS].astype(np.float64)
        ee = obs[keys.EE_POS].astype(np.float64)
        step = self.max_step if max_step is None else max_step
        delta = np.asarray(pos, dtype=np.float64) - ee
        norm = np.linalg.norm(delta)
        if norm > step:
            delta *= step / norm
        target_pos, target_quat = ee + delta, down_quat(yaw)
        for _ in range(self.ik_iterations):
            q = self.kin.ik_step(q, target_pos, target_quat, damping=0.02, max_step=0.3)
        return q

    def action(self, obs: dict, pos, yaw: float, gripper: float, max_step: float | None = None) -> np.ndarray:
        return np.append(self.joint_targets(obs, pos, yaw, max_step), gripper).astype(np.float32)
