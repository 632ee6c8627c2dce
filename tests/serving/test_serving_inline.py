"""Where a request runs: a lone request to a fast idle policy on the I/O thread, the rest on the policy's.

The rule (BatchingConfig): inline only when the request arrived alone, nothing is queued or
running for its policy, no batch wait is configured and the policy's measured batch-1 time
is at most inline_max_ms. Long policies must never hold up the I/O thread.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import pytest
import torch
from serving_helpers import ACTION_DIM, ACTION_HORIZON, OBS_HORIZON, RawPeer, insecure_config, valid_obs

from robot_rl import keys
from robot_rl.cli import main
from robot_rl.serving import wire
from robot_rl.serving.cli import add_arguments, build_config
from robot_rl.serving.client import InferenceClient, ZmqTransport
from robot_rl.serving.config import BatchingConfig, SecurityConfig
from robot_rl.serving.server import InferenceServer


class ThreadRecordingPolicy:
    """Answers `version_value` everywhere after sleeping `delay_s`; records the thread of every call."""

    def __init__(self, delay_s: float = 0.0):
        self.obs_spec = {keys.JOINT_POS: ((6,), "float32"), keys.GRIPPER_POS: ((1,), "float32")}
        self.obs_horizon, self.action_horizon, self.action_dim = OBS_HORIZON, ACTION_HORIZON, ACTION_DIM
        self.delay_s = delay_s
        self.weight = torch.zeros(1)
        self.threads: list[str] = []

    def predict_action(self, obs):
        self.threads.append(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        batch = obs[keys.JOINT_POS].shape[0]
        return self.weight.expand(batch, ACTION_HORIZON, ACTION_DIM).clone()

    def to(self, device):
        return self

    def state_dict(self):
        return {"weight": self.weight}


def _serve(policy, **batching):
    return InferenceServer({"pick": policy}, insecure_config(batching=BatchingConfig(**batching)))


def test_lone_requests_to_a_fast_policy_run_on_the_io_thread():
    policy = ThreadRecordingPolicy()
    with _serve(policy, inline_max_ms=50.0) as srv:
        with InferenceClient(ZmqTransport(srv.endpoint), timeout_s=5.0) as c:
            for i in range(20):
                assert c.infer("pick", valid_obs(), stamp=float(i)).start_time == float(i)
        served = policy.threads[4:]  # the warm-up calls ran on the policy's thread
        assert srv.workers["pick"].inline_runs == 20
    assert served == ["serving-io"] * 20


def test_inline_is_off_at_zero_and_with_a_batch_wait():
    for batching in ({"inline_max_ms": 0.0}, {"inline_max_ms": 50.0, "budget_ms": 1.0}):
        policy = ThreadRecordingPolicy()
        with _serve(policy, **batching) as srv:
            with InferenceClient(ZmqTransport(srv.endpoint), timeout_s=5.0) as c:
                for _ in range(5):
                    c.infer("pick", valid_obs())
            assert srv.workers["pick"].inline_runs == 0
        assert set(policy.threads) == {"policy-pick"}, batching


def test_a_slow_policy_never_blocks_the_io_thread():
    policy = ThreadRecordingPolicy(delay_s=0.3)
    with _serve(policy, inline_max_ms=1.0) as srv:
        peer = RawPeer(srv.endpoint)
        try:
            t0 = time.perf_counter()
            peer.send(peer.infer_frames(1))
            time.sleep(0.02)  # the request is now running
            peer.send([wire.pack_header({"v": 1, "op": "ping", "id": 2, "t0": 0.0})])
            first, _ = peer.recv()
            ping_s = time.perf_counter() - t0
            second, _ = peer.recv()
        finally:
            peer.close()
        assert (first["id"], second["id"]) == (2, 1)  # the ping overtook the running request
        assert ping_s < 0.2
        assert srv.workers["pick"].inline_runs == 0
    assert set(policy.threads) == {"policy-pick"}


def test_requests_arriving_together_are_batched_not_inlined():
    policy = ThreadRecordingPolicy(delay_s=0.05)
    with _serve(policy, inline_max_ms=100.0) as srv:
        peer = RawPeer(srv.endpoint)
        try:
            for rid in range(8):
                peer.send(peer.infer_frames(rid, obs=valid_obs(rid)))
            replies = [peer.recv()[0] for _ in range(8)]
        finally:
            peer.close()
    assert sorted(r["id"] for r in replies) == list(range(8))
    assert max(r["timings"]["batch_size"] for r in replies) > 1


def test_a_request_after_a_queued_update_waits_for_it():
    # Pipelined on one connection: update (applied on the policy's thread), then a lone request.
    # The request may not run inline on the old weights while the update is still queued.
    policy = ThreadRecordingPolicy()
    cfg = insecure_config(batching=BatchingConfig(inline_max_ms=100.0))
    cfg = type(cfg)(
        bind=cfg.bind,
        security=SecurityConfig(insecure_loopback=True, insecure_updates=True),
        batching=cfg.batching,
    )
    from safetensors.torch import save

    with InferenceServer({"pick": policy}, cfg) as srv:
        peer = RawPeer(srv.endpoint)
        try:
            for version in range(1, 6):
                blob = save({"weight": torch.full((1,), float(version))})
                peer.send(
                    [
                        wire.pack_header(
                            {
                                "v": 1,
                                "op": "update",
                                "id": 100 + version,
                                "policy": "pick",
                                "version": version,
                            }
                        ),
                        blob,
                    ]
                )
                peer.send(peer.infer_frames(version))
                got = {}
                while len(got) < 2:
                    header, frames = peer.recv()
                    got[header["id"]] = (header, frames)
                reply, frames = got[version]
                assert got[100 + version][0]["version"] == version
                assert reply["version"] == version
                assert np.all(np.frombuffer(frames[0], np.float32) == version)
        finally:
            peer.close()


def test_cli_flag_and_config_bounds(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--policy", "a=b", "--insecure-loopback", "--inline-max-ms", "0"])
    assert build_config(args).batching.inline_max_ms == 0.0
    assert (
        build_config(parser.parse_args(["--policy", "a=b", "--insecure-loopback"])).batching.inline_max_ms
        == 1.0
    )
    with pytest.raises(ValueError, match="inline_max_ms"):
        BatchingConfig(inline_max_ms=-1.0)
    assert main(["serve", "--policy", "a=b", "--insecure-loopback", "--inline-max-ms", "500"]) == 2
    assert "inline_max_ms" in capsys.readouterr().err
