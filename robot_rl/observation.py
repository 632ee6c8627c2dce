"""Observation assembly for a policy: the latest joint state and camera frames, with staleness limits.

Sources arrive at their own rates (joint states at hundreds of Hz, cameras at 10-30 Hz);
`assemble(now)` takes the latest of each and refuses to answer when any part is too old,
because a policy fed a stale view of the world acts on the past:

    joint_states  ──|──|──|──|──|──|──|──|──|──|      age <= joint_state_max_age_s
    camera front  ─────────|─────────|─────────|      age <= image_max_age_s
                                               ▲ now: obs stamped with the joint state's stamp

The observation's stamp is the joint state's stamp (when the robot was measured): chunks
the policy returns are timed from it, and latency is measured from it.

All times are seconds on one clock (ROS time in the nodes). No ROS in this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robot_rl import keys
from robot_rl.config.hardware import HardwareConfig


@dataclass(frozen=True)
class StalenessLimits:
    joint_state_max_age_s: float = 0.1
    image_max_age_s: float = 0.2

    def __post_init__(self):
        if not (self.joint_state_max_age_s > 0 and self.image_max_age_s > 0):
            raise ValueError("staleness limits must be positive")


@dataclass(frozen=True)
class Observation:
    values: dict[str, np.ndarray]  # keys from robot_rl.keys
    stamp: float  # seconds: when the joint state was measured


class ObservationAssembler:
    """Latest joint state and images per the hardware config; `assemble` or say why not."""

    def __init__(
        self,
        hw: HardwareConfig,
        limits: StalenessLimits,
        cameras: Sequence[str] | None = None,
        state_keys: Sequence[str] = (),
    ):
        """`state_keys`: task-state keys (OBJECT_POSE, GOAL_POS) from a perception stack or the
        sim node, held to the joint-state age limit."""
        self.hw = hw
        self.state_keys = tuple(state_keys)
        self._extra: dict[str, tuple[float, np.ndarray]] = {}
        self.limits = limits
        self.cameras = tuple(c.name for c in hw.cameras) if cameras is None else tuple(cameras)
        for name in self.cameras:
            hw.camera(name)  # KeyError naming the config for an unknown camera
        self._joint_index: dict[tuple[str, ...], np.ndarray] = {}
        self._state: tuple[float, np.ndarray, np.ndarray, float | None] | None = None
        self._images: dict[str, tuple[float, np.ndarray]] = {}
        self.why_not = "no joint state yet"

    def on_joint_state(self, stamp: float, names: Sequence[str], position, velocity=()) -> None:
        """Store a JointState. Raises ValueError naming a missing joint."""
        key = tuple(names)
        index = self._joint_index.get(key)
        if index is None:
            lookup = {n: i for i, n in enumerate(names)}
            missing = [n for n in self.hw.joint_names if n not in lookup]
            if missing:
                raise ValueError(
                    f"joint state lacks joint {missing[0]!r} of {self.hw.name} (has {list(names)})"
                )
            index = np.array([lookup[n] for n in self.hw.joint_names])
            self._joint_index[key] = index
        position = np.asarray(position, dtype=np.float64)
        velocity = np.asarray(velocity, dtype=np.float64)
        q = position[index].astype(np.float32)
        qd = velocity[index].astype(np.float32) if len(velocity) == len(position) else np.zeros_like(q)
        gripper = None
        if self.hw.gripper.name in key:
            gripper = float(position[key.index(self.hw.gripper.name)])
        elif self._state is not None:
            gripper = self._state[3]  # the gripper may come from its own driver's JointState
        self._state = (stamp, q, qd, gripper)

    def on_gripper(self, opening_fraction: float) -> None:
        """The gripper opening in [0, 1] from a separate gripper driver."""
        if self._state is not None:
            stamp, q, qd, _ = self._state
            self._state = (stamp, q, qd, float(opening_fraction))

    def on_state(self, key: str, stamp: float, value) -> None:
        """A task-state value (e.g. OBJECT_POSE (7,)) measured at `stamp`."""
        if key in self.state_keys:
            self._extra[key] = (stamp, np.asarray(value, dtype=np.float32))

    def on_image(self, camera: str, stamp: float, image: np.ndarray) -> None:
        """Store a frame (H, W, 3) uint8. Raises ValueError on a size the config does not name."""
        if camera not in self.cameras:
            return
        cam = self.hw.camera(camera)
        if image.shape != (cam.height, cam.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"camera {camera}: expected ({cam.height}, {cam.width}, 3) uint8 per {self.hw.name}, "
                f"got {image.shape} {image.dtype}"
            )
        self._images[camera] = (stamp, image)

    def assemble(self, now: float) -> Observation | None:
        """The observation at `now`, or None (and `why_not` says which part is missing or stale)."""
        if self._state is None:
            self.why_not = "no joint state yet"
            return None
        stamp, q, qd, gripper = self._state
        age = now - stamp
        if age > self.limits.joint_state_max_age_s:
            self.why_not = f"joint state is {age * 1e3:.0f} ms old (limit {self.limits.joint_state_max_age_s * 1e3:.0f} ms)"
            return None
        if gripper is None:
            self.why_not = f"no position for gripper {self.hw.gripper.name!r} yet"
            return None
        values: dict[str, np.ndarray] = {
            keys.JOINT_POS: q,
            keys.JOINT_VEL: qd,
            keys.GRIPPER_POS: np.array([gripper], dtype=np.float32),
        }
        for key in self.state_keys:
            extra = self._extra.get(key)
            if extra is None:
                self.why_not = f"no {key} yet"
                return None
            if now - extra[0] > self.limits.joint_state_max_age_s:
                self.why_not = f"{key} is {(now - extra[0]) * 1e3:.0f} ms old"
                return None
            values[key] = extra[1]
        for camera in self.cameras:
            frame = self._images.get(camera)
            if frame is None:
                self.why_not = f"no image from camera {camera} yet"
                return None
            img_age = now - frame[0]
            if img_age > self.limits.image_max_age_s:
                self.why_not = (
                    f"camera {camera} image is {img_age * 1e3:.0f} ms old "
                    f"(limit {self.limits.image_max_age_s * 1e3:.0f} ms)"
                )
                return None
            values[keys.image_key(camera)] = frame[1]
        self.why_not = ""
        return Observation(values, stamp)
