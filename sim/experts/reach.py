"""Reach expert: straight to the goal point, gripper down and open."""

from __future__ import annotations

import numpy as np

from robot_rl import keys
from sim.experts.flaws import FlawInjector
from sim.experts.motion import Motion, gripper_yaw


class ReachExpert:
    def __init__(self, motion: Motion, flaws: FlawInjector):
        self.motion, self.flaws = motion, flaws

    def reset(self) -> None:
        self.flaws.reset()
        self._yaw: float | None = None

    def act(self, obs: dict) -> np.ndarray:
        if self._yaw is None:
            self._yaw = gripper_yaw(obs[keys.EE_QUAT])
        goal = obs[keys.GOAL_POS].astype(np.float64) + self.flaws.offset
        return self.flaws.apply(self.motion.action(obs, goal, self._yaw, 1.0))
