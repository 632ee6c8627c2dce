"""Observation-to-command latency over ROS, for a one-step and a DDIM-10 policy.

    .venv/bin/python bench/e2e_latency.py [--seconds 30] [--one-step CKPT] [--ddim CKPT]
                                          [--warmup 20] [--action-horizon 1]

For each policy the whole sim graph runs (`robot-rl bringup --policy NAME`: sim node,
controller, policy node) against one `robot-rl serve` process holding both policies. The
controller measures, for every chunk it accepts, the time from the chunk's stamp (= the
stamp of the observation it answers) to the first command it computes after accepting it:

    joint state measured ──► policy node ──► server ──► chunk ──► controller ──► command
    |<──────────────────────────── obs_to_command ───────────────────────────────>|

and reports p50 / p99 and its missed deadlines on /diagnostics. After `--warmup` seconds
(discovery, the server's first calls) this script deactivates and re-activates the
controller, which starts both statistics afresh, and reads them `--seconds` later: warm-up
never enters the numbers. The policy node asks for a chunk every `--action-horizon` policy
steps (default 1: a chunk per 0.1 s step, 300 samples in 30 s, the policy's own Ta would
give one every 0.8 s); the latency of one chunk does not depend on how often they come,
only the number of samples does. Without checkpoints it builds untrained
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


def untrained_policy(path: Path, sampler_kind: str, steps: int) -> Path:
    import numpy as np

    from robot_rl import keys
    from robot_rl.config.hardware import load_hardware_config
    from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, SamplerConfig
    from robot_rl.policies.diffusion import ObsFeature, UNetConfig
    from sim.robot import home_pose

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
    scale[keys.ACTION], offset[keys.ACTION] = (
        np.full(7, 20.0),
        -20.0 * np.append(home_pose(load_hardware_config("sim_ur5e")), 0.95),
    )
    policy.set_normalization(scale, offset)
    return policy.save(path)


POLICY_COUNTS = ("chunks", "stale", "errors")


def controller_diagnostics(seconds: float) -> dict[str, str]:
    """Restart the controller (deactivate, activate: fresh statistics), then its newest
    /diagnostics values after `seconds` more, with the policy node's chunk, stale-observation
    and error counts over the same window (policy_chunks, policy_stale, policy_errors)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    latest: dict[str, str] = {}
    policy: list[dict[str, str]] = []  # the policy node's reports during the window

    def on_diag(msg):
        for status in msg.status:
            if status.name == "/controller":
                latest.clear()
                latest.update({v.key: v.value for v in status.values}, message=status.message)
            elif status.name == "/policy":
                policy.append({v.key: v.value for v in status.values})

    rclpy.init()
    node = rclpy.create_node("bench_e2e_latency")
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    lifecycle = node.create_client(ChangeState, "/controller/change_state")
    try:
        for transition in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_ACTIVATE):
            if not lifecycle.wait_for_service(timeout_sec=30.0):
                raise RuntimeError("the controller's lifecycle service did not appear")
            future = lifecycle.call_async(ChangeState.Request(transition=Transition(id=transition)))
            rclpy.spin_until_future_complete(node, future, timeout_sec=30.0)
            if not future.done() or not future.result().success:
                raise RuntimeError(f"the controller refused lifecycle transition {transition}")
        latest.clear()
        policy.clear()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    if len(policy) >= 2:
        for key in POLICY_COUNTS:
            latest[f"policy_{key}"] = str(int(policy[-1][key]) - int(policy[0][key]))
        latest["policy_last_error"] = policy[-1].get("last_error", "")
    return latest


def wait_for_server(endpoint: str, names: list[str], server: subprocess.Popen, log: Path) -> None:
    """Until the server answers a status request naming every policy (loading them takes a while,
    minutes on a loaded machine): the graph's warm-up starts from a server that answers."""
    from robot_rl.serving.client import InferenceClient, ZmqTransport

    client = InferenceClient(ZmqTransport(endpoint), timeout_s=2.0)
    deadline = time.monotonic() + 300.0
    try:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if set(names) <= set(client.status()["policies"]):
                    return
            except Exception:  # not listening yet
                time.sleep(0.5)
    finally:
        client.close()
    raise RuntimeError(f"the server did not answer within 300 s:\n{log.read_text()[-3000:]}")


def run_graph(
    policy: str, endpoint: str, seconds: float, warmup: float, action_horizon: int, log: Path
) -> dict[str, str]:
    cmd = [sys.executable, "-m", "robot_rl.cli", "bringup", "--policy", policy, "--server", endpoint]
    cmd += ["--action-horizon", str(action_horizon)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
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
    parser.add_argument(
        "--action-horizon", type=int, default=1, help="policy steps per chunk request (0: the policy's Ta)"
    )
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
            wait_for_server(endpoint, list(ckpts), server, tmp / "server.log")
            for name in ckpts:
                print(
                    f"measuring {name} for {args.seconds:g} s after {args.warmup:g} s of start-up...",
                    flush=True,
                )
                log = tmp / f"bringup_{name}.log"
                try:
                    rows[name] = run_graph(
                        name, endpoint, args.seconds, args.warmup, args.action_horizon, log
                    )
                except Exception:
                    print(log.read_text()[-3000:], file=sys.stderr)
                    raise
                rows[name]["load"] = f"{os.getloadavg()[0]:.2f}"
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

    print(
        f"\n{'policy':10s} {'obs->cmd p50 ms':>16s} {'p99 ms':>8s} {'chunks':>7s} {'ticks':>7s} {'missed':>7s}"
        f" {'load 1 min':>10s}  policy node: chunks stale errors"
    )
    for name, d in rows.items():
        print(
            f"{name:10s} {d.get('obs_to_command_p50_ms', 'n/a'):>16s} {d.get('obs_to_command_p99_ms', 'n/a'):>8s} "
            f"{d.get('obs_to_command_samples', '0'):>7s} {d.get('ticks', '0'):>7s} {d.get('missed_deadlines', '0'):>7s}"
            f" {d['load']:>10s}  " + " ".join(d.get(f"policy_{k}", "n/a") for k in POLICY_COUNTS)
        )
    print("missed: control periods whose command came after its deadline, during the measurement")
    for name, d in rows.items():
        if d.get("policy_errors", "0") != "0":
            print(f"{name}: the policy node's last error: {d.get('policy_last_error')}")
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
