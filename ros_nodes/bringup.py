"""`robot-rl bringup --config sim_ur5e [--policy NAME] [--record STORE] [--teleop twist]`.

Runs the graph of ros_nodes/graph.py here, where `ros2 launch` is not installed: one
process per node, started in graph order with the same node names, parameters (written to
a --params-file per node) and remappings that launch/*.launch.py hands to launch_ros.

Shutdown: Ctrl-C or SIGTERM to bringup sends SIGINT to every node (last started first),
waits `--stop-timeout` seconds, then SIGKILLs what is left and says so. If one node exits
on its own, bringup stops the others: a graph with a missing node is not left running.
The exit status is 0 only when every node exited cleanly.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ros_nodes.graph import GraphOptions, NodeSpec, build_graph

_HELP = {
    "config": "hardware config: a name in hardware_configs/ (sim_ur5e) or a YAML path",
    "task": "sim task for sim_robot_node (reach, push, lift, insertion)",
    "policy": "policy name on the inference server; starts policy_node",
    "server": "inference server endpoint for policy_node",
    "action_horizon": "steps policy_node runs from each chunk before asking for the next (0: the policy's Ta)",
    "chunk_timeout_s": "controller watchdog: hold after this long without a fresh chunk (0: the hardware "
    "config's safety.chunk_timeout_s); must exceed a policy's Ta x 0.1 s plus its latency",
    "record": "episode store path; starts recorder_node",
    "teleop": "start teleop_node: 'twist' (Twist + Joy) or 'leader' (mirror a leader arm)",
    "real_time_factor": "sim speed: 1 real time, 0 as fast as possible with /clock",
    "randomization": "sim-as-hardware: a YAML file of domain randomization (sim/config.py RandomizationConfig)",
    "sensing_latency_s": "sim-as-hardware: joint states, task state and images arrive this late",
    "learner": "online RL: policy_node acts for `robot-rl learn` at this endpoint (actor mode)",
    "reward": "actor mode: 'task' (the success topic), 'operator' (/robot_rl/policy/label) or "
    "'classifier' (a reward classifier served beside the policy)",
    "reward_classifier": "actor mode, --reward classifier: the classifier's name on the inference server",
    "reset": "actor mode: 'sim' (sim node reset) or 'operator' (/robot_rl/policy/next_episode); "
    "default: sim in sim, else operator",
    "episode_steps": "actor mode: policy steps before an episode is cut",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(GraphOptions):
        flag = "--" + f.name.replace("_", "-")
        kind = {"float": float, "int": int}.get(f.type, str)  # annotations are strings here
        parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=_HELP[f.name])
    parser.add_argument("--dry-run", action="store_true", help="print the node commands and exit")
    parser.add_argument("--stop-timeout", type=float, default=10.0, help="seconds to wait after SIGINT")


def options_from_args(args: argparse.Namespace) -> GraphOptions:
    return GraphOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(GraphOptions)})


def node_command(spec: NodeSpec, params_file: Path) -> list[str]:
    """`python -m ros_nodes.launcher <executable> --ros-args ...`: what `ros2 run` would run."""
    cmd = [
        sys.executable,
        "-m",
        "ros_nodes.launcher",
        spec.executable,
        "--ros-args",
        "-r",
        f"__node:={spec.name}",
    ]
    cmd += ["--params-file", str(params_file)]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def write_params_file(spec: NodeSpec, folder: Path) -> Path:
    path = folder / f"{spec.name}.yaml"
    path.write_text(yaml.safe_dump({f"/{spec.name}": {"ros__parameters": dict(spec.parameters)}}))
    return path


class Bringup:
    """The node processes of one graph; `stop()` ends them all and reports how."""

    def __init__(self, specs: tuple[NodeSpec, ...], folder: Path, env: dict[str, str] | None = None):
        self.specs = specs
        self.folder = folder
        self.env = env
        self.procs: list[tuple[NodeSpec, subprocess.Popen]] = []

    def start(self) -> None:
        for spec in self.specs:
            cmd = node_command(spec, write_params_file(spec, self.folder))
            # Own session: a terminal's Ctrl-C reaches bringup alone, which then stops each node once.
            proc = subprocess.Popen(cmd, env=self.env, start_new_session=True)
            self.procs.append((spec, proc))
            print(f"bringup: started {spec.name} (pid {proc.pid})", flush=True)

    def exited(self) -> list[tuple[NodeSpec, int]]:
        return [(spec, proc.returncode) for spec, proc in self.procs if proc.poll() is not None]

    def stop(self, timeout_s: float) -> bool:
        """SIGINT all (reverse start order), then SIGKILL stragglers. True if all exited 0."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        clean = True
        for spec, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print(f"bringup: {spec.name} ignored SIGINT for {timeout_s:g} s; killed", file=sys.stderr)
                clean = False
                continue
            if proc.returncode != 0:
                print(f"bringup: {spec.name} exited with status {proc.returncode}", file=sys.stderr)
                clean = False
        return clean


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    specs = build_graph(options)
    with tempfile.TemporaryDirectory(prefix="robot_rl_bringup_") as tmp:
        if args.dry_run:
            for spec in specs:
                print(shlex.join(node_command(spec, write_params_file(spec, Path(tmp)))))
                print("  parameters:", dict(spec.parameters))
            return 0
        stop_requested: list[int] = []
        previous = {
            sig: signal.signal(sig, lambda signum, _frame: stop_requested.append(signum))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        graph = Bringup(specs, Path(tmp), env=dict(os.environ))
        try:
            graph.start()
            print(f"bringup: {len(specs)} nodes up; Ctrl-C stops them", flush=True)
            early: list[tuple[NodeSpec, int]] = []
            while not stop_requested and not early:
                time.sleep(0.1)
                early = graph.exited()
            for spec, code in early:
                print(
                    f"bringup: {spec.name} exited on its own (status {code}); stopping the graph",
                    file=sys.stderr,
                )
        finally:
            clean = graph.stop(args.stop_timeout)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        print("bringup: all nodes stopped" + ("" if clean else " (not all cleanly)"), flush=True)
        return 0 if clean and not early else 1
