"""Lift: grasp a 4 cm cube and raise its centre at least 8 cm above where it rested."""

from __future__ import annotations

import mujoco
import numpy as np

from sim.envs.task import TaskState, closeness, place_object


class LiftTask:
    name = "lift"
    has_object = True
    cube_half = 0.02
    object_low = np.array([0.38, -0.15])
    object_high = np.array([0.55, 0.15])
    lift_height = 0.08  # m above the resting height
    goal_height = 0.12  # m, the goal point shown to the policy (above the success threshold)

    def bind(self, model: mujoco.MjModel) -> None:
        self._goal = model.site("goal").id

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        cube = rng.uniform(self.object_low, self.object_high)
        place_object(model, data, [cube[0], cube[1], self.cube_half], yaw=rng.uniform(-np.pi / 4, np.pi / 4))
        model.site_pos[self._goal] = [cube[0], cube[1], self.goal_height]

    def goal_pos(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        return model.site_pos[self._goal].copy()

    def evaluate(self, state: TaskState) -> tuple[float, bool]:
        height = float(state.object_pos[2]) - self.cube_half
        to_cube = float(np.linalg.norm(state.tcp_pos - state.object_pos))
        lifted = float(np.clip(height / self.lift_height, 0.0, 1.0))
        reward = 0.5 * closeness(to_cube, 0.05) + 0.25 * (1.0 - state.gripper) * (to_cube < 0.02) + lifted
        return reward, height >= self.lift_height
