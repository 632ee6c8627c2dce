"""Push expert: get behind the cube on the cube-goal line, fingers closed, and push it along.

approach: above the point behind the cube (10 cm up)
descend:  down to pushing height
push:     move through the cube toward the goal; if the cube slips off the line
          (lateral error > 2 cm) lift up and approach again
finish:   once the cube is inside the success radius, push it straight on toward the goal
          along the last direction (no retreats: that close, the direction swings with every
          millimetre), then hold when it is within 1.5 cm. Seen only when an episode runs past
          success (`sim collect --steps-after-success`).
"""

from __future__ import annotations

import numpy as np

from robot_rl import keys
from sim.envs.push import PushTask
from sim.experts.flaws import FlawInjector
from sim.experts.motion import Motion

CUBE_HALF = 0.025
STANDOFF = CUBE_HALF + 0.025  # tcp distance behind the cube centre before pushing
PUSH_Z, SAFE_Z = 0.035, 0.1
HOLD_RADIUS = 0.015  # cube centre to goal: done


class PushExpert:
    def __init__(self, motion: Motion, flaws: FlawInjector):
        self.motion, self.flaws = motion, flaws

    def reset(self) -> None:
        self.flaws.reset()
        self.phase = "approach"

    def act(self, obs: dict) -> np.ndarray:
        tcp = obs[keys.EE_POS].astype(np.float64)
        cube = obs[keys.OBJECT_POSE][:3].astype(np.float64)
        goal = obs[keys.GOAL_POS].astype(np.float64)
        stop_short = float(np.linalg.norm(self.flaws.offset[:2]))  # flawed: quits this far from the goal
        to_goal = goal[:2] - cube[:2]
        dist = np.linalg.norm(to_goal)
        direction = to_goal / max(dist, 1e-6)
        behind = cube[:2] - direction * STANDOFF
        rel = tcp[:2] - cube[:2]
        lateral = abs(rel[0] * direction[1] - rel[1] * direction[0])
        along = rel @ direction  # negative: behind the cube
        yaw = 0.0
        if stop_short > 0 and dist <= stop_short:
            self.phase = "retreat"
            return self._act(obs, [tcp[0], tcp[1], SAFE_Z], yaw)
        if self.phase == "push" and dist < PushTask.success_distance:
            self.phase, self.finish_dir = "finish", direction
        if self.phase == "finish" and dist < HOLD_RADIUS:
            self.phase, self.hold_at = "hold", tcp
        if self.phase == "hold":
            return self._act(obs, self.hold_at, yaw)
        if self.phase == "finish":
            target = goal[:2] - self.finish_dir * STANDOFF
            return self._act(obs, [*target, PUSH_Z], yaw, max_step=0.03)

        if self.phase == "push" and (lateral > 0.02 or along > -CUBE_HALF + 0.005):
            self.phase = "retreat"
        if self.phase == "retreat":
            if tcp[2] > SAFE_Z - 0.02:
                self.phase = "approach"
            else:
                return self._act(
                    obs, [tcp[0] - direction[0] * 0.02, tcp[1] - direction[1] * 0.02, SAFE_Z], yaw
                )
        if self.phase == "approach":
            if np.linalg.norm(tcp[:2] - behind) < 0.01:
                self.phase = "descend"
            else:
                return self._act(obs, [*behind, SAFE_Z], yaw)
        if self.phase == "descend":
            if tcp[2] < PUSH_Z + 0.01:
                self.phase = "push"
            else:
                return self._act(obs, [*behind, PUSH_Z], yaw)
        # push: keep the tcp on the line behind the cube and advance toward the goal
        target = cube[:2] - direction * STANDOFF + direction * min(0.03, dist + 0.005)
        return self._act(obs, [*target, PUSH_Z], yaw, max_step=0.03)

    def _act(self, obs, pos, yaw, max_step=None) -> np.ndarray:
        return self.flaws.apply(
            self.motion.action(obs, np.asarray(pos, dtype=np.float64), yaw, 0.0, max_step)
        )
