"""controller_node's scheduling parameters reach its control loop thread, and a refused priority
shows up in /diagnostics' values (sched_fifo_priority 0) instead of failing the node."""

import os
import time

import pytest

rclpy = pytest.importorskip("rclpy")

from ros_nodes.controller_node import ControllerNode  # noqa: E402


@pytest.fixture
def node_with(request):
    nodes = []

    def make(*params: str) -> ControllerNode:
        args = ["--ros-args"] + [x for p in params for x in ("-p", p)]
        rclpy.init(args=args)
        node = ControllerNode()  # autostart: configured and active, its loop thread started
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.close()
        node.destroy_node()
    rclpy.try_shutdown()


def _wait_for_thread_status(loop):
    end = time.monotonic() + 5.0
    while loop.thread_status is None and time.monotonic() < end:
        time.sleep(0.01)
    assert loop.thread_status is not None, "the loop thread never started"
    return loop.thread_status


def test_priority_and_core_reach_the_loop_thread(node_with):
    core = sorted(os.sched_getaffinity(0))[-1]
    node = node_with("realtime_priority:=0", f"loop_cpu:={core}")
    assert node.control_config.loop.realtime_priority == 0
    assert node.control_config.loop.cpus == (core,)
    status = _wait_for_thread_status(node.loop)
    assert status.fifo_priority == 0 and status.cpus == (core,) and status.problems == ()


def test_default_asks_for_sched_fifo_and_a_refusal_is_not_fatal(node_with, monkeypatch):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)  # fault injection: no CAP_SYS_NICE
    node = node_with()
    assert node.control_config.loop.realtime_priority == 50  # robot_rl.control's default
    assert node.control_config.loop.cpus == ()
    status = _wait_for_thread_status(node.loop)
    assert status.fifo_priority == 0 and "SCHED_FIFO 50 refused" in status.problems[0]
    assert node.loop is not None and not node.loop.realtime  # still running, normal priority
