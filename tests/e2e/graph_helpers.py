"""Helpers for whole-graph tests: run `robot-rl bringup` as a subprocess and talk to it over ROS."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from robot_rl import keys
from robot_rl.config.hardware import load_hardware_config
from sim.robot import home_pose

ROOT = Path(__file__).resolve().parents[2]


class BringupProcess:
    """`robot-rl bringup ...` in its own process; its node pids parsed from its output."""

    def __init__(self, args: list[str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "robot_rl.cli", "bringup", *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def pids(self) -> dict[str, int]:
        return {m[0]: int(m[1]) for m in re.findall(r"started (\w+) \(pid (\d+)\)", self.log())}

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


def spin_until(executor, predicate, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=step_s)
        if predicate():
            return True
    return predicate()


def call(executor, client, request, timeout_s: float = 60.0, attempt_s: float = 10.0):
    """Call a service, resending every attempt_s: after a SIGKILL, discovery may still match the
    dead server for a while, and a loaded machine may take seconds to match the new one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not client.wait_for_service(timeout_sec=min(attempt_s, max(0.0, deadline - time.monotonic()))):
            continue
        future = client.call_async(request)
        if spin_until(executor, future.done, min(attempt_s, max(0.0, deadline - time.monotonic()))):
            return future.result()
        client.remove_pending_request(future)
    raise AssertionError(f"service {client.srv_name} did not answer within {timeout_s:g} s")


HOME = home_pose(load_hardware_config("sim_ur5e"))


def untrained_push_policy(
    path: Path, sampler_kind: str = "ddim", steps: int = 10, down_dims=(16, 32)
) -> Path:
    """A real DiffusionPolicy checkpoint with the sim push task's state observations, untrained,
    its action normalizer set so every action lies within 0.05 rad of the home pose: the
    graph's plumbing is exercised with a policy that keeps the arm near home."""
    import numpy as np

    from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, SamplerConfig
    from robot_rl.policies.diffusion import ObsFeature, UNetConfig

    obs = {keys.JOINT_POS: 6, keys.GRIPPER_POS: 1, keys.EE_POS: 3, keys.OBJECT_POSE: 7, keys.GOAL_POS: 3}
    config = DiffusionPolicyConfig(
        obs_spec={k: ObsFeature((n,)) for k, n in obs.items()},
        action_dim=7,
        prediction_type="sample" if sampler_kind == "consistency" else "epsilon",
        unet=UNetConfig(down_dims=tuple(down_dims)),
        sampler=SamplerConfig(kind=sampler_kind, num_steps=steps),
    )
    policy = DiffusionPolicy(config)
    home = np.append(HOME, 0.95)
    scale = {k: np.ones(n) for k, n in obs.items()}
    offset = {k: np.zeros(n) for k, n in obs.items()}
    scale[keys.ACTION], offset[keys.ACTION] = np.full(7, 20.0), -20.0 * home
    policy.set_normalization(scale, offset)
    return policy.save(path)


def watchdog_timeout(steps: int, step_s: float = 0.1, inference_deadline_s: float = 0.5) -> float:
    """bringup's --chunk-timeout-s for a policy asked for a chunk every `steps` steps: the span of
    those steps plus the policy node's inference deadline (its timeout_s). sim_ur5e's own 0.5 s
    assumes a chunk per step; with Ta = 8 the watchdog would brake the arm between chunks."""
    return steps * step_s + inference_deadline_s


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_server(server: subprocess.Popen, log_path: Path, timeout_s: float = 90.0) -> int:
    """Ctrl-C the server and wait for it to exit; a server that does not is killed (never left
    running) and the test fails with its log. The wait is generous: on a loaded 2-core machine
    the interpreter's teardown alone (torch, libzmq) has taken tens of seconds."""
    server.send_signal(signal.SIGINT)
    try:
        return server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGUSR1)  # `robot-rl serve` dumps its threads' stacks to its log
        time.sleep(2.0)
        server.kill()
        server.wait()
        raise AssertionError(
            f"the server did not exit within {timeout_s:g} s of SIGINT:\n{log_path.read_text()[-3000:]}"
        ) from None


def start_server(
    policies: dict[str, Path], endpoint: str, log_path: Path, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "robot_rl.cli",
        "serve",
        "--bind",
        endpoint,
        "--insecure-loopback",
        "--device",
        "cpu",
    ]
    for name, path in policies.items():
        args += ["--policy", f"{name}={path}"]
    args += list(extra)
    # One torch thread: the graph's nodes share the machine's cores with the server (and a
    # plain-sim evaluation runs with one too); more threads only contend on a busy machine.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )


class RosEpisodes:
    """Episodes of a sim graph with a policy, driven over ROS as an evaluation would:

    policy off ─► controller deactivate ─► sim reset (seed + k) ─► controller activate ─►
    policy on ─► until /sim_robot/success or `max_steps` sim steps (one JointState each)
    """

    def __init__(self, node, executor):
        from lifecycle_msgs.srv import ChangeState
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool
        from std_srvs.srv import SetBool, Trigger

        self.node, self.executor = node, executor
        self.enable = node.create_client(SetBool, "/robot_rl/policy/enable")
        self.reset = node.create_client(Trigger, "/sim_robot/reset")
        self.lifecycle = node.create_client(ChangeState, "/controller/change_state")
        self.steps = 0
        self.success = False
        self.sim_steps = 0  # over every episode run, and the wall time they took:
        self.episode_wall_s = 0.0  # sim_steps * 0.01 / episode_wall_s = the sim's real-time factor
        node.create_subscription(JointState, "/joint_states", self._on_state, qos_profile_sensor_data)
        node.create_subscription(Bool, "/sim_robot/success", self._on_success, 10)

    def _on_state(self, msg) -> None:
        self.steps += 1

    def _on_success(self, msg) -> None:
        self.success = self.success or msg.data

    def _transition(self, transition_id: int) -> None:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        reply = call(
            self.executor, self.lifecycle, ChangeState.Request(transition=Transition(id=transition_id))
        )
        assert reply.success, f"controller lifecycle transition {transition_id} refused"

    def run(self, max_steps: int, timeout_s: float) -> bool:
        from lifecycle_msgs.msg import Transition
        from std_srvs.srv import SetBool, Trigger

        assert call(self.executor, self.enable, SetBool.Request(data=False)).success
        self._transition(Transition.TRANSITION_DEACTIVATE)
        assert call(self.executor, self.reset, Trigger.Request()).success
        self._transition(Transition.TRANSITION_ACTIVATE)
        spin_until(self.executor, lambda: False, 0.3)  # success messages of the old episode drain
        self.steps, self.success = 0, False
        assert call(self.executor, self.enable, SetBool.Request(data=True)).success
        started = time.monotonic()
        done = spin_until(self.executor, lambda: self.success or self.steps >= max_steps, timeout_s)
        self.episode_wall_s += time.monotonic() - started
        self.sim_steps += self.steps
        assert done, f"episode neither succeeded nor ran {max_steps} sim steps in {timeout_s} s"
        return self.success
