"""Forward kinematics, Jacobian and damped-least-squares IK of the arm, from its MJCF.

    kin = ArmKinematics(load_hardware_config("sim_ur5e"))
    pos, quat = kin.fk(q)                      # tool centre point in the base frame, quat w x y z
    J = kin.jacobian(q)                        # (6, J): rows vx vy vz wx wy wz (base frame)
    q = kin.ik(q0, target_pos, target_quat)    # iterated ik_step, clipped to the yaml limits

The model is the robot-only MJCF named by `hw.model.mjcf`, read with mujoco directly: the
safety filter (workspace box), the teleop node (differential IK) and the scripted experts use
this class, and robot_rl never imports `sim`. One MjData is reused and only mj_kinematics runs,
so `fk` costs a few microseconds. Not thread-safe: give each thread its own instance.
"""

from __future__ import annotations

from robot_rl.gl import configure_gl

configure_gl()  # before mujoco is imported: it reads MUJOCO_GL once

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robot_rl.config.hardware import HardwareConfig  # noqa: E402
from robot_rl.paths import asset_path  # noqa: E402


class ArmKinematics:
    def __init__(self, hw: HardwareConfig):
        self.hw = hw
        path = asset_path(hw.model.mjcf)
        if not path.exists():
            raise FileNotFoundError(
                f"{hw.source or hw.name}: model.mjcf {hw.model.mjcf!r} not found at {path}"
            )
        self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._qadr = np.empty(hw.num_joints, dtype=np.int64)
        self._dadr = np.empty(hw.num_joints, dtype=np.int64)
        for i, name in enumerate(hw.joint_names):
            jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)
            if jid < 0:
                raise ValueError(f"{hw.source or hw.name}: joint {name!r} is not in {path.name}")
            self._qadr[i] = m.jnt_qposadr[jid]
            self._dadr[i] = m.jnt_dofadr[jid]
        self._site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, hw.model.tcp_site)
        if self._site < 0:
            raise ValueError(
                f"{hw.source or hw.name}: model.tcp_site {hw.model.tcp_site!r} is not in {path.name}"
            )
        base = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, hw.model.base_body)
        if base < 0:
            raise ValueError(
                f"{hw.source or hw.name}: model.base_body {hw.model.base_body!r} is not in {path.name}"
            )
        # The base is fixed to the world: its pose is read once.
        mujoco.mj_kinematics(m, self.data)
        self._base_pos = self.data.xpos[base].copy()
        self._base_rot = self.data.xmat[base].reshape(3, 3).copy()
        self._base_quat = self.data.xquat[base].copy()
        self._base_is_world = np.allclose(self._base_pos, 0) and np.allclose(self._base_rot, np.eye(3))
        self.lower = hw.position_lower.copy()
        self.upper = hw.position_upper.copy()
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._quat = np.zeros(4)
        self._qerr = np.zeros(4)
        self._neg = np.zeros(4)
        self._vel = np.zeros(3)

    @property
    def num_joints(self) -> int:
        return self.hw.num_joints

    def _set(self, q: np.ndarray) -> None:
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.num_joints,):
            raise ValueError(f"joint vector must have shape ({self.num_joints},), got {q.shape}")
        self.data.qpos[self._qadr] = q
        mujoco.mj_kinematics(self.model, self.data)

    def _tcp(self) -> tuple[np.ndarray, np.ndarray]:
        pos = self.data.site_xpos[self._site]
        mujoco.mju_mat2Quat(self._quat, self.data.site_xmat[self._site])
        if self._base_is_world:
            return pos.copy(), self._quat.copy()
        rel = self._base_rot.T @ (pos - self._base_pos)
        quat = np.zeros(4)
        mujoco.mju_negQuat(self._neg, self._base_quat)
        mujoco.mju_mulQuat(quat, self._neg, self._quat)
        return rel, quat

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tool centre point position (3,) and orientation quaternion w x y z (4,), base frame."""
        self._set(q)
        return self._tcp()

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """(6, J) geometric Jacobian of the tool centre point: linear rows, then angular, base frame."""
        self._set(q)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site)
        jac = np.vstack([self._jacp[:, self._dadr], self._jacr[:, self._dadr]])
        if not self._base_is_world:
            jac[:3] = self._base_rot.T @ jac[:3]
            jac[3:] = self._base_rot.T @ jac[3:]
        return jac

    def pose_error(self, pos: np.ndarray, quat: np.ndarray, target_pos, target_quat=None) -> np.ndarray:
        """(6,) [target_pos - pos, rotation vector taking quat to target_quat] (zeros if no target_quat)."""
        err = np.zeros(6)
        err[:3] = np.asarray(target_pos, dtype=np.float64) - pos
        if target_quat is not None:
            mujoco.mju_negQuat(self._neg, quat)
            mujoco.mju_mulQuat(self._qerr, np.asarray(target_quat, dtype=np.float64), self._neg)
            if self._qerr[0] < 0:  # the short way round
                self._qerr *= -1
            mujoco.mju_quat2Vel(self._vel, self._qerr, 1.0)
            err[3:] = self._vel
        return err

    def ik_step(
        self,
        q: np.ndarray,
        target_pos: np.ndarray,
        target_quat: np.ndarray | None = None,
        damping: float = 0.05,
        max_step: float = 0.2,
        rot_weight: float = 1.0,
    ) -> np.ndarray:
        """One damped-least-squares step toward the target pose, clipped to the joint limits.

        dq = J^T (J J^T + damping^2 I)^-1 e; without target_quat only the position rows are used.
        `max_step` bounds the largest joint change (rad) of this step.
        """
        q = np.asarray(q, dtype=np.float64)
        jac = self.jacobian(q)
        pos, quat = self._tcp()
        err = self.pose_error(pos, quat, target_pos, target_quat)
        if target_quat is None:
            jac, err = jac[:3], err[:3]
        else:
            jac = jac.copy()
            jac[3:] *= rot_weight
            err[3:] *= rot_weight
        n = jac.shape[0]
        dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(n), err)
        biggest = np.max(np.abs(dq))
        if biggest > max_step:
            dq *= max_step / biggest
        return np.clip(q + dq, self.lower, self.upper)

    def ik(
        self,
        q0: np.ndarray,
        target_pos: np.ndarray,
        target_quat: np.ndarray | None = None,
        iterations: int = 200,
        tol: float = 1e-5,
        damping: float = 0.01,
        max_step: float = 0.2,
    ) -> np.ndarray:
        """Iterate ik_step from q0 until the pose error norm is below tol (m / rad) or iterations run out."""
        q = np.asarray(q0, dtype=np.float64).copy()
        for _ in range(iterations):
            q = self.ik_step(q, target_pos, target_quat, damping=damping, max_step=max_step)
            pos, quat = self.fk(q)
            err = self.pose_error(pos, quat, target_pos, target_quat)
            if np.linalg.norm(err) < tol:
                break
        return q
