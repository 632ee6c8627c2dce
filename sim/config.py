"""Typed configuration of the simulated tasks (read with robot_rl.config.loader).

    cfg = from_dict(SimEnvConfig, {"task": "push", "cameras": ["front", "wrist"]}, source="make_env")

Every domain-randomization field is off by default (scales (1, 1), jitters and noise 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TASKS = ("reach", "push", "lift", "insertion")
TaskName = Literal["reach", "push", "lift", "insertion"]
CAMERAS = ("front", "wrist")

# Episode lengths at the default 10 Hz policy rate: long enough for the scripted expert with slack.
DEFAULT_MAX_EPISODE_STEPS = {"reach": 50, "push": 120, "lift": 100, "insertion": 160}


def _check_scale(name: str, scale: tuple[float, float]) -> None:
    lo, hi = scale
    if not 0 < lo <= hi:
        raise ValueError(f"randomization.{name} must be [low, high] with 0 < low <= high, got {list(scale)}")


@dataclass(frozen=True)
class RandomizationConfig:
    """Sim-to-real domain randomization, drawn once per reset from the env's seeded generator.

    Scales multiply the nominal model value by a factor drawn uniformly from [low, high].
    """

    friction_scale: tuple[float, float] = (1.0, 1.0)  # sliding friction of every geom
    object_mass_scale: tuple[float, float] = (1.0, 1.0)  # mass and inertia of the object
    joint_damping_scale: tuple[float, float] = (1.0, 1.0)  # arm joint damping
    actuator_gain_scale: tuple[float, float] = (1.0, 1.0)  # arm position gains kp
    camera_pos_jitter: float = 0.0  # m, uniform per axis, on every observed camera
    camera_rot_jitter: float = 0.0  # rad, uniform per axis (small-angle), on every observed camera
    obs_noise_std: float = 0.0  # Gaussian noise on float observations (rad, rad/s, m)
    action_latency_steps: int = 0  # the action applied at step t is the one given at t - latency

    def __post_init__(self):
        for name in ("friction_scale", "object_mass_scale", "joint_damping_scale", "actuator_gain_scale"):
            _check_scale(name, getattr(self, name))
        for name in ("camera_pos_jitter", "camera_rot_jitter", "obs_noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"randomization.{name} must be >= 0")
        if self.action_latency_steps < 0:
            raise ValueError("randomization.action_latency_steps must be >= 0")


@dataclass(frozen=True)
class SimEnvConfig:
    task: TaskName
    hardware: str = "sim_ur5e"  # hardware config name or path: joint names and limits come from it
    policy_rate_hz: float = 10.0  # env.step() rate
    physics_rate_hz: float = 500.0  # MuJoCo timestep = 1 / physics_rate_hz
    cameras: tuple[str, ...] = ()  # subset of ("front", "wrist"); () = state only
    image_size: int = 96  # square images, pixels
    pretty_render: bool = False  # shadows, reflections, skybox, 4x multisampling (slow; for people)
    reward: Literal["dense", "sparse"] = "dense"
    max_episode_steps: int = 0  # 0: the task's default (DEFAULT_MAX_EPISODE_STEPS)
    terminate_on_success: bool = True
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if not self.policy_rate_hz > 0 or not self.physics_rate_hz > 0:
            raise ValueError("policy_rate_hz and physics_rate_hz must be positive")
        ratio = self.physics_rate_hz / self.policy_rate_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(
                f"physics_rate_hz / policy_rate_hz must be a whole number >= 1, got {ratio:g} "
                f"({self.physics_rate_hz:g} / {self.policy_rate_hz:g})"
            )
        unknown = [c for c in self.cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown camera {unknown[0]!r}; cameras are {list(CAMERAS)}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must not repeat, got {list(self.cameras)}")
        if not 8 <= self.image_size <= 2048:
            raise ValueError(f"image_size must be in [8, 2048], got {self.image_size}")
        if self.max_episode_steps < 0:
            raise ValueError("max_episode_steps must be >= 0 (0: task default)")

    @property
    def substeps(self) -> int:
        """Physics steps per env step (50 at the defaults)."""
        return round(self.physics_rate_hz / self.policy_rate_hz)

    @property
    def episode_steps(self) -> int:
        return self.max_episode_steps or DEFAULT_MAX_EPISODE_STEPS[self.task]
