"""Insertion: pick up a 20 mm square peg and insert it 15 mm deep into a 22 mm square hole.

About 1 mm clearance per side. The hole block is fixed to the table; its position changes per
episode (the body is moved), the peg stands upright at a random place and yaw. GOAL_POS is the
centre of the hole's mouth.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.envs.task import TaskState, closeness, place_object


class InsertionTask:
    name = "insertion"
    has_object = True
    peg_half_height = 0.05
    hole_depth = 0.03
    hole_low = np.array([0.45, 0.05])
    hole_high = np.array([0.6, 0.2])
    peg_low = np.array([0.38, -0.2])
    peg_high = np.array([0.52, -0.05])
    insert_depth = 0.015  # m: success when the peg's bottom is this far below the mouth ...
    xy_tolerance = 0.005  # m: ... with its axis this close to the hole's

    def bind(self, model: mujoco.MjModel) -> None:
        self._hole = model.body("hole").id

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        model.body_pos[self._hole, :2] = rng.uniform(self.hole_low, self.hole_high)
        peg = rng.uniform(self.peg_low, self.peg_high)
        place_object(model, data, [peg[0], peg[1], self.peg_half_height], yaw=rng.uniform(-0.4, 0.4))

    def goal_pos(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        return model.body_pos[self._hole] + np.array([0.0, 0.0, self.hole_depth])

    def evaluate(self, state: TaskState) -> tuple[float, bool]:
        bottom = float(state.object_pos[2]) - self.peg_half_height
        xy = float(np.linalg.norm(state.object_pos[:2] - state.goal_pos[:2]))
        depth = state.goal_pos[2] - bottom  # > 0 once the peg is in the hole
        to_peg = float(np.linalg.norm(state.tcp_pos - state.object_pos - [0, 0, self.peg_half_height - 0.02]))
        lifted = float(np.clip(bottom / 0.04, 0.0, 1.0)) if xy > 0.02 else 1.0
        reward = (
            0.5 * closeness(to_peg, 0.05)
            + 0.5 * lifted
            + closeness(xy, 0.05)
            + (xy < 0.01) * float(np.clip(depth / self.insert_depth, 0.0, 1.0))
        )
        return reward, xy < self.xy_tolerance and depth >= self.insert_depth
