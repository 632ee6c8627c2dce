import numpy as np
import pytest

from robot_rl.config.hardware import load_hardware_config
from robot_rl.teleop.leader import LeaderConfig, LeaderMirror


def test_mirror_by_name_in_any_order_with_offset_and_gripper():
    hw = load_hardware_config("sim_ur5e")
    mirror = LeaderMirror(
        hw,
        LeaderConfig(
            joint_map={"elbow_joint": "leader_elbow"},
            offset=(0.1, 0, 0, 0, 0, 0),
            gripper_joint="leader_gripper",
            gripper_closed=0.2,
            gripper_open=1.2,
        ),
    )
    names = ["leader_gripper", *reversed(hw.joint_names)]
    names[names.index("elbow_joint")] = "leader_elbow"
    values = [0.7] + [float(i) * 0.1 for i in reversed(range(6))]
    q, grip = mirror.targets(names, values)
    np.testing.assert_allclose(q, [0.1, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert grip == pytest.approx(0.5)


def test_mirror_clips_to_limits_and_names_missing_joint():
    hw = load_hardware_config("sim_ur5e")
    mirror = LeaderMirror(hw)
    q, grip = mirror.targets(list(hw.joint_names), [0.0, 0.0, 5.0, 0.0, 0.0, 0.0])
    assert q[2] == pytest.approx(hw.position_upper[2]) and grip is None
    with pytest.raises(ValueError, match="lacks joint 'wrist_3_joint'"):
        mirror.targets(list(hw.joint_names[:5]), [0.0] * 5)
    with pytest.raises(ValueError, match="follower joint 'nope'"):
        LeaderMirror(hw, LeaderConfig(joint_map={"nope": "x"}))
