"""The hardware-config schema: one YAML file per robot in hardware_configs/.

Everything that differs between a simulated UR5e, a real UR5e, a Franka FR3 and an
SO-101 is here: joint names and limits, the control rate, the ros2_control interface,
cameras and the safety envelope. Sim, the safety filter, the controller and the ROS
graph read it; none of them copies a limit into code.

    hw = load_hardware_config("sim_ur5e")     # a name in hardware_configs/ or a path
    hw.joint_names                            # ('shoulder_pan_joint', ...)
    hw.position_lower, hw.velocity_limit      # numpy arrays in joint order
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from robot_rl.config.loader import ConfigError, from_yaml


@dataclass(frozen=True)
class JointConfig:
    name: str
    position_limits: tuple[float, float]  # rad
    velocity_limit: float  # rad/s
    acceleration_limit: float  # rad/s^2
    jerk_limit: float  # rad/s^3
    effort_limit: float | None = None  # N m, informational

    def __post_init__(self):
        lo, hi = self.position_limits
        if not lo < hi:
            raise ValueError(f"joint {self.name}: position_limits must be [lower, upper] with lower < upper")
        for what in ("velocity_limit", "acceleration_limit", "jerk_limit"):
            if not getattr(self, what) > 0:
                raise ValueError(f"joint {self.name}: {what} must be positive")


@dataclass(frozen=True)
class GripperConfig:
    """A parallel-jaw gripper commanded by a scalar in [0, 1] (0 closed, 1 open)."""

    name: str  # joint or actuator name in the arm model / driver
    max_opening: float  # m between the fingers when fully open
    command_topic: str = ""  # empty: the gripper command rides on the arm's command topic
    velocity_limit: float = 2.0  # opening fraction per second

    def __post_init__(self):
        if not self.max_opening > 0:
            raise ValueError("gripper.max_opening must be positive")


@dataclass(frozen=True)
class CameraConfig:
    name: str
    width: int
    height: int
    rate_hz: float
    topic: str = ""  # default /camera/<name>/image_raw

    @property
    def image_topic(self) -> str:
        return self.topic or f"/camera/{self.name}/image_raw"

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0 or self.rate_hz <= 0:
            raise ValueError(f"camera {self.name}: width, height and rate_hz must be positive")


@dataclass(frozen=True)
class ControllerInterfaceConfig:
    """How commands reach the arm: a ros2_control controller's topic."""

    kind: Literal["forward_position", "joint_trajectory"]
    command_topic: str  # Float64MultiArray for forward_position, JointTrajectory otherwise
    joint_states_topic: str = "/joint_states"
    driver: str = "mujoco"  # "mujoco" (sim_robot_node) or the vendor ros2_control driver's name


@dataclass(frozen=True)
class SafetyConfig:
    position_margin: float  # rad kept clear of each position limit
    max_step_from_measured: float  # rad: largest |command - measured| per joint
    workspace_min: tuple[float, float, float]  # tool centre point box in the base frame, m
    workspace_max: tuple[float, float, float]
    chunk_timeout_s: float  # watchdog: no fresh chunk for this long -> decelerate to a hold
    joint_state_timeout_s: float  # stale joint states -> hold and report
    stopping_time_s: float  # the hold must reach zero velocity within this

    def __post_init__(self):
        if any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError("safety.workspace_min must be below safety.workspace_max on every axis")
        for what in ("max_step_from_measured", "chunk_timeout_s", "joint_state_timeout_s", "stopping_time_s"):
            if not getattr(self, what) > 0:
                raise ValueError(f"safety.{what} must be positive")
        if self.position_margin < 0:
            raise ValueError("safety.position_margin must be >= 0")


@dataclass(frozen=True)
class RobotModelConfig:
    mjcf: str  # arm model (MJCF) for forward kinematics and simulation, relative to the share dir
    tcp_site: str  # site at the tool centre point
    base_body: str = "base"  # body whose frame the workspace box is expressed in


@dataclass(frozen=True)
class HardwareConfig:
    name: str
    description: str
    model: RobotModelConfig
    joints: tuple[JointConfig, ...]
    gripper: GripperConfig
    control_rate_hz: float
    controller: ControllerInterfaceConfig
    safety: SafetyConfig
    cameras: tuple[CameraConfig, ...] = field(default_factory=tuple)
    source: str = ""  # the file it was read from (filled in by load_hardware_config)

    def __post_init__(self):
        if not self.joints:
            raise ValueError("joints must list at least one joint")
        names = [j.name for j in self.joints]
        if len(set(names)) != len(names):
            raise ValueError(f"joint names must be unique, got {names}")
        if not self.control_rate_hz > 0:
            raise ValueError("control_rate_hz must be positive")
        cams = [c.name for c in self.cameras]
        if len(set(cams)) != len(cams):
            raise ValueError(f"camera names must be unique, got {cams}")
        for j in self.joints:
            if 2 * self.safety.position_margin >= j.position_limits[1] - j.position_limits[0]:
                raise ValueError(f"safety.position_margin leaves no room for joint {j.name}")

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def action_dim(self) -> int:
        """Arm joint targets plus one gripper command."""
        return self.num_joints + 1

    @cached_property
    def position_lower(self) -> np.ndarray:
        return np.array([j.position_limits[0] for j in self.joints])

    @cached_property
    def position_upper(self) -> np.ndarray:
        return np.array([j.position_limits[1] for j in self.joints])

    @cached_property
    def velocity_limit(self) -> np.ndarray:
        return np.array([j.velocity_limit for j in self.joints])

    @cached_property
    def acceleration_limit(self) -> np.ndarray:
        return np.array([j.acceleration_limit for j in self.joints])

    @cached_property
    def jerk_limit(self) -> np.ndarray:
        return np.array([j.jerk_limit for j in self.joints])

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    def camera(self, name: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(
            f"{self.source or self.name}: no camera {name!r} (have {[c.name for c in self.cameras]})"
        )


def load_hardware_config(name_or_path: str | Path) -> HardwareConfig:
    """Read and validate a hardware config; errors name the file and the key."""
    from dataclasses import replace

    from robot_rl.paths import hardware_config_path

    try:
        path = hardware_config_path(name_or_path)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    return replace(from_yaml(HardwareConfig, path), source=str(path))
