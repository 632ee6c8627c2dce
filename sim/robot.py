"""Building MuJoCo models of the arm with the hardware config's limits applied.

The MJCF (sim/assets/ur5e/ur5e.xml) carries geometry, inertia and gains but no joint limits:
those come from the hardware config, the same YAML schema the real robots use, and are
written into the model here with mujoco.MjSpec before compiling:

    joint.range, actuator.ctrlrange  <- joints[].position_limits
    actuator.forcerange              <- joints[].effort_limit (when given)
    finger travel, tendon scale      <- gripper.max_opening (tendon length = opening fraction)

Build models with load_arm_model / load_scene_model only: the tendon scale is set on the compiled
model (MjSpec does not expose tendon wraps).

Velocity limits are not a MuJoCo model property: the env limits how fast it moves the
actuator targets (see sim/envs/arm_env.py).
"""

from __future__ import annotations

from pathlib import Path

import mujoco

from robot_rl.config.hardware import HardwareConfig
from robot_rl.paths import asset_path

SCENES_DIR = Path(__file__).resolve().parent / "assets" / "scenes"
FINGER_JOINTS = ("left_finger_joint", "right_finger_joint")
GRIPPER_TENDON = "gripper_split"


def apply_hardware_config(spec: mujoco.MjSpec, hw: HardwareConfig) -> mujoco.MjSpec:
    """Write the hardware config's joint, actuator and gripper limits into `spec` (in place)."""
    where = hw.source or hw.name
    joints = {j.name: j for j in spec.joints}
    actuators = {a.name: a for a in spec.actuators}
    for jc in hw.joints:
        if jc.name not in joints:
            raise ValueError(f"{where}: joint {jc.name!r} is not in the arm model (has {sorted(joints)})")
        if jc.name not in actuators:
            raise ValueError(f"{where}: no actuator named {jc.name!r} in the arm model")
        joint, act = joints[jc.name], actuators[jc.name]
        joint.range = list(jc.position_limits)
        joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.ctrlrange = list(jc.position_limits)
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        if jc.effort_limit is not None:
            act.forcerange = [-jc.effort_limit, jc.effort_limit]
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    if hw.gripper.name not in actuators:
        raise ValueError(f"{where}: gripper.name {hw.gripper.name!r} is not an actuator of the arm model")
    half = hw.gripper.max_opening / 2
    for name in FINGER_JOINTS:
        joints[name].range = [0.0, half]
    return spec


def _finish(model: mujoco.MjModel, hw: HardwareConfig) -> mujoco.MjModel:
    """Settings MjSpec does not expose: the gripper tendon's joint coefficients (1 / max_opening)."""
    tendon = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_TENDON, GRIPPER_TENDON)
    adr, num = model.tendon_adr[tendon], model.tendon_num[tendon]
    model.wrap_prm[adr : adr + num] = 1.0 / hw.gripper.max_opening
    return model


def load_arm_spec(hw: HardwareConfig) -> mujoco.MjSpec:
    return apply_hardware_config(mujoco.MjSpec.from_file(str(asset_path(hw.model.mjcf))), hw)


def load_arm_model(hw: HardwareConfig) -> mujoco.MjModel:
    """The robot-only model (arm + gripper) with the hardware config's limits applied."""
    return _finish(load_arm_spec(hw).compile(), hw)


def scene_path(task: str) -> Path:
    path = SCENES_DIR / f"{task}.xml"
    if not path.exists():
        known = sorted(p.stem for p in SCENES_DIR.glob("*.xml") if p.stem != "common")
        raise FileNotFoundError(f"no scene for task {task!r}; scenes: {', '.join(known)}")
    return path


def load_scene_model(task: str, hw: HardwareConfig, physics_rate_hz: float = 500.0) -> mujoco.MjModel:
    """A task scene (which includes the arm) with limits applied and timestep = 1 / physics_rate_hz."""
    spec = apply_hardware_config(mujoco.MjSpec.from_file(str(scene_path(task))), hw)
    spec.option.timestep = 1.0 / physics_rate_hz
    return _finish(spec.compile(), hw)
