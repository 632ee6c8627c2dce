"""rclpy from .venv's ROS 2 wheels: a JointState crosses from one process to another over DDS."""

import subprocess
import sys
import textwrap

import pytest

PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import rclpy
    from sensor_msgs.msg import JointState

    rclpy.init()
    node = rclpy.create_node("test_joint_state_publisher")
    pub = node.create_publisher(JointState, sys.argv[1], 10)
    deadline = time.monotonic() + 30.0
    i = 0
    while time.monotonic() < deadline:
        msg = JointState()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.name = ["shoulder_pan_joint", "elbow_joint"]
        msg.position = [0.25, -1.5]
        msg.velocity = [float(i), 0.0]
        pub.publish(msg)
        i += 1
        rclpy.spin_once(node, timeout_sec=0.05)
    """
)


@pytest.mark.ros
def test_joint_state_crosses_processes(tmp_path):
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    topic = f"/test_joint_states_{tmp_path.name[-8:].replace('-', '_')}"
    pub = subprocess.Popen([sys.executable, "-c", PUBLISHER, topic])
    rclpy.init()
    try:
        node = rclpy.create_node("test_joint_state_listener")
        received: list[JointState] = []
        node.create_subscription(JointState, topic, received.append, qos_profile_sensor_data)
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        for _ in range(400):  # up to ~20 s for discovery on a loaded machine
            executor.spin_once(timeout_sec=0.05)
            if len(received) >= 3:
                break
        node.destroy_node()
    finally:
        rclpy.shutdown()
        pub.kill()
        pub.wait()
    assert len(received) >= 3, "no JointState arrived from the other process"
    msg = received[-1]
    assert list(msg.name) == ["shoulder_pan_joint", "elbow_joint"]
    assert list(msg.position) == [0.25, -1.5]
    assert received[-1].velocity[0] > received[0].velocity[0]
