"""A scripted Twist stream drives the sim arm over ROS while the recorder is started, stopped,
discarded, flagged and SIGKILLed; the store then holds exactly the expected episodes."""

import signal
import subprocess
import time

import numpy as np
import pytest
from graph_helpers import BringupProcess, call, spin_until

from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from ros_nodes import bringup
from ros_nodes.graph import RECORDER_NAMESPACE, TELEOP_TWIST_TOPIC, GraphOptions, build_graph

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_twist_teleop_recording(tmp_path):
    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_srvs.srv import SetBool, Trigger

    store_path = tmp_path / "demos.zarr"
    # sim + controller + teleop from bringup; the recorder of the same graph runs on its own so
    # that the test can SIGKILL it and start it again.
    graph = BringupProcess(["--teleop", "twist", "--task", "push"], tmp_path / "bringup.log")
    (spec,) = [
        s for s in build_graph(GraphOptions(teleop="twist", record=str(store_path))) if s.name == "recorder"
    ]
    recorder_cmd = bringup.node_command(spec, bringup.write_params_file(spec, tmp_path))
    recorder = subprocess.Popen(recorder_cmd)

    rclpy.init()
    node = rclpy.create_node("e2e_teleop_operator")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    states: list[JointState] = []
    node.create_subscription(JointState, "/joint_states", states.append, qos_profile_sensor_data)
    twist_pub = node.create_publisher(Twist, TELEOP_TWIST_TOPIC, 10)
    srv = {
        name: node.create_client(Trigger, f"{RECORDER_NAMESPACE}/{name}")
        for name in ("start", "stop", "discard")
    }
    success = node.create_client(SetBool, f"{RECORDER_NAMESPACE}/success")

    def drive(seconds: float, vy: float) -> None:
        msg = Twist()
        msg.linear.y = vy
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            twist_pub.publish(msg)
            spin_until(executor, lambda: False, 0.05)

    def trigger(name: str):
        return call(executor, srv[name], Trigger.Request())

    try:
        assert spin_until(executor, lambda: len(states) > 10, 90.0), (
            "no joint states from the sim node\n" + graph.log()
        )
        q_start = np.array(states[-1].position[:6])
        # Joint states flowing does not mean the teleop -> controller path is up yet (discovery,
        # lifecycle activation): drive until the arm answers, then start the timed episodes.
        deadline = time.monotonic() + 60.0
        while np.max(np.abs(np.array(states[-1].position[:6]) - q_start)) < 0.01:
            assert time.monotonic() < deadline, "teleop never moved the arm\n" + graph.log()
            drive(0.5, 0.05)

        assert trigger("start").success
        drive(3.0, -0.1)
        reply = trigger("stop")
        assert reply.success and "saved episode 0" in reply.message, reply.message

        assert trigger("start").success
        drive(1.0, 0.1)
        assert trigger("discard").success

        assert trigger("start").success
        assert call(executor, success, SetBool.Request(data=True)).success
        drive(1.0, 0.1)
        reply = trigger("stop")
        assert reply.success and "saved episode 1" in reply.message, reply.message

        assert trigger("start").success
        drive(1.0, -0.1)
        recorder.send_signal(signal.SIGKILL)  # mid-episode
        recorder.wait(timeout=10)
        recorder = subprocess.Popen(recorder_cmd)
        assert trigger("start").success
        drive(1.0, 0.05)
        reply = trigger("stop")
        assert reply.success and "saved episode 2" in reply.message, reply.message
        assert np.max(np.abs(np.array(states[-1].position[:6]) - q_start)) > 0.02, "the arm never moved"
    finally:
        node.destroy_node()
        rclpy.shutdown()
        recorder.send_signal(signal.SIGINT)
        recorder_code = recorder.wait(timeout=30)
        graph_code = graph.stop()
    assert recorder_code == 0
    assert graph_code == 0, graph.log()
    assert "all nodes stopped" in graph.log() and "not all cleanly" not in graph.log()

    store = EpisodeStore.open(store_path)
    assert len(store) == 3, "kept: episode 0, the flagged one, the one after the restart"
    assert [store.episode_meta(i).success for i in range(3)] == [None, True, None]
    assert all(store.episode_meta(i).source == "teleop" for i in range(3))
    first = store.episode(0)
    # 3 s at 10 Hz is 30 steps; ticks whose observation is stale are skipped, and on a loaded
    # machine camera frames arrive late, so only a floor is checked.
    assert len(first[keys.ACTION]) >= 5, len(first[keys.ACTION])
    assert first[keys.ACTION].shape[1] == 7
    assert first[keys.image_key("front")].shape[1:] == (96, 96, 3)
    moved = first[keys.EE_POS][-1] - first[keys.EE_POS][0]
    # 3 s at 0.1 m/s along -y is 0.3 m (less when a loaded machine runs the sim slower than real
    # time), in a straight line.
    assert moved[1] < -0.1 and max(abs(moved[0]), abs(moved[2])) < 0.25 * abs(moved[1]), moved
    assert np.all(np.diff(first[keys.TIMESTAMP]) > 0)
