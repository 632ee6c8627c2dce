"""Leader-arm mirroring: a leader's JointState becomes the follower's joint targets.

Joints are matched by name (`joint_map`: follower name -> leader name; identity when the
arms share names), then `follower = scale * leader + offset` and clipped to the follower's
limits. The leader's gripper joint, when named, maps linearly from [closed, open] to the
[0, 1] gripper command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_rl.config.hardware import HardwareConfig


@dataclass(frozen=True)
class LeaderConfig:
    joint_map: dict[str, str] = field(default_factory=dict)  # follower joint -> leader joint
    scale: tuple[float, ...] = ()  # per follower joint; empty: 1
    offset: tuple[float, ...] = ()  # rad per follower joint; empty: 0
    gripper_joint: str = ""  # leader joint driving the gripper; empty: gripper held
    gripper_closed: float = 0.0  # leader gripper position when closed
    gripper_open: float = 1.0  # ... and when open


class LeaderMirror:
    def __init__(self, hw: HardwareConfig, config: LeaderConfig | None = None):
        self.hw = hw
        self.config = c = config or LeaderConfig()
        n = hw.num_joints
        unknown = sorted(set(c.joint_map) - set(hw.joint_names))
        if unknown:
            raise ValueError(f"leader joint_map names follower joint {unknown[0]!r}, not in {hw.name}")
        self.leader_names = [c.joint_map.get(name, name) for name in hw.joint_names]
        self.scale = np.asarray(c.scale or [1.0] * n, dtype=np.float64)
        self.offset = np.asarray(c.offset or [0.0] * n, dtype=np.float64)
        if self.scale.shape != (n,) or self.offset.shape != (n,):
            raise ValueError(f"leader scale and offset need {n} entries (one per joint of {hw.name})")
        if c.gripper_joint and c.gripper_open == c.gripper_closed:
            raise ValueError("leader gripper_open must differ from gripper_closed")

    def targets(self, names: Sequence[str], positions: Sequence[float]) -> tuple[np.ndarray, float | None]:
        """(follower joint targets (J,), gripper command or None) from a leader JointState."""
        index: Mapping[str, int] = {name: i for i, name in enumerate(names)}
        missing = [n for n in self.leader_names if n not in index]
        if missing:
            raise ValueError(f"leader JointState lacks joint {missing[0]!r} (has {list(names)})")
        leader = np.array([positions[index[n]] for n in self.leader_names], dtype=np.float64)
        q = np.clip(self.scale * leader + self.offset, self.hw.position_lower, self.hw.position_upper)
        gripper = None
        c = self.config
        if c.gripper_joint and c.gripper_joint in index:
            frac = (positions[index[c.gripper_joint]] - c.gripper_closed) / (
                c.gripper_open - c.gripper_closed
            )
            gripper = float(np.clip(frac, 0.0, 1.0))
        return q, gripper
