"""Fixtures: a loopback server with a tiny real DiffusionPolicy, clients, CURVE key sets."""

from __future__ import annotations

import pytest
import torch
from serving_helpers import insecure_config, tiny_policy

from robot_rl.serving import curve
from robot_rl.serving.client import InferenceClient, ZmqTransport
from robot_rl.serving.config import BatchingConfig
from robot_rl.serving.server import InferenceServer


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # The suite shares 2 cores; tiny models run fastest single-threaded anyway.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def server():
    """An insecure loopback server with policy `pick` (batching up to 16, no waiting)."""
    with InferenceServer(
        {"pick": tiny_policy()}, insecure_config(batching=BatchingConfig(max_batch=16))
    ) as srv:
        yield srv


@pytest.fixture
def client(server):
    c = InferenceClient(ZmqTransport(server.endpoint), timeout_s=5.0)
    yield c
    c.close()


@pytest.fixture(scope="module")
def key_set(tmp_path_factory):
    """server, robot, learner and stranger key pairs plus the two allowed-keys files."""
    d = tmp_path_factory.mktemp("keys")
    for name in ("server", "robot", "learner", "stranger"):
        curve.generate(d, name)
    (d / "clients.txt").write_text(
        f"# robots\n{curve.load_keypair(d / 'robot.key', False).public.decode()}  # robot\n"
    )
    (d / "learners.txt").write_text("learner.key\n")
    return d
