"""Suite-wide settings: headless rendering (robot_rl/gl.py), a private ROS domain per test run,
and the one-torch-thread fixture the model tests use.

Several test runs may share one machine (developers and CI), so each pytest session picks
its own ROS_DOMAIN_ID; DDS traffic of one run never reaches another.
"""

import os
import random

import pytest

from robot_rl.gl import configure_gl

configure_gl()  # the GL backend, before any test module imports mujoco
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
if "ROS_DOMAIN_ID" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 101))
# Discovery stays on this machine.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


@pytest.fixture
def one_torch_thread():
    """Tiny nets: one torch thread avoids OpenMP spin-waiting on a loaded 2-core machine (they run
    10-50x slower with two there). Restored after the test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
