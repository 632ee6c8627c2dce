"""Lift expert: above the cube, fingers square to its faces; down, close, lift.

above (10 cm) -> descend -> close (6 steps) -> lift to 18 cm; reopen and retry if the cube
is not between the fingers when they have closed.
"""

from __future__ import annotations

import numpy as np

from robot_rl import keys
from sim.experts.flaws import FlawInjector
from sim.experts.motion import Motion, grasp_yaw, gripper_yaw, object_yaw

GRASP_Z, ABOVE_Z, LIFT_Z = 0.03, 0.1, 0.18
CLOSE_STEPS = 6


class LiftExpert:
    def __init__(self, motion: Motion, flaws: FlawInjector):
        self.motion, self.flaws = motion, flaws

    def reset(self) -> None:
        self.flaws.reset()
        self.phase, self.count = "above", 0

    def act(self, obs: dict) -> np.ndarray:
        tcp = obs[keys.EE_POS].astype(np.float64)
        pose = obs[keys.OBJECT_POSE].astype(np.float64)
        cube = pose[:3] + self.flaws.offset
        yaw = grasp_yaw(object_yaw(pose[3:]), gripper_yaw(obs[keys.EE_QUAT]))
        xy_err = np.linalg.norm(tcp[:2] - cube[:2])

        if self.phase == "above":
            if xy_err < 0.008 and tcp[2] < ABOVE_Z + 0.02:
                self.phase = "descend"
            return self._act(obs, [cube[0], cube[1], ABOVE_Z], yaw, 1.0)
        if self.phase == "descend":
            if tcp[2] < GRASP_Z + 0.006:
                self.phase, self.count = "close", 0
            return self._act(obs, [cube[0], cube[1], GRASP_Z], yaw, 1.0, max_step=0.03)
        if self.phase == "close":
            self.count += 1
            if self.count >= CLOSE_STEPS:
                self.phase = "lift"
            return self._act(obs, [tcp[0], tcp[1], GRASP_Z], yaw, 0.0)
        # lift; if the fingers closed on nothing, open and try again
        if float(obs[keys.GRIPPER_POS][0]) < 0.2:
            self.phase = "above"
            return self._act(obs, [tcp[0], tcp[1], ABOVE_Z], yaw, 1.0)
        return self._act(obs, [tcp[0], tcp[1], LIFT_Z], yaw, 0.0)

    def _act(self, obs, pos, yaw, gripper, max_step=None) -> np.ndarray:
        return self.flaws.apply(
            self.motion.action(obs, np.asarray(pos, dtype=np.float64), yaw, gripper, max_step)
        )
