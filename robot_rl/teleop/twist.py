"""Cartesian velocity (a Twist from a SpaceMouse or keyboard) to joint targets by differential IK.

Each tick the commanded tool velocity [v; w] (base frame, m/s and rad/s) is turned into a
joint step with the damped least-squares inverse of the arm Jacobian at the current target:

    dq = J^T (J J^T + damping^2 I)^-1 [v; w] dt          q_target <- clip(q_target + dq)

Integrating from the last target (not the measured position) keeps a slow arm from
drifting; while the target is more than `max_lead` ahead of the measured position it waits
for the arm, so a slow or blocked arm never winds it up.
A Twist older than `twist_timeout_s` counts as zero: the target holds still.

    twist ──► |v|,|w| clipped ──► dq = DLS(J) [v; w] dt ──► joint targets ──► safety filter
                                   (controller node)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.config.hardware import HardwareConfig
from robot_rl.control.kinematics import ArmKinematics


@dataclass(frozen=True)
class TwistTeleopConfig:
    linear_scale: float = 1.0  # Twist.linear units -> m/s
    angular_scale: float = 1.0  # Twist.angular units -> rad/s
    max_linear_speed: float = 0.25  # m/s
    max_angular_speed: float = 1.0  # rad/s
    damping: float = 0.05
    twist_timeout_s: float = 0.25
    max_lead: float = 0.2  # rad: largest |target - measured| per joint

    def __post_init__(self):
        for what in ("max_linear_speed", "max_angular_speed", "twist_timeout_s", "max_lead", "damping"):
            if not getattr(self, what) > 0:
                raise ValueError(f"teleop {what} must be positive")


class TwistTeleop:
    """Holds the joint target and the latest Twist; `step(q_measured, now, dt)` advances it."""

    def __init__(self, hw: HardwareConfig, config: TwistTeleopConfig | None = None):
        self.hw = hw
        self.config = config or TwistTeleopConfig()
        self.kin = ArmKinematics(hw)
        self.target: np.ndarray | None = None
        self._twist = np.zeros(6)
        self._twist_time = -np.inf

    def set_twist(self, linear, angular, now: float) -> None:
        """linear, angular: 3-vectors in the base frame, in Twist units (scaled here)."""
        c = self.config
        v = np.asarray(linear, dtype=np.float64) * c.linear_scale
        w = np.asarray(angular, dtype=np.float64) * c.angular_scale
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            raise ValueError("twist has a non-finite component")
        speed = np.linalg.norm(v)
        if speed > c.max_linear_speed:
            v *= c.max_linear_speed / speed
        rate = np.linalg.norm(w)
        if rate > c.max_angular_speed:
            w *= c.max_angular_speed / rate
        self._twist = np.concatenate([v, w])
        self._twist_time = now

    def velocity(self, now: float) -> np.ndarray:
        """The tool velocity in force now: the latest Twist, or zero once it is stale."""
        if now - self._twist_time > self.config.twist_timeout_s:
            return np.zeros(6)
        return self._twist.copy()

    def joint_velocity(self, q: np.ndarray, now: float) -> np.ndarray:
        """qdot (J,) that moves the tool at the current Twist from joint position q (DLS)."""
        xdot = self.velocity(now)
        if not np.any(xdot):
            return np.zeros(self.hw.num_joints)
        jac = self.kin.jacobian(q)
        lam = self.config.damping**2 * np.eye(6)
        return jac.T @ np.linalg.solve(jac @ jac.T + lam, xdot)

    def step(self, q_measured: np.ndarray, now: float, dt: float) -> np.ndarray:
        """The next joint target (J,) after `dt` seconds of the current Twist."""
        q_measured = np.asarray(q_measured, dtype=np.float64)
        if self.target is None:
            self.target = q_measured.copy()
        # The target waits while it is more than max_lead ahead of the arm (along the motion): a slow
        # or blocked arm neither winds it up nor gets dragged faster than the Twist asks.
        qdot = self.joint_velocity(self.target, now)
        lead = self.target - q_measured
        if np.max(np.abs(lead)) <= self.config.max_lead or float(lead @ qdot) <= 0.0:
            self.target = np.clip(self.target + qdot * dt, self.hw.position_lower, self.hw.position_upper)
        return self.target.copy()


@dataclass(frozen=True)
class JoyGripperConfig:
    close_button: int = 0
    open_button: int = 1


class JoyGripper:
    """sensor_msgs/Joy buttons to the gripper command in [0, 1] (0 closed, 1 open): a press latches."""

    def __init__(self, config: JoyGripperConfig | None = None, initial: float = 1.0):
        self.config = config or JoyGripperConfig()
        self.command = float(initial)

    def on_buttons(self, buttons) -> float:
        c = self.config
        if c.close_button < len(buttons) and buttons[c.close_button]:
            self.command = 0.0
        elif c.open_button < len(buttons) and buttons[c.open_button]:
            self.command = 1.0
        return self.command
