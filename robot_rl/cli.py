"""`robot-rl ...`: the one command-line entry point.

Each command lives in its own module, named in COMMANDS below (no registration by import
side effect). A command module exposes `add_arguments(parser)` and `run(args) -> int`, and
keeps heavy imports (torch, mujoco, rclpy) inside `run` so that `robot-rl --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "robot_rl.demo",
        "the main job end to end: collect demos, train a diffusion policy, evaluate it",
    ),
    "check-config": ("robot_rl.config.cli", "validate a hardware config and print its summary"),
    "data": (
        "robot_rl.data.cli",
        "episode stores: info, validate, merge, split, export-video, plot, convert",
    ),
    "bringup": (
        "ros_nodes.bringup",
        "run the ROS 2 node graph here, one process per node (no ros2 launch needed)",
    ),
    "serve": ("robot_rl.serving.cli", "serve policies to robots over ZeroMQ (CURVE beyond loopback)"),
    "keygen": ("robot_rl.serving.keygen_cli", "make a CURVE key pair for a server, robot or learner"),
    "sim": ("sim.cli", "MuJoCo tasks: view scenes, run the scripted experts, collect demonstrations"),
    "train": ("robot_rl.training.cli", "train a policy from an episode store (train diffusion ...)"),
    "learn": (
        "robot_rl.training.learn_cli",
        "online RL on a robot through ROS: train on its episodes, hot-update the inference server",
    ),
    "distill": (
        "robot_rl.training.distill_cli",
        "consistency-distill a diffusion policy into a one-step student",
    ),
    "eval": (
        "robot_rl.training.eval_cli",
        "roll a policy out in sim: success rate (95% interval), video, PNG",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-rl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        # argparse %-formats help strings (not descriptions): escape a literal "95%".
        cmd = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C / SIGINT stops every command cleanly, also when the process was started with
        # SIGINT ignored (a shell's background job inherits SIG_IGN, and Python then installs no
        # handler): launchers, tests and `robot-rl bringup` stop servers and nodes with SIGINT.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        # Bad input: a config, a file, an argument. Say what, without a traceback.
        print(f"robot-rl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
