"""Online RL through the ROS graph, sim-as-hardware: sim node, controller, policy node in actor
mode, inference server serving the learner's explorer, `robot-rl learn` as its own process.

The robot's episodes reach the learner and its log store; the learner's weights reach the
server by hot update while the arm moves; a person's teleop during a run is recorded as an
intervention in the store and lands in the learner's intervention buffer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from graph_helpers import HOME, ROOT, BringupProcess, free_port, spin_until, start_server, stop_server

from bench.online_ros import near_home_demos  # the bench's offline data: actions within 0.05 rad of home
from robot_rl import keys
from ros_nodes.graph import TELEOP_TWIST_TOPIC

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def start_rlpd_learner(tmp_path: Path, robot_steps: int, *extra: str):
    """`robot-rl learn --algo rlpd` on near-home demos, in its own process, once it has written the
    explorer the server is to serve: (process, its log file, run dir, server and learner endpoints)."""
    demos = near_home_demos(tmp_path / "demos.zarr", episodes=4, steps=30)
    run = tmp_path / "run"
    server_ep, learner_ep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    log = open(tmp_path / "learner.log", "w")  # noqa: SIM115 - closed by the test
    learner = subprocess.Popen(
        [sys.executable, "-m", "robot_rl.cli", "learn", "--algo", "rlpd", "--data", str(demos)]
        + ["--out", str(run), "--bind", learner_ep, "--server", server_ep, "--policy", "push"]
        + ["--insecure-loopback", "--env-steps", str(robot_steps), "--utd", "1", "--no-progress"]
        + ["--checkpoint-every", "1000", "--max-deviation", "0.05", *extra],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"),
    )
    deadline = time.monotonic() + 120
    while not (run / "explorer" / "explorer.yaml").exists():
        assert learner.poll() is None and time.monotonic() < deadline, (tmp_path / "learner.log").read_text()
        time.sleep(0.2)
    return learner, log, run, server_ep, learner_ep


def test_robot_episodes_train_the_learner_which_hot_updates_the_server(tmp_path):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor

    from robot_rl.data.store import EpisodeStore
    from robot_rl.serving.client import InferenceClient, ZmqTransport
    from robot_rl.training.checkpoint import load_checkpoint

    robot_steps, episode_steps = 100, 20
    learner, learner_log, run, server_ep, learner_ep = start_rlpd_learner(
        tmp_path, robot_steps, "--batch-size", "32", "--hidden", "32,32", "--weights-every", "10"
    )
    read = lambda name: (tmp_path / name).read_text()  # noqa: E731
    server = start_server(
        {"push": run / "explorer"}, server_ep, tmp_path / "server.log", extra=("--insecure-updates",)
    )
    graph = BringupProcess(
        ["--policy", "push", "--server", server_ep, "--task", "push", "--learner", learner_ep]
        + ["--episode-steps", str(episode_steps), "--teleop", "twist"],
        tmp_path / "bringup.log",
    )
    rclpy.init()
    node = rclpy.create_node("e2e_online_operator")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    policy_diag: dict[str, str] = {}
    controller_diag: dict[str, str] = {}

    def on_diag(msg):
        for status in msg.status:
            target = {"/policy": policy_diag, "/controller": controller_diag}.get(status.name)
            if target is not None:
                target.update({v.key: v.value for v in status.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    twist = node.create_publisher(Twist, TELEOP_TWIST_TOPIC, 10)
    client = InferenceClient(ZmqTransport(server_ep), timeout_s=5.0)
    versions = []
    try:
        # The second episode is under way: a person takes over for about a second.
        started = spin_until(executor, lambda: int(policy_diag.get("episodes", 0)) >= 1, 300.0)
        assert started, read("learner.log")[-2000:] + graph.log()[-3000:]
        versions.append(client.status()["policies"]["push"]["version"])
        spin_until(executor, lambda: False, 0.5)
        for _ in range(20):
            twist.publish(Twist())  # a person holding the arm still: still an intervention
            twist.publish(_nudge())
            spin_until(executor, lambda: False, 0.05)
        assert spin_until(executor, lambda: learner.poll() is not None, 300.0), read("learner.log")[-3000:]
        versions.append(client.status()["policies"]["push"]["version"])
    finally:
        client.close()
        node.destroy_node()
        rclpy.shutdown()
        graph_code = graph.stop()
        server_code = stop_server(server, tmp_path / "server.log")
        if learner.poll() is None:
            learner.kill()
        learner_log.close()
    log = read("learner.log")
    assert learner.returncode == 0, log
    # Weights landed in the server while the robot ran: versions rose between the two looks,
    # and the server logged each swap.
    assert versions[1] > versions[0] >= 1, (versions, log[-2000:])
    assert read("server.log").count("weights") >= 3
    store = EpisodeStore.open(run / "episodes.zarr")
    assert len(store) >= robot_steps // episode_steps - 1, log
    intervened = store.array(keys.INTERVENTION)[:]
    assert intervened.any(), "the person's steps are not marked in the store"
    arm = store.array(keys.ACTION)[:][~intervened][:, :6]
    assert np.abs(arm - HOME).max() <= 0.05 + 0.05 + 1e-5, "exploration left the data's bounds"
    latest = (run / "checkpoints" / "latest").read_text().strip()
    tensors, _ = load_checkpoint(run / "checkpoints" / latest)
    assert len(tensors[f"replay.interventions.{keys.ACTION}"]) > 0, "no intervention reached the learner"
    print(
        f"\nserver versions {versions}; {len(store)} episodes, {int(intervened.sum())} intervention steps; "
        f"controller missed deadlines {controller_diag.get('missed_deadlines')}; policy node {policy_diag}"
    )
    assert graph_code == 0, graph.log()
    assert server_code in (0, 130), read("server.log")


def test_a_served_reward_classifier_rewards_and_ends_the_robots_episodes(tmp_path):
    """reward "classifier": the policy node asks the classifier served beside the explorer about
    every new frame of its camera (which the sim node renders only because someone now listens).
    This one is sure of success whatever it sees, so every episode is one step long, rewarded,
    terminal: the sim's own success (the cube on its target) never comes within one step."""
    import torch

    from robot_rl.data.store import EpisodeStore
    from robot_rl.models.reward_classifier import RewardClassifier, RewardClassifierConfig

    classifier = RewardClassifier(RewardClassifierConfig(camera="front", image_size=96, channels=(8,)))
    with torch.no_grad():
        classifier.head.weight.zero_()
        classifier.head.bias.fill_(8.0)  # P(success) = 0.9997 for any frame
    clf_dir = classifier.save(tmp_path / "reward_clf")
    robot_steps = 6
    learner, learner_log, run, server_ep, learner_ep = start_rlpd_learner(
        tmp_path, robot_steps, "--batch-size", "16", "--hidden", "16,16", "--weights-every", "100"
    )
    read = lambda name: (tmp_path / name).read_text()  # noqa: E731
    server = start_server(
        {"push": run / "explorer", "success": clf_dir},
        server_ep,
        tmp_path / "server.log",
        extra=("--insecure-updates",),
    )
    graph = BringupProcess(
        ["--policy", "push", "--server", server_ep, "--task", "push", "--learner", learner_ep]
        + ["--reward", "classifier", "--reward-classifier", "success", "--episode-steps", "30"],
        tmp_path / "bringup.log",
    )
    try:
        finished = False
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not finished:
            finished = learner.poll() is not None
            time.sleep(0.5)
        assert finished, read("learner.log")[-2000:] + graph.log()[-3000:]
    finally:
        graph_code = graph.stop()
        server_code = stop_server(server, tmp_path / "server.log")
        if learner.poll() is None:
            learner.kill()
        learner_log.close()
    assert learner.returncode == 0, read("learner.log")
    store = EpisodeStore.open(run / "episodes.zarr")
    assert len(store) >= robot_steps, graph.log()[-3000:]
    for i in range(len(store)):
        ep = store.episode(i, (keys.REWARD, keys.TERMINAL))
        assert len(ep[keys.REWARD]) == 1, (
            f"episode {i}: {len(ep[keys.REWARD])} steps, not ended by the classifier"
        )
        assert ep[keys.REWARD][-1] == 1.0 and bool(ep[keys.TERMINAL][-1])
    assert graph_code == 0, graph.log()
    assert server_code in (0, 130), read("server.log")


def _nudge():
    from geometry_msgs.msg import Twist

    msg = Twist()
    msg.linear.z = 0.02
    return msg
