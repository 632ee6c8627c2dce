"""Simulated UR5e arm, manipulation tasks and scripted experts (MuJoCo + gymnasium).

    import sim
    env = sim.make_env("push", cameras=("front", "wrist"))   # a gymnasium.Env
    sim.register_envs()                                        # robot_rl/Push-v0, ... for gymnasium.make
    expert = sim.experts.make_expert("push", quality="expert", seed=0)

Importing this package is cheap (no mujoco import); models are built on first use. It does
pick the off-screen GL backend (robot_rl/gl.py: MUJOCO_GL=egl with a GPU, osmesa without, unless
already set), because mujoco reads MUJOCO_GL once, when it is first imported: import sim (or set
MUJOCO_GL) before anything imports mujoco if you want camera images.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from robot_rl.gl import configure_gl

configure_gl()

from sim.config import TASKS  # noqa: E402

GYM_IDS = {task: f"robot_rl/{task.capitalize()}-v0" for task in TASKS}


def make_env(task: str, render_mode: str | None = None, **overrides: Any):
    """A gymnasium.Env for `task` (reach, push, lift, insertion); overrides are SimEnvConfig fields.

    Unknown fields or bad values raise robot_rl.config.loader.ConfigError naming the field.
    """
    from robot_rl.config.loader import from_dict, to_dict
    from sim.config import SimEnvConfig
    from sim.envs.arm_env import ArmEnv

    data = {k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in overrides.items()}
    config = from_dict(SimEnvConfig, {"task": task, **data}, source="sim.make_env")
    return ArmEnv(config, render_mode=render_mode)


def register_envs() -> None:
    """Register robot_rl/Reach-v0, Push-v0, Lift-v0, Insertion-v0 with gymnasium (idempotent)."""
    import gymnasium as gym

    for task, env_id in GYM_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id, entry_point="sim:make_env", kwargs={"task": task}, disable_env_checker=True
            )


def make_vector_env(task: str, num_envs: int, asynchronous: bool = True, **overrides: Any):
    """`num_envs` copies of make_env(task, **overrides) stepping in parallel worker processes.

    A gymnasium AsyncVectorEnv (spawned workers, each building its own model and renderer) or,
    with asynchronous=False, a SyncVectorEnv in this process. Autoreset follows gymnasium's
    default (the step after an episode ends returns the first observation of the next one).
    """
    import functools

    import gymnasium as gym

    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    fns = [functools.partial(make_env, task, **overrides) for _ in range(num_envs)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, context="spawn")
    return gym.vector.SyncVectorEnv(fns)
