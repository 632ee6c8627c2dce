"""Observation-to-command latency over ROS, for a one-step and a DDIM-10 policy.

    .venv/bin/python bench/e2e_latency.py [--seconds 30] [--one-step CKPT] [--ddim CKPT]

For each policy the whole sim graph runs (`robot-rl bringup --policy NAME`: sim node,
controller, policy node) against one `robot-rl serve` process holding both policies. The
controller measures, for every chunk it accepts, the time from the chunk's stamp (= the
stamp of the observation it answers) to the first command it computes after accepting it:

    joint state measured ──► policy node ──► server ──► chunk ──► controller ──► command
    |<──────────────────────────── obs_to_command ───────────────────────────────>|

and reports p50 / p99 over the last 1000 chunks and its missed deadlines on /diagnostics;
this script reads them after `--seconds` of running. Without checkpoints it builds untrained
policies of the default training architecture (U-Net 64-128-256, state observations of the
push task): latency depends on the network and the sampler, not on the weights.

Printed: a row per policy and the ratio DDIM-10 / one-step. No peer offers this path (LeRobot
has no ROS 2; SERL drives ROS 1 behind HTTP), so the ratio compares our two samplers.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOME = (2.8409, -1.6798, 1.9651, -1.8561, -1.5708, 2.8409)  # sim_ur5e's home keyframe


def untrained_policy(path: Path, sampler_kind: str, steps: int) -> Path:
    import numpy as np

    from robot_rl import keys
    from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, SamplerConfig
    from robot_rl.policies.diffusion import ObsFeature, UNetConfig

    obs = {keys.JOINT_POS: 6, keys.GRIPPER_POS: 1, keys.EE_POS: 3, keys.OBJECT_POSE: 7, keys.GOAL_POS: 3}
    policy = DiffusionPolicy(
        DiffusionPolicyConfig(
            obs_spec={k: ObsFeature((n,)) for k, n in obs.items()},
            action_dim=7,
            prediction_type="sample" if sampler_kind == "consistency" else "epsilon",
            unet=UNetConfig(down_dims=(64, 128, 256)),
            sampler=SamplerConfig(kind=sampler_kind, num_steps=steps),
        )
    )
    scale = {k: np.ones(n) for k, n in obs.items()}
    offset = {k: np.zeros(n) for k, n in obs.items()}
    # Actions within 0.05 rad of home: the arm stays put whatever the untrained net says.
    scale[keys.ACTION], offset[keys.ACTION] = np.full(7, 20.0), -20.0 * np.append(HOME, 0.95)
    policy.set_normalization(scale, offset)
    return policy.save(path)


def controller_diagnostics(seconds: float) -> dict[str, str]:
    """The controller's newest /diagnostics values after listening `seconds`."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    latest: dict[str, str] = {}

    def on_diag(msg):
        for status in msg.status:
            if status.name == "/controller":
                latest.clear()
                latest.update({v.key: v.value for v in status.values}, message=status.message)

    rclpy.init()
    node = rclpy.create_node("bench_e2e_latency")
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    return latest


def run_graph(policy: str, endpoint: str, seconds: float, warmup: float, log: Path) -> dict[str, str]:
    cmd = [sys.executable, "-m", "robot_rl.cli", "bringup", "--policy", policy, "--server", endpoint]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            # The controller's latency window holds the last 1000 chunks; warm-up chunks drop out
            # of a long run, and the first diagnostics after warm-up are read, not averaged.
            time.sleep(warmup)
            diag = controller_diagnostics(seconds)
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
    if code != 0:
        raise RuntimeError(f"bringup for {policy} exited with {code}; see {log}")
    return diag


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement time per policy")
    parser.add_argument("--warmup", type=float, default=20.0, help="start-up time before measuring")
    parser.add_argument("--one-step", help="consistency-distilled checkpoint (default: untrained)")
    parser.add_argument("--ddim", help="DDIM-10 diffusion checkpoint (default: untrained)")
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

    with tempfile.TemporaryDirectory(prefix="bench_e2e_latency_") as tmp:
        tmp = Path(tmp)
        ckpts = {
            "one_step": Path(args.one_step)
            if args.one_step
            else untrained_policy(tmp / "one", "consistency", 1),
            "ddim10": Path(args.ddim) if args.ddim else untrained_policy(tmp / "ddim", "ddim", 10),
        }
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        serve = [sys.executable, "-m", "robot_rl.cli", "serve", "--bind", endpoint, "--insecure-loopback"]
        for name, path in ckpts.items():
            serve += ["--policy", f"{name}={path}"]
        server = subprocess.Popen(
            serve, cwd=ROOT, stdout=open(tmp / "server.log", "w"), stderr=subprocess.STDOUT
        )  # noqa: SIM115
        rows = {}
        try:
            for name in ckpts:
                print(
                    f"measuring {name} for {args.seconds:g} s after {args.warmup:g} s of start-up...",
                    flush=True,
                )
                rows[name] = run_graph(name, endpoint, args.seconds, args.warmup, tmp / f"bringup_{name}.log")
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

    print(
        f"\n{'policy':10s} {'obs->cmd p50 ms':>16s} {'p99 ms':>8s} {'chunks':>7s} {'ticks':>7s} {'missed':>7s}"
    )
    for name, d in rows.items():
        print(
            f"{name:10s} {d.get('obs_to_command_p50_ms', 'n/a'):>16s} {d.get('obs_to_command_p99_ms', 'n/a'):>8s} "
            f"{d.get('obs_to_command_samples', '0'):>7s} {d.get('ticks', '0'):>7s} {d.get('missed_deadlines', '0'):>7s}"
        )
    try:
        ratio = float(rows["ddim10"]["obs_to_command_p50_ms"]) / float(
            rows["one_step"]["obs_to_command_p50_ms"]
        )
        print(f"\nratio DDIM-10 / one-step (p50 latency): {ratio:.2f}x")
    except (KeyError, ValueError, ZeroDivisionError):
        print("\nno latency samples for one of the policies: see the bringup logs (kept only during the run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
