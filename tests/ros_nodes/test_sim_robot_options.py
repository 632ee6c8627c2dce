"""sim_robot_node as sim-as-hardware: a domain-randomization file and injected sensing latency.

The latency tests run the node in its own process at real_time_factor 1, where its stamps are
ROS time = wall time, and compare each JointState's arrival (wall clock) with its stamp:

    stamp t (measured) ─── joint_state_latency_s ───► published ─► received here

Each node runs in its own namespace (on the suite's private ROS domain, tests/conftest.py).
"""

import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

ROOT = Path(__file__).resolve().parents[2]


def start_node(namespace: str, log_path: Path, *params: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "ros_nodes.sim_robot_node", "--ros-args", "-r", f"__ns:=/{namespace}"]
    args += [x for p in params for x in ("-p", p)]
    with open(log_path, "w") as log:  # the child has its own copy of the descriptor
        return subprocess.Popen(
            args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1")
        )


def stop_node(proc: subprocess.Popen, timeout_s: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"sim_robot_node did not exit within {timeout_s:g} s of SIGINT") from None


@pytest.fixture
def listener():
    rclpy.init()
    node = rclpy.create_node(f"test_sim_robot_options_{uuid.uuid4().hex[:8]}")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    yield node, executor
    node.destroy_node()
    rclpy.try_shutdown()


def spin_until(executor, predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        executor.spin_once(timeout_sec=0.02)
    return predicate()


@pytest.fixture
def good_randomization(tmp_path) -> Path:
    path = tmp_path / "randomization.yaml"
    path.write_text(
        "friction_scale: [0.8, 1.2]\n"
        "object_mass_scale: [0.5, 2.0]\n"
        "joint_damping_scale: [0.7, 1.3]\n"
        "actuator_gain_scale: [0.9, 1.1]\n"
        "obs_noise_std: 0.001\n"
        "action_latency_steps: 2\n"
    )
    return path


@pytest.mark.ros
@pytest.mark.parametrize("latency_s", [0.0, 0.3])
def test_sensed_messages_arrive_latency_after_their_stamp(listener, tmp_path, good_randomization, latency_s):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    from ros_nodes.common import to_sec

    node, executor = listener
    ns = f"t{uuid.uuid4().hex[:10]}"
    lags: list[float] = []
    stamps: list[float] = []
    diagnostics: dict[str, str] = {}

    def on_joints(msg: JointState) -> None:
        lags.append(time.time() - to_sec(msg.header.stamp))
        stamps.append(to_sec(msg.header.stamp))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{ns}/sim_robot":
                diagnostics.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(JointState, f"/{ns}/joint_states", on_joints, qos_profile_sensor_data)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    params = ["real_time_factor:=1.0", f"joint_state_latency_s:={latency_s}"]
    if latency_s > 0:  # the randomization file is accepted, and the node runs with it
        params.append(f"randomization:={good_randomization}")
    log = tmp_path / "sim_robot.log"
    proc = start_node(ns, log, *params)
    try:
        got = spin_until(executor, lambda: len(lags) >= 150 and "latency_queue" in diagnostics, 40.0)
        assert proc.poll() is None, f"the node exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        assert got, f"{len(lags)} JointStates, diagnostics {diagnostics}:\n{log.read_text()[-3000:]}"
    finally:
        code = stop_node(proc)
    assert code == 0, log.read_text()[-3000:]

    lags = lags[20:]  # past discovery and the first, possibly late, timer callbacks
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "stamps must keep the measurement order"
    median = statistics.median(lags)
    if latency_s > 0:
        assert min(lags) >= latency_s - 0.05, f"a JointState arrived {min(lags):.3f} s after its stamp"
        assert median < latency_s + 0.1, f"median lag {median:.3f} s"
        assert f"randomization {good_randomization}" in log.read_text()
    else:
        assert median < 0.1, f"median lag {median:.3f} s without injected latency"
    assert float(diagnostics["injected_latency_s"]) == latency_s
    # In flight: about latency_s x (joint_states + object_pose + goal_pos at 100 Hz + 2 cameras at 10 Hz).
    queued = int(diagnostics["latency_queue"])
    assert (queued == 0) if latency_s == 0 else (queued > latency_s * 100 * 3 * 0.5), queued


@pytest.mark.ros
@pytest.mark.parametrize(
    ("yaml_text", "param", "named"),
    [
        ("friction_scale: [0.8, 1.2]\nfrobnicate: 3\n", None, "frobnicate"),
        ("friction_scale: [1.2, 0.8]\n", None, "friction_scale"),
        ("object_mass_scale: heavy\n", None, "object_mass_scale"),
        ("- friction_scale\n", None, "expected a mapping"),
        (None, None, "cannot read config file"),
        ("", "joint_state_latency_s:=-0.1", "joint_state_latency_s"),
    ],
    ids=["unknown-key", "bad-range", "bad-type", "not-a-mapping", "missing-file", "negative-latency"],
)
def test_bad_option_fails_configure_naming_file_and_key(tmp_path, yaml_text, param, named):
    path = tmp_path / "randomization.yaml"
    if yaml_text is not None:
        path.write_text(yaml_text or "{}\n")
    log = tmp_path / "sim_robot.log"
    params = [f"randomization:={path}"] + ([param] if param else [])
    proc = start_node(f"t{uuid.uuid4().hex[:10]}", log, *params)
    try:
        code = proc.wait(timeout=30.0)
    finally:
        stop_node(proc)
    text = log.read_text()
    assert code != 0, text[-3000:]
    assert "on_configure failed" in text and named in text, text[-3000:]
    if param is None:
        assert f"{path}: " in text, text[-3000:]  # the message names the file


@pytest.mark.ros
def test_each_reset_draws_new_physics(good_randomization):
    """In process: configure draws the randomization with seed, every ~/reset draws it anew."""
    import numpy as np
    from std_srvs.srv import Trigger

    import sim
    from ros_nodes.sim_robot_node import SimRobotNode

    nominal_env = sim.make_env("push")
    nominal = nominal_env.unwrapped.model.geom_friction[:, 0].copy()
    nominal_env.close()

    rclpy.init(args=["--ros-args", "-p", f"randomization:={good_randomization}", "-p", "seed:=3"])
    node = SimRobotNode()  # autostart: configured and active; never spun here
    try:
        model = node.env.unwrapped.model
        draws = [model.geom_friction[:, 0].copy()]
        for _ in range(2):
            assert node._on_reset(Trigger.Request(), Trigger.Response()).success
            draws.append(model.geom_friction[:, 0].copy())
        scales = [d[nominal > 0] / nominal[nominal > 0] for d in draws]
        for s in scales:  # one factor per draw, for every geom, within [0.8, 1.2]
            assert np.allclose(s, s[0]) and 0.8 <= s[0] <= 1.2
        assert len({round(float(s[0]), 9) for s in scales}) == 3, "each reset must draw new friction"
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
