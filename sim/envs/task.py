"""What a task adds to the arm environment: placement on reset, goal, reward and success.

The env (arm_env.py) owns the physics, the action and the observation; a task only reads the
state it is handed. One file per task: reach.py, push.py, lift.py, insertion.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import mujoco
import numpy as np


@dataclass
class TaskState:
    """What reward and success may depend on (world = base frame)."""

    tcp_pos: np.ndarray  # (3,)
    gripper: float  # opening fraction, 0 closed, 1 open
    object_pos: np.ndarray | None  # (3,) or None for tasks without an object
    object_quat: np.ndarray | None  # (4,) w x y z
    goal_pos: np.ndarray  # (3,)


class Task(Protocol):
    name: str
    has_object: bool

    def bind(self, model: mujoco.MjModel) -> None:
        """Look up the ids the task needs, once."""

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        """Place the goal (and the object, through `place_object`) for a new episode."""

    def goal_pos(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """(3,) goal point in the base frame."""

    def evaluate(self, state: TaskState) -> tuple[float, bool]:
        """(dense reward, success) for the state after a step."""


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def place_object(model: mujoco.MjModel, data: mujoco.MjData, pos, yaw: float = 0.0) -> None:
    """Put the free body `object` at pos with the given yaw, at rest."""
    joint = model.joint("object_joint")
    qadr, dadr = joint.qposadr[0], joint.dofadr[0]
    data.qpos[qadr : qadr + 3] = pos
    data.qpos[qadr + 3 : qadr + 7] = yaw_quat(yaw)
    data.qvel[dadr : dadr + 6] = 0.0


def closeness(distance: float, scale: float) -> float:
    """1 at distance 0, falling smoothly toward 0 beyond `scale`."""
    return 1.0 - float(np.tanh(distance / scale))
