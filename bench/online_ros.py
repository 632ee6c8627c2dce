"""Online RL through the ROS graph: do the learner's hot updates cost the controller deadlines?

    .venv/bin/python bench/online_ros.py [--algo rlpd|dsrl] [--diffusion CKPT] [--seconds 120]
                                         [--weights-every 10] [--episode-steps 40]

Runs the whole loop of README "Online RL on the robot" on this machine: `robot-rl learn`
(its own process), `robot-rl serve` with the learner's explorer (`--insecure-updates` on
loopback), and `robot-rl bringup --learner ...` (sim node, controller, policy node in actor
mode). While the arm moves, this script reads the controller's /diagnostics (once a second:
control ticks and missed deadlines since the controller's last activation; every sim reset
re-activates it) and asks the server for the policy's version five times a second. Each
one-second report interval is then put in one of two classes:

    interval  (t0, t1]  of one activation (ticks rose; an interval across a reset is dropped)
    update    a new weight version appeared within (t0 - 0.25 s, t1 + 0.25 s]
    steady    none did

and the printout compares missed deadlines per 1000 control ticks in the two: a hot update
that disturbed the control loop shows as a higher rate in `update` intervals. Both classes
share everything else (the learner's gradient steps run all the time, the sim and the
policy node too), so the ratio isolates the update. The server is a separate process from
the controller: an update can only reach the control loop through the CPU they share.

Defaults: RLPD from synthetic demonstrations near the home pose (the arm stays within
0.1 rad of home: the bench measures timing, not learning), a (64, 64) actor, one gradient step
per robot step, weights to the server every 10 robot steps. `--algo dsrl --diffusion CKPT`
runs DSRL on a trained push policy instead (its explorer runs the diffusion policy twice per
chunk, so the server works harder).
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
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.e2e_latency import wait_for_server  # noqa: E402

UPDATE_SLACK_S = 0.25  # a version seen by polling at 5 Hz appeared up to 0.2 s before


def near_home_demos(path: Path, episodes: int = 8, steps: int = 40) -> Path:
    """RLPD's offline data: actions within 0.05 rad of home (the actor's bounds come from them)."""
    from robot_rl import keys
    from robot_rl.config.hardware import load_hardware_config
    from robot_rl.data.store import EpisodeMeta, EpisodeStore
    from sim.robot import home_pose

    obs = {keys.JOINT_POS: 6, keys.GRIPPER_POS: 1, keys.EE_POS: 3, keys.OBJECT_POSE: 7, keys.GOAL_POS: 3}
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path)
    home = np.append(home_pose(load_hardware_config("sim_ur5e")), 0.95)
    for _ in range(episodes):
        ep = {k: rng.normal(0, 0.1, (steps, n)).astype(np.float32) for k, n in obs.items()}
        ep[keys.ACTION] = (home + rng.uniform(-0.05, 0.05, (steps, 7))).astype(np.float32)
        ep[keys.REWARD] = np.zeros(steps, np.float32)
        ep[keys.TERMINAL] = np.zeros(steps, bool)
        store.append_episode(ep, EpisodeMeta(task="push", source="sim"))
    return path


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def stop(procs: list[subprocess.Popen | None], timeout_s: float = 60.0) -> None:
    """Ctrl-C each running process in turn (the graph first), SIGKILL one that outlasts timeout_s."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()


class Monitor:
    """The controller's and the policy node's /diagnostics, and the served version, with times."""

    def __init__(self, endpoint: str, policy: str):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        from robot_rl.serving.client import InferenceClient, ZmqTransport

        rclpy.init()
        self._rclpy = rclpy
        self.node = rclpy.create_node("bench_online_ros")
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.controller: list[tuple[float, dict[str, str]]] = []
        self.policy: dict[str, str] = {}
        self.versions: list[tuple[float, int]] = []
        self._client = InferenceClient(ZmqTransport(endpoint), timeout_s=2.0)
        self._policy_name = policy
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_versions, daemon=True)

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            values = {v.key: v.value for v in status.values}
            if status.name == "/controller" and "ticks" in values:
                self.controller.append((time.monotonic(), values))
            elif status.name == "/policy":
                self.policy = values

    def _poll_versions(self) -> None:
        while not self._stop.is_set():
            try:
                version = int(self._client.status()["policies"][self._policy_name]["version"])
                if not self.versions or version != self.versions[-1][1]:
                    self.versions.append((time.monotonic(), version))
            except Exception:  # a slow reply on a busy machine: the next poll catches up
                pass
            self._stop.wait(0.2)

    def run(self, seconds: float) -> None:
        self._poller.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.spin_once()
        self._stop.set()
        self._poller.join()

    def spin_once(self) -> None:
        self._rclpy.spin_once(self.node, timeout_sec=0.1)

    def close(self) -> None:
        self._client.close()
        self.node.destroy_node()
        self._rclpy.shutdown()


