"""Scripted experts for every task, at three qualities (expert, medium, poor).

    expert = make_expert("push", quality="medium", seed=0)
    expert.reset(); action = expert.act(obs)      # float32 (J + 1,), from state keys only

Experts read only the observation dict (JOINT_POS, EE_POS, EE_QUAT, GRIPPER_POS, OBJECT_POSE,
GOAL_POS) and compute joint targets by damped-least-squares IK on the arm model.
"""

from __future__ import annotations

import numpy as np

from robot_rl.config.hardware import load_hardware_config
from sim.config import TASKS
from sim.experts.flaws import QUALITIES, FlawInjector
from sim.experts.insertion import InsertionExpert
from sim.experts.lift import LiftExpert
from sim.experts.motion import Motion
from sim.experts.push import PushExpert
from sim.experts.reach import ReachExpert

EXPERTS = {"reach": ReachExpert, "push": PushExpert, "lift": LiftExpert, "insertion": InsertionExpert}
# IK iterations per action (sim/experts/motion.py): one is enough where a few millimetres of
# tracking error do not matter; the 1 mm-clearance insertion needs two (with one: 50/100).
IK_ITERATIONS = {"reach": 1, "push": 1, "lift": 1, "insertion": 2}


def make_expert(task: str, quality: str = "expert", seed: int | None = 0, hardware: str = "sim_ur5e"):
    if task not in EXPERTS:
        raise ValueError(f"no expert for task {task!r}; tasks: {', '.join(TASKS)}")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {list(QUALITIES)}, got {quality!r}")
    hw = load_hardware_config(hardware)
    motion = Motion(hw, ik_iterations=IK_ITERATIONS[task])
    expert = EXPERTS[task](motion, FlawInjector(QUALITIES[quality], np.random.default_rng(seed)))
    expert.reset()
    return expert
