"""Load on loopback: 8 concurrent clients x 2,000 requests, no lost or mismatched reply; batching."""

import threading

import numpy as np
from serving_helpers import ACTION_DIM, ACTION_HORIZON, RawPeer, insecure_config, tiny_policy, valid_obs

from robot_rl.serving.client import InferenceClient, ZmqTransport
from robot_rl.serving.config import BatchingConfig
from robot_rl.serving.server import InferenceServer

CLIENTS = 8
REQUESTS = 2_000


def test_eight_clients_two_thousand_requests_each(server):
    results = [None] * CLIENTS
    errors = []

    def run(ci: int) -> None:
        try:
            with InferenceClient(ZmqTransport(server.endpoint), timeout_s=10.0) as client:
                stamps = []
                for i in range(REQUESTS):
                    stamp = ci * 1e6 + i + 0.25  # unique per request; the reply must echo it
                    chunk = client.infer("pick", valid_obs(float(ci)), stamp=stamp)
                    assert chunk.start_time == stamp, (ci, i, chunk.start_time)
                    assert chunk.actions.shape == (ACTION_HORIZON, ACTION_DIM)
                    stamps.append(chunk.start_time)
                results[ci] = (stamps, client.discarded, client.reconnects)
        except BaseException as exc:  # surfaced below with the client's index
            errors.append((ci, repr(exc)))

    threads = [threading.Thread(target=run, args=(ci,)) for ci in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for stamps, discarded, reconnects in results:
        assert len(stamps) == REQUESTS and len(set(stamps)) == REQUESTS
        assert discarded == 0 and reconnects == 0
    st = server.status()["policies"]["pick"]
    assert st["batched_requests"] >= CLIENTS * REQUESTS
    assert st["batches"] < st["batched_requests"]  # concurrent requests were batched together
    assert st["latency_ms"]["p50"] <= st["latency_ms"]["p99"]


def test_batch_waits_at_most_the_budget():
    budget_ms = 40.0
    cfg = insecure_config(batching=BatchingConfig(max_batch=8, budget_ms=budget_ms))
    with InferenceServer({"pick": tiny_policy()}, cfg) as srv:
        peer = RawPeer(srv.endpoint)
        try:
            # One lone request: the batch is not full, so the worker waits, but never past the budget.
            peer.send(peer.infer_frames(1))
            reply, _ = peer.recv()
            assert reply["timings"]["batch_size"] == 1
            assert budget_ms / 1e3 * 0.8 <= reply["timings"]["queue_s"] <= budget_ms / 1e3 + 0.03
            # Eight requests arriving together fill a batch and go at once, without waiting.
            for rid in range(10, 18):
                peer.send(peer.infer_frames(rid, obs=valid_obs(rid)))
            replies = [peer.recv()[0] for _ in range(8)]
            assert sorted(r["id"] for r in replies) == list(range(10, 18))
            assert max(r["timings"]["batch_size"] for r in replies) == 8
            assert max(r["timings"]["queue_s"] for r in replies) < budget_ms / 1e3
        finally:
            peer.close()


def test_two_policies_addressed_by_name():
    a, b = tiny_policy(seed=3), tiny_policy(seed=4)
    with InferenceServer({"left": a, "right": b}, insecure_config()) as srv:
        with InferenceClient(ZmqTransport(srv.endpoint), timeout_s=5.0) as c:
            ca, cb = c.infer("left", valid_obs()), c.infer("right", valid_obs())
            assert (ca.policy, cb.policy) == ("left", "right")
            assert not np.allclose(ca.actions, cb.actions)
            assert set(c.status()["policies"]) == {"left", "right"}
