import numpy as np
import pytest

from robot_rl.config.hardware import load_hardware_config
from robot_rl.teleop.twist import JoyGripper, TwistTeleop, TwistTeleopConfig
from sim.robot import home_pose

HOME = home_pose(load_hardware_config("sim_ur5e"))


@pytest.fixture(scope="module")
def hw():
    return load_hardware_config("sim_ur5e")


def test_twist_moves_the_tool_along_the_commanded_axis(hw):
    teleop = TwistTeleop(hw)
    start, quat0 = teleop.kin.fk(HOME)
    q, dt = HOME.copy(), 0.02
    for i in range(50):  # 1 s at 0.1 m/s along -y, the measured arm tracking the target exactly
        teleop.set_twist([0.0, -0.1, 0.0], [0.0, 0.0, 0.0], now=i * dt)
        q = teleop.step(q, now=i * dt, dt=dt)
    end, quat1 = teleop.kin.fk(q)
    assert end[1] - start[1] == pytest.approx(-0.1, abs=0.01)
    assert abs(end[0] - start[0]) < 0.01 and abs(end[2] - start[2]) < 0.01
    assert abs(np.dot(quat0, quat1)) > 0.999, "a pure translation keeps the orientation"


def test_speed_clipped_and_stale_twist_holds(hw):
    teleop = TwistTeleop(hw, TwistTeleopConfig(max_linear_speed=0.05, twist_timeout_s=0.1))
    teleop.set_twist([10.0, 0.0, 0.0], [0.0, 0.0, 0.0], now=0.0)
    assert np.linalg.norm(teleop.velocity(0.05)[:3]) == pytest.approx(0.05)
    q1 = teleop.step(HOME, now=0.05, dt=0.02)
    assert not np.allclose(q1, HOME)
    q2 = teleop.step(q1, now=0.5, dt=0.02)  # the twist is 0.5 s old: hold
    np.testing.assert_array_equal(q1, q2)
    with pytest.raises(ValueError, match="non-finite"):
        teleop.set_twist([np.nan, 0, 0], [0, 0, 0], now=1.0)


def test_target_waits_for_a_blocked_arm(hw):
    teleop = TwistTeleop(hw, TwistTeleopConfig(max_lead=0.05))
    teleop.set_twist([0.0, 0.0, 0.2], [0.0, 0.0, 0.0], now=0.0)
    targets = [teleop.step(HOME, now=0.0, dt=0.02) for _ in range(100)]  # the arm does not move
    lead = np.max(np.abs(np.array(targets) - HOME), axis=1)
    assert lead[-1] > 0.05 and lead[-1] < 0.05 + 0.02, "one step past the lead, then it waits"
    np.testing.assert_array_equal(targets[-1], targets[50])
    q = teleop.step(targets[-1], now=0.0, dt=0.02)  # the arm catches up: the target moves on
    assert not np.allclose(q, targets[-1])


def test_joy_gripper_latches():
    joy = JoyGripper()
    assert joy.on_buttons([0, 0]) == 1.0
    assert joy.on_buttons([1, 0]) == 0.0
    assert joy.on_buttons([0, 0]) == 0.0
    assert joy.on_buttons([0, 1]) == 1.0
    assert joy.on_buttons([]) == 1.0
