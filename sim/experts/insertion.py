"""Insertion expert: grasp the peg near its top, carry it over the hole, align, insert.

    above peg -> descend -> close -> lift -> over hole (peg axis on the hole axis, peg faces
    square to the hole) -> insert slowly while correcting the peg's xy error from OBJECT_POSE.
The peg, not the gripper, is aligned: the grasp offset is measured and cancelled.
"""

from __future__ import annotations

import numpy as np

from robot_rl import keys
from sim.experts.flaws import FlawInjector
from sim.experts.motion import Motion, grasp_yaw, gripper_yaw, object_yaw, wrap

PEG_HALF = 0.05
GRASP_BELOW_TOP = 0.02
CARRY_Z = 0.2  # tcp height while carrying
CLOSE_STEPS = 6


class InsertionExpert:
    def __init__(self, motion: Motion, flaws: FlawInjector):
        self.motion, self.flaws = motion, flaws

    def reset(self) -> None:
        self.flaws.reset()
        self.phase, self.count = "above", 0

    def act(self, obs: dict) -> np.ndarray:
        tcp = obs[keys.EE_POS].astype(np.float64)
        pose = obs[keys.OBJECT_POSE].astype(np.float64)
        peg, peg_yaw = pose[:3], object_yaw(pose[3:])
        hole = obs[keys.GOAL_POS].astype(np.float64) + self.flaws.offset
        current_yaw = gripper_yaw(obs[keys.EE_QUAT])
        grasp_z = peg[2] + PEG_HALF - GRASP_BELOW_TOP

        if self.phase == "above":
            yaw = grasp_yaw(peg_yaw, current_yaw)
            if np.linalg.norm(tcp[:2] - peg[:2]) < 0.006 and abs(tcp[2] - (grasp_z + 0.08)) < 0.02:
                self.phase = "descend"
            return self._act(obs, [peg[0], peg[1], grasp_z + 0.08], yaw, 1.0)
        if self.phase == "descend":
            yaw = grasp_yaw(peg_yaw, current_yaw)
            if tcp[2] < grasp_z + 0.005:
                self.phase, self.count = "close", 0
            return self._act(obs, [peg[0], peg[1], grasp_z], yaw, 1.0, max_step=0.03)
        if self.phase == "close":
            self.count += 1
            if self.count >= CLOSE_STEPS:
                self.phase = "lift"
            return self._act(obs, [tcp[0], tcp[1], tcp[2]], current_yaw, 0.0)
        if float(obs[keys.GRIPPER_POS][0]) < 0.1:  # dropped it or missed it: start over
            self.phase = "above"
            return self._act(obs, [tcp[0], tcp[1], CARRY_Z], current_yaw, 1.0)
        # Peg faces square to the hole's (hole yaw is 0): turn the gripper by the peg's yaw error.
        peg_target_yaw = grasp_yaw(0.0, peg_yaw)
        yaw = current_yaw + wrap(peg_target_yaw - peg_yaw)
        offset = tcp - peg  # peg centre to tcp, fixed while grasped
        bottom = peg[2] - PEG_HALF
        xy_err = np.linalg.norm(peg[:2] - hole[:2])
        if self.phase == "lift":
            if tcp[2] > CARRY_Z - 0.03:
                self.phase = "carry"
            return self._act(obs, [tcp[0], tcp[1], CARRY_Z], yaw, 0.0)
        if self.phase == "carry":
            target = np.array([hole[0], hole[1], hole[2] + 0.015 + PEG_HALF]) + offset
            if xy_err < 0.002 and abs(wrap(peg_target_yaw - peg_yaw)) < 0.03 and bottom < hole[2] + 0.025:
                self.phase = "insert"
            return self._act(obs, target, yaw, 0.0, max_step=0.05 if xy_err > 0.02 else 0.01)
        # insert: down to 5 mm above the hole's floor, still correcting xy
        if xy_err > 0.006 and bottom > hole[2] - 0.005:
            self.phase = "carry"
        target = np.array([hole[0], hole[1], hole[2] - 0.025 + PEG_HALF]) + offset
        return self._act(obs, target, yaw, 0.0, max_step=0.01)

    def _act(self, obs, pos, yaw, gripper, max_step=None) -> np.ndarray:
        return self.flaws.apply(
            self.motion.action(obs, np.asarray(pos, dtype=np.float64), yaw, gripper, max_step)
        )
