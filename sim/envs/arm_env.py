"""The simulated UR5e as a gymnasium environment; the task (reach, push, lift, insertion) is a part.

Timing (defaults: 10 Hz policy, 500 Hz physics, 50 substeps per env step):

    policy step t          t+1                      action a_t = [q_target (J,), gripper (1,)]
    |----------------------|                        T = 1 / policy_rate_hz = 0.1 s
    | 50 physics steps, 2 ms each                   target(k) = c_prev + (k+1)/50 * (c_new - c_prev)
    ^ obs_t read here       ^ obs_{t+1} read here

`c_new` is the action clipped to the hardware config's position limits (gripper to [0, 1]) and
then rate-limited: no arm target moves faster than the joint's velocity_limit and the gripper
command no faster than gripper.velocity_limit. The actuator targets ramp linearly from the
previous command to the new one across the substeps (the same first-order hold the real
controller applies between chunk points), so a 10 Hz policy yields a smooth 500 Hz command
stream. The ramp runs inside MuJoCo: the env's model has actuators that integrate their target
(sim.robot.ramp_targets_in_actuators; `data.act` holds the targets, `data.ctrl` their rate),
so a policy step is one `mj_step(model, data, 50)` call, not 50 Python-level steps. With `randomization.action_latency_steps = L` the action applied at step t is a_{t-L}.

Observations (robot_rl/keys.py names, float32): JOINT_POS, JOINT_VEL, GRIPPER_POS, EE_POS,
EE_QUAT (tool centre point in the base frame, which is the world frame of the scenes),
OBJECT_POSE (not for reach), GOAL_POS, and image_<camera> (uint8 HxWx3) per requested camera.
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import mujoco
import numpy as np

from robot_rl import keys
from robot_rl.config.hardware import load_hardware_config
from sim.config import SimEnvConfig
from sim.envs.insertion import InsertionTask
from sim.envs.lift import LiftTask
from sim.envs.push import PushTask
from sim.envs.reach import ReachTask
from sim.envs.task import Task, TaskState
from sim.rendering import CameraRenderer
from sim.robot import GRIPPER_TENDON, load_scene_model

TASK_CLASSES: dict[str, type] = {
    "reach": ReachTask,
    "push": PushTask,
    "lift": LiftTask,
    "insertion": InsertionTask,
}


class ArmEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: SimEnvConfig, render_mode: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config = config
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": config.policy_rate_hz}
        self.hw = load_hardware_config(config.hardware)
        self.task: Task = TASK_CLASSES[config.task]()
        self.model = load_scene_model(config.task, self.hw, config.physics_rate_hz, ramped_targets=True)
        self.data = mujoco.MjData(self.model)
        self.task.bind(self.model)
        self._bind()
        self._nominal = {
            "geom_friction": self.model.geom_friction.copy(),
            "body_mass": self.model.body_mass.copy(),
            "body_inertia": self.model.body_inertia.copy(),
            "dof_damping": self.model.dof_damping.copy(),
            "actuator_gainprm": self.model.actuator_gainprm.copy(),
            "actuator_biasprm": self.model.actuator_biasprm.copy(),
            "cam_pos": self.model.cam_pos.copy(),
            "cam_quat": self.model.cam_quat.copy(),
        }
        self._renderer = None
        if config.cameras or render_mode == "rgb_array":
            self._renderer = CameraRenderer(
                self.model, config.image_size, config.image_size, config.pretty_render
            )

        J = self.hw.num_joints
        self.action_space = gym.spaces.Box(
            low=np.append(self.hw.position_lower, 0.0).astype(np.float32),
            high=np.append(self.hw.position_upper, 1.0).astype(np.float32),
            dtype=np.float32,
        )
        inf = np.inf
        spaces = {
            keys.JOINT_POS: gym.spaces.Box(
                self.hw.position_lower.astype(np.float32) - 0.1,
                self.hw.position_upper.astype(np.float32) + 0.1,
                dtype=np.float32,
            ),
            keys.JOINT_VEL: gym.spaces.Box(-inf, inf, (J,), np.float32),
            keys.GRIPPER_POS: gym.spaces.Box(-0.1, 1.1, (1,), np.float32),
            keys.EE_POS: gym.spaces.Box(-inf, inf, (3,), np.float32),
            keys.EE_QUAT: gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
            keys.GOAL_POS: gym.spaces.Box(-inf, inf, (3,), np.float32),
        }
        if self.task.has_object:
            spaces[keys.OBJECT_POSE] = gym.spaces.Box(-inf, inf, (7,), np.float32)
        size = config.image_size
        for cam in config.cameras:
            spaces[keys.image_key(cam)] = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)

        self._dt = 1.0 / config.policy_rate_hz
        self._substeps = config.substeps
        self._max_delta = np.append(self.hw.velocity_limit, self.hw.gripper.velocity_limit) * self._dt
        self._low, self._high = (
            self.action_space.low.astype(np.float64),
            self.action_space.high.astype(np.float64),
        )
        self._ramp_time = self._substeps * self.model.opt.timestep  # = self._dt up to rounding
        self._ctrl = np.zeros(J + 1)
        self._latency: deque[np.ndarray] = deque()
        self._steps = 0

    @property
    def max_action_step(self) -> np.ndarray:
        """The most one action can move each target (J + 1,): velocity limits x the policy step."""
        return self._max_delta.copy()

    # -- setup --------------------------------------------------------------------------------------

    def _bind(self) -> None:
        """Ids and addresses by name, looked up once."""
        m = self.model
        self._qadr = np.array([m.joint(n).qposadr[0] for n in self.hw.joint_names])
        self._dadr = np.array([m.joint(n).dofadr[0] for n in self.hw.joint_names])
        self._act = np.array([m.actuator(n).id for n in (*self.hw.joint_names, self.hw.gripper.name)])
        if not np.array_equal(self._act, np.arange(len(self._act))):
            raise ValueError("the arm actuators must come first, in hardware-config order, then the gripper")
        self._actadr = m.actuator_actadr[self._act]  # data.act[i]: target of actuator i
        self._arm_dofs = self._dadr
        self._tcp = m.site(self.hw.model.tcp_site).id
        self._tendon = m.tendon(GRIPPER_TENDON).id
        self._home = m.key("home").id
        base = m.body(self.hw.model.base_body)
        if not (np.allclose(base.pos, 0) and np.allclose(base.quat, [1, 0, 0, 0])):
            raise ValueError("the scenes put the robot base at the world origin; observations rely on it")
        if self.task.has_object:
            joint = m.joint("object_joint")
            self._obj_qadr = joint.qposadr[0]
            self._obj_body = m.body("object").id
        self._cam_ids = [m.camera(c).id for c in self.config.cameras]
        self._object_geoms = np.flatnonzero(m.geom_bodyid == (self._obj_body if self.task.has_object else -1))

    # -- gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        m, d = self.model, self.data
        mujoco.mj_resetDataKeyframe(m, d, self._home)
        self._randomize(self.np_random)
        self.task.reset(m, d, self.np_random)
        mujoco.mj_forward(m, d)
        self._ctrl[:] = d.act[self._actadr]
        self._latency.clear()
        for _ in range(self.config.randomization.action_latency_steps):
            self._latency.append(self._ctrl.copy())
        self._steps = 0
        obs = self._observe()
        info = {"is_success": False}
        return obs, info

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action}")
        if self._latency:
            self._latency.append(action)
            action = self._latency.popleft()
        # np.minimum(np.maximum(...)) is np.clip without its Python-level overhead (NaN was refused above)
        target = np.minimum(np.maximum(action, self._low), self._high)
        prev = self._ctrl
        new = prev + np.minimum(np.maximum(target - prev, -self._max_delta), self._max_delta)
        d = self.data
        act, ctrl = d.act, d.ctrl
        act[self._actadr] = prev
        ctrl[self._act] = (new - prev) / self._ramp_time  # prev -> new over the substeps
        mujoco.mj_step(self.model, d, self._substeps)
        act[self._actadr] = new  # exactly (the integration adds rounding)
        ctrl[self._act] = 0.0  # hold the targets if anyone steps the physics further
        self._ctrl = new
        self._steps += 1

        obs = self._observe()
        reward, success = self.task.evaluate(self._task_state())
        if self.config.reward == "sparse":
            reward = float(success)
        terminated = bool(success and self.config.terminate_on_success)
        truncated = self._steps >= self.config.episode_steps
        return obs, float(reward), terminated, truncated, {"is_success": bool(success)}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._renderer.render(self.data, "front")

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # -- internals ----------------------------------------------------------------------------------
    def _task_state(self) -> TaskState:
        d = self.data
        obj_pos = obj_quat = None
        if self.task.has_object:
            q = d.qpos[self._obj_qadr : self._obj_qadr + 7]
            obj_pos, obj_quat = q[:3].copy(), q[3:].copy()
        return TaskState(
            tcp_pos=d.site_xpos[self._tcp].copy(),
            gripper=float(d.ten_length[self._tendon]),
            object_pos=obj_pos,
            object_quat=obj_quat,
            goal_pos=self.task.goal_pos(self.model, d),
        )

    def _observe(self) -> dict[str, np.ndarray]:
        m, d = self.model, self.data
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        obs = {
            keys.JOINT_POS: d.qpos[self._qadr].astype(np.float32),
            keys.JOINT_VEL: d.qvel[self._dadr].astype(np.float32),
            keys.GRIPPER_POS: np.array([d.ten_length[self._tendon]], dtype=np.float32),
            keys.EE_POS: d.site_xpos[self._tcp].astype(np.float32),
            keys.EE_QUAT: quat.astype(np.float32),
            keys.GOAL_POS: self.task.goal_pos(m, d).astype(np.float32),
        }
        if self.task.has_object:
            obs[keys.OBJECT_POSE] = d.qpos[self._obj_qadr : self._obj_qadr + 7].astype(np.float32)
        noise = self.config.randomization.obs_noise_std
        if noise > 0:
            for key in (keys.JOINT_POS, keys.JOINT_VEL, keys.EE_POS, keys.OBJECT_POSE):
                if key in obs:
                    value = obs[key]
                    n = 3 if key == keys.OBJECT_POSE else value.shape[0]
                    value[:n] += self.np_random.normal(0.0, noise, n).astype(np.float32)
        for cam in self.config.cameras:
            obs[keys.image_key(cam)] = self._renderer.render(d, cam)
        return obs

    def _randomize(self, rng: np.random.Generator) -> None:
        """Domain randomization from the nominal model values (a no-op with the defaults)."""
        r, m, nom = self.config.randomization, self.model, self._nominal

        def scale(bounds: tuple[float, float], size=None):
            lo, hi = bounds
            return 1.0 if lo == hi == 1.0 else rng.uniform(lo, hi, size)

        m.geom_friction[:, 0] = nom["geom_friction"][:, 0] * scale(r.friction_scale)
        if self.task.has_object:
            s = scale(r.object_mass_scale)
            m.body_mass[self._obj_body] = nom["body_mass"][self._obj_body] * s
            m.body_inertia[self._obj_body] = nom["body_inertia"][self._obj_body] * s
        m.dof_damping[self._arm_dofs] = nom["dof_damping"][self._arm_dofs] * scale(
            r.joint_damping_scale, len(self._arm_dofs)
        )
        arm = self._act[:-1]
        kp = scale(r.actuator_gain_scale, len(arm))
        m.actuator_gainprm[arm, 0] = nom["actuator_gainprm"][arm, 0] * kp
        m.actuator_biasprm[arm, 1] = nom["actuator_biasprm"][arm, 1] * kp
        for cam in self._cam_ids:
            m.cam_pos[cam] = nom["cam_pos"][cam]
            m.cam_quat[cam] = nom["cam_quat"][cam]
            if r.camera_pos_jitter > 0:
                m.cam_pos[cam] += rng.uniform(-r.camera_pos_jitter, r.camera_pos_jitter, 3)
            if r.camera_rot_jitter > 0:
                dq = np.empty(4)
                mujoco.mju_axisAngle2Quat(
                    dq, rng.normal(size=3) / np.sqrt(3), rng.uniform(0, r.camera_rot_jitter)
                )
                mujoco.mju_mulQuat(m.cam_quat[cam], nom["cam_quat"][cam].copy(), dq)
