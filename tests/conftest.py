"""Suite-wide settings: headless rendering and a private ROS domain per test run.

Several test runs may share one machine (developers and CI), so each pytest session picks
its own ROS_DOMAIN_ID; DDS traffic of one run never reaches another.
"""

import os
import random

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
if "ROS_DOMAIN_ID" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 101))
# Discovery stays on this machine.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
