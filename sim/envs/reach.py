"""Reach: bring the tool centre point within 2 cm of a target point above the table."""

from __future__ import annotations

import mujoco
import numpy as np

from sim.envs.task import TaskState, closeness


class ReachTask:
    name = "reach"
    has_object = False
    goal_low = np.array([0.3, -0.25, 0.05])
    goal_high = np.array([0.6, 0.25, 0.35])
    success_distance = 0.02  # m

    def bind(self, model: mujoco.MjModel) -> None:
        self._goal = model.site("goal").id

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        model.site_pos[self._goal] = rng.uniform(self.goal_low, self.goal_high)

    def goal_pos(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        return model.site_pos[self._goal].copy()

    def evaluate(self, state: TaskState) -> tuple[float, bool]:
        distance = float(np.linalg.norm(state.tcp_pos - state.goal_pos))
        return closeness(distance, 0.1), distance < self.success_distance
