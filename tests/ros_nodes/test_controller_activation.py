"""controller_node after a re-activation commands the arm where it is measured now, never where
it was before: deactivate, sim reset (the arm jumps home), activate is how every evaluation
episode starts, and a joint state from before the reset may still be the newest one held."""

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from sensor_msgs.msg import JointState  # noqa: E402

from ros_nodes import common  # noqa: E402
from ros_nodes.controller_node import ControllerNode  # noqa: E402

# Any pose will do (the filter starts from wherever the arm is): six joints, then the gripper.
AFTER_RESET = np.array([0.5, -1.0, 1.0, -1.5, -1.5, 0.5, 0.9])


@pytest.fixture
def controller():
    rclpy.init(args=["--ros-args", "-p", "realtime_priority:=0"])
    node = ControllerNode()  # autostart: configured and active
    yield node
    node.close()
    node.destroy_node()
    rclpy.try_shutdown()


def _joint_state(node, position) -> JointState:
    msg = JointState(name=node.names, position=[float(x) for x in position])
    msg.header.stamp = common.to_stamp(time.time())
    return msg


def test_activation_waits_for_a_joint_state_measured_after_it(controller):
    sent: list[np.ndarray] = []
    controller.trigger_deactivate()
    controller._publish = sent.append  # the next loop sends here: what would go to the arm
    before_reset = AFTER_RESET.copy()
    before_reset[0] += 0.4  # where the last episode left the arm
    controller._on_joint_state(_joint_state(controller, before_reset))
    controller.trigger_activate()
    time.sleep(0.1)
    assert controller.loop.thread_status is not None, "the loop thread never started"
    assert sent == [], "commanded from a joint state measured before activation"

    controller._on_joint_state(_joint_state(controller, AFTER_RESET))  # the first one after the reset
    deadline = time.monotonic() + 5.0
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent, "no command after a fresh joint state"
    np.testing.assert_allclose(np.array(sent), np.tile(AFTER_RESET, (len(sent), 1)), atol=1e-9)