def classify(controller: list[tuple[float, dict[str, str]]], updates: list[float]) -> dict[str, list[int]]:
    """{"update" | "steady": [intervals, ticks, missed]} over consecutive reports of one activation."""
    out = {"update": [0, 0, 0], "steady": [0, 0, 0]}
    for (t0, a), (t1, b) in zip(controller, controller[1:]):
        ticks = int(b["ticks"]) - int(a["ticks"])
        missed = int(b["missed_deadlines"]) - int(a["missed_deadlines"])
        if ticks <= 0 or missed < 0 or b.get("mode") == "inactive":
            continue  # the controller was re-activated in between (a sim reset): counts restarted
        hit = any(t0 - UPDATE_SLACK_S < u <= t1 + UPDATE_SLACK_S for u in updates)
        row = out["update" if hit else "steady"]
        row[0] += 1
        row[1] += ticks
        row[2] += missed
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=("rlpd", "dsrl"), default="rlpd")
    parser.add_argument("--diffusion", help="dsrl: the trained push diffusion policy to steer")
    parser.add_argument("--seconds", type=float, default=120.0, help="measured time with the arm moving")
    parser.add_argument("--weights-every", type=int, default=10, help="robot steps between hot updates")
    parser.add_argument("--episode-steps", type=int, default=40, help="policy steps per episode")
    parser.add_argument("--max-deviation", type=float, default=0.05, help="explorer bound (rad)")
    parser.add_argument(
        "--actor-every",
        type=int,
        default=0,
        help="learner critic steps per actor step (0: once per transition)",
    )
    args = parser.parse_args()
    if args.algo == "dsrl" and not args.diffusion:
        parser.error("--algo dsrl needs --diffusion CKPT (a trained push policy)")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")

    with tempfile.TemporaryDirectory(prefix="bench_online_ros_") as tmp:
        tmp = Path(tmp)
        run = tmp / "run"
        server_ep, learner_ep = free_endpoint(), free_endpoint()
        learn = [sys.executable, "-m", "robot_rl.cli", "learn", "--algo", args.algo, "--out", str(run)]
        learn += ["--bind", learner_ep, "--server", server_ep, "--policy", "push", "--insecure-loopback"]
        learn += ["--env-steps", "1000000", "--utd", "1", "--batch-size", "64", "--no-progress"]
        learn += ["--weights-every", str(args.weights_every), "--checkpoint-every", "1000000"]
        learn += ["--max-deviation", str(args.max_deviation), "--hidden", "64,64"]
        learn += ["--actor-every", str(args.actor_every)]
        if args.algo == "rlpd":
            learn += ["--data", str(near_home_demos(tmp / "demos.zarr"))]
        else:
            learn += ["--diffusion", args.diffusion]
        logs = {name: open(tmp / f"{name}.log", "w") for name in ("learner", "server", "bringup")}  # noqa: SIM115
        procs: dict[str, subprocess.Popen] = {}

        def start(name: str, cmd: list[str]) -> None:
            procs[name] = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT
            )

        monitor = None
        try:
            start("learner", learn)
            deadline = time.monotonic() + 300
            while not (run / "explorer" / "explorer.yaml").exists():
                if procs["learner"].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the learner did not write its explorer:\n" + _tail(tmp / "learner.log")
                    )
                time.sleep(0.2)
            start(
                "server",
                [sys.executable, "-m", "robot_rl.cli", "serve", "--bind", server_ep, "--insecure-loopback"]
                + ["--insecure-updates", "--device", "cpu", "--policy", f"push={run / 'explorer'}"],
            )
            wait_for_server(server_ep, ["push"], procs["server"], tmp / "server.log")
            start(
                "bringup",
                [sys.executable, "-m", "robot_rl.cli", "bringup", "--policy", "push", "--server", server_ep]
                + ["--task", "push", "--learner", learner_ep, "--episode-steps", str(args.episode_steps)],
            )
            monitor = Monitor(server_ep, "push")
            print("waiting for the robot's first episode (start-up, discovery, the learner's warm-up)...")
            deadline = time.monotonic() + 300
            while int(monitor.policy.get("episodes", 0)) < 1:
                monitor.spin_once()
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs.values()):
                    raise RuntimeError("no episode reached the learner:\n" + _tail(tmp / "bringup.log"))
            monitor.controller.clear()
            print(f"measuring for {args.seconds:g} s...", flush=True)
            monitor.run(args.seconds)
            load = os.getloadavg()[0]
        finally:
            if monitor is not None:
                monitor.close()
            stop([procs.get(name) for name in ("bringup", "server", "learner")])
            for f in logs.values():
                f.close()

    updates = [t for t, _ in monitor.versions[1:]]  # the first poll only tells where it started
    rows = classify(monitor.controller, updates)
    versions = [v for _, v in monitor.versions]
    print(
        f"\n{args.algo}: {len(updates)} hot updates landed in {args.seconds:g} s (versions "
        f"{versions[0] if versions else '?'} -> {versions[-1] if versions else '?'}); policy node: "
        f"{monitor.policy.get('episodes')} episodes, {monitor.policy.get('chunks')} chunks, "
        f"{monitor.policy.get('errors')} errors; load average {load:.2f}"
    )
    print(f"\n{'interval':8s} {'count':>6s} {'ticks':>8s} {'missed':>7s} {'missed / 1000 ticks':>20s}")
    rate = {}
    for name, (count, ticks, missed) in rows.items():
        rate[name] = 1000.0 * missed / ticks if ticks else float("nan")
        print(f"{name:8s} {count:6d} {ticks:8d} {missed:7d} {rate[name]:20.2f}")
    print(
        "update: a one-second controller report with a new weight version within it (+-0.25 s); "
        "steady: the rest"
    )
    if rate["steady"] > 0 and rows["update"][1]:
        print(f"\nratio update / steady (missed per tick): {rate['update'] / rate['steady']:.2f}x")
    elif rows["update"][1]:
        print(f"\nno deadline missed in steady intervals; {rows['update'][2]} missed in update intervals")
    return 0


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text()[-n:] if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
