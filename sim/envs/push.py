"""Push: slide a 5 cm cube until its centre is within 4 cm of the target disc's centre.

The cube starts 10-25 cm from the target with a random yaw; the gripper may push it any way
it likes (the scripted expert pushes with closed fingers from behind the cube).
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.envs.task import TaskState, closeness, place_object


class PushTask:
    name = "push"
    has_object = True
    cube_half = 0.025
    object_low = np.array([0.4, -0.15])
    object_high = np.array([0.55, 0.15])
    goal_low = np.array([0.35, -0.22])
    goal_high = np.array([0.65, 0.22])
    distance_range = (0.10, 0.25)
    success_distance = 0.04  # m, cube centre to goal centre in the table plane

    def bind(self, model: mujoco.MjModel) -> None:
        self._goal = model.site("goal").id

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        cube = rng.uniform(self.object_low, self.object_high)
        while True:
            goal = rng.uniform(self.goal_low, self.goal_high)
            if self.distance_range[0] <= np.linalg.norm(goal - cube) <= self.distance_range[1]:
                break
        place_object(model, data, [cube[0], cube[1], self.cube_half], yaw=rng.uniform(-np.pi / 4, np.pi / 4))
        model.site_pos[self._goal, :2] = goal

    def goal_pos(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        return model.site_pos[self._goal].copy()

    def evaluate(self, state: TaskState) -> tuple[float, bool]:
        to_goal = float(np.linalg.norm(state.object_pos[:2] - state.goal_pos[:2]))
        to_cube = float(np.linalg.norm(state.tcp_pos - state.object_pos))
        reward = 0.5 * closeness(to_cube, 0.1) + closeness(to_goal, 0.1)
        return reward, to_goal < self.success_distance
