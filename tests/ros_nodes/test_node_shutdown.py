"""ros_nodes.common.run: an exception raised while Ctrl-C is taking the context down is the
shutdown (exit 0); one raised while the context stays up is an error (the process fails).

rclpy shuts the context down from a thread of its own after SIGINT, so a callback or a take
that fails at that moment can raise before rclpy.ok() turns False. Each case runs `run()` in a
process of its own, as `robot-rl bringup` runs nodes."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

NODE = """
import sys, threading, rclpy
from rclpy.node import Node
from ros_nodes.common import run

class Failing(Node):
    def __init__(self):
        super().__init__("failing_node")
        self.create_timer(0.05, self.tick)

    def tick(self):
        if sys.argv[1] == "shutdown-in-flight":  # the context goes down 0.1 s after the failure
            threading.Timer(0.1, rclpy.try_shutdown).start()
        raise RuntimeError("Unable to convert call argument '0' to Python object")

sys.exit(run(Failing))
"""


def _run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NODE, mode], capture_output=True, text=True, timeout=60)


def test_a_failure_while_the_context_goes_down_is_a_clean_exit():
    done = _run("shutdown-in-flight")
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_failure_while_the_context_stays_up_fails_the_process():
    done = _run("error")
    assert done.returncode != 0
    assert "Unable to convert call argument" in done.stderr


STUCK = """
import os, signal, sys, threading
from rclpy.node import Node
from ros_nodes.common import run

class Stuck(Node):  # a node whose own thread will not stop (a hung driver call)
    def __init__(self):
        super().__init__("stuck_node")
        self.fatal = None
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C

    def close(self):
        self.fatal = RuntimeError("the loop thread did not stop")
        return False

    def destroy_node(self):
        print("destroyed", flush=True)
        super().destroy_node()

sys.exit(run(Stuck))
"""


def test_a_node_whose_thread_will_not_stop_is_not_destroyed_and_the_process_fails():
    """close() returning False: the thread may still publish, so run() does not destroy the
    node under it; the node's fatal error fails the process by name."""
    done = subprocess.run([sys.executable, "-c", STUCK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "destroyed" not in done.stdout
    assert "the loop thread did not stop" in done.stderr
