"""`python -m ros_nodes.launcher NODE --ros-args ...`: what bringup runs for each node.

The node module's imports (rclpy, mujoco, torch...) take seconds; a Ctrl-C that lands
while they run is a clean stop too (exit status 0), not a traceback. A node that crashes in
native code (a segfault in a middleware library) prints every thread's Python stack first.
"""

from __future__ import annotations

import faulthandler
import importlib
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print("usage: python -m ros_nodes.launcher NODE [--ros-args ...]", file=sys.stderr)
        return 2
    faulthandler.enable()  # to stderr, which bringup leaves on the terminal (or the test's log)
    try:
        module = importlib.import_module(f"ros_nodes.{argv[0]}")
        return int(module.main(args=argv[1:]) or 0)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
