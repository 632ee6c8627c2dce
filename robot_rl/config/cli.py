"""`robot-rl check-config NAME_OR_PATH`: validate a hardware config."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a name in hardware_configs/ (sim_ur5e) or a path to a YAML file")


def run(args: argparse.Namespace) -> int:
    from robot_rl.config.hardware import load_hardware_config

    hw = load_hardware_config(args.config)
    print(f"{hw.name}: {hw.description}")
    print(f"  file: {hw.source}")
    print(f"  control: {hw.control_rate_hz:g} Hz, {hw.controller.kind} -> {hw.controller.command_topic}")
    for j in hw.joints:
        lo, hi = j.position_limits
        print(
            f"  {j.name:24s} [{lo:+.3f}, {hi:+.3f}] rad  v<={j.velocity_limit:g}  a<={j.acceleration_limit:g}"
        )
    for cam in hw.cameras:
        print(f"  camera {cam.name}: {cam.width}x{cam.height} @ {cam.rate_hz:g} Hz on {cam.image_topic}")
    print("ok")
    return 0
