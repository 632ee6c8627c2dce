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

`load_scene_model(..., ramped_targets=True)` (what the gymnasium env uses) makes every actuator
integrate its own position target: ctrl is the target's rate of change and the activation is
the target, so one `mj_step(model, data, nstep)` call ramps the targets over all substeps
(sim/envs/arm_env.py). The servo law is unchanged: force = kp * target - kp * q - kv * qdot.
Without it (the default) ctrl is the position target, as a 500 Hz position controller sends it.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

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


def home_pose(hw: HardwareConfig) -> np.ndarray:
    """The arm joints' positions in the model's `home` keyframe, in hw.joint_names order (rad)."""
    model = load_arm_model(hw)
    key = model.key("home")
    qpos = [key.qpos[model.jnt_qposadr[model.joint(name).id]] for name in hw.joint_names]
    return np.array(qpos, dtype=np.float64)


def scene_path(task: str) -> Path:
    path = SCENES_DIR / f"{task}.xml"
    if not path.exists():
        known = sorted(p.stem for p in SCENES_DIR.glob("*.xml") if p.stem != "common")
        raise FileNotFoundError(f"no scene for task {task!r}; scenes: {', '.join(known)}")
    return path


def ramp_targets_in_actuators(spec: mujoco.MjSpec) -> mujoco.MjSpec:
    """Turn the position servos into servos that integrate their target (in place).

    Each actuator gets an integrator activation (act_dot = ctrl), clamped to the old ctrlrange,
    and `actearly`, so the force at a physics step uses the target reached at the end of it:

        act(k + 1) = act(k) + h * ctrl          force(k) = kp * act(k + 1) - kp * q - kv * qdot

    With ctrl = (new - prev) / T held for the T / h substeps of a policy step, act runs from prev
    to new in equal steps: the same first-order hold as writing prev + (k + 1) / n * (new - prev)
    into a position servo's ctrl before every substep, without a Python call per substep.
    Keyframe targets move from ctrl to act (ctrl 0 = hold).
    """
    for act in spec.actuators:
        if act.ctrllimited == mujoco.mjtLimited.mjLIMITED_FALSE or not act.ctrlrange[0] < act.ctrlrange[1]:
            raise ValueError(f"actuator {act.name!r} needs a ctrlrange to bound its integrated target")
        act.dyntype = mujoco.mjtDyn.mjDYN_INTEGRATOR
        act.actearly = True
        act.actrange = list(act.ctrlrange)
        act.actlimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
    nu = len(spec.actuators)
    for key in spec.keys:
        if len(key.ctrl):
            key.act = list(key.ctrl)
            key.ctrl = [0.0] * nu
    return spec


def load_scene_model(
    task: str, hw: HardwareConfig, physics_rate_hz: float = 500.0, ramped_targets: bool = False
) -> mujoco.MjModel:
    """A task scene (which includes the arm) with limits applied and timestep = 1 / physics_rate_hz.

    ramped_targets: actuators integrate their target (ramp_targets_in_actuators); the env's model.
    """
    spec = apply_hardware_config(mujoco.MjSpec.from_file(str(scene_path(task))), hw)
    spec.option.timestep = 1.0 / physics_rate_hz
    if ramped_targets:
        ramp_targets_in_actuators(spec)
    return _finish(spec.compile(), hw)
