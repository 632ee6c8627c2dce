"""Client behaviour under faults (a faulty Transport around the real one), status and metrics."""

import time
import urllib.error
import urllib.request

import pytest
from serving_helpers import insecure_config, tiny_policy, valid_obs

from robot_rl.serving.client import DeadlineExceeded, InferenceClient, ServerError, ZmqTransport
from robot_rl.serving.server import InferenceServer


class FaultyTransport:
    """Wraps a real transport; the test arms one fault at a time."""

    def __init__(self, inner):
        self.inner = inner
        self.drop_replies = 0  # swallow the next n replies
        self.delay_s = 0.0  # hold replies back this long
        self.duplicate = False  # deliver every reply twice
        self.corrupt_next = False  # replace the next reply with garbage
        self.reconnects = []
        self._dup = None

    def send(self, frames):
        self.inner.send(frames)

    def recv(self, timeout_s):
        if self._dup is not None:
            msg, self._dup = self._dup, None
            return msg
        if self.delay_s:
            time.sleep(min(self.delay_s, timeout_s))
            if self.delay_s > timeout_s:
                return None
        msg = self.inner.recv(timeout_s)
        if msg is None:
            return None
        if self.drop_replies:
            self.drop_replies -= 1
            return None
        if self.corrupt_next:
            self.corrupt_next = False
            self._dup = msg  # the real reply follows the garbage
            return [b"\xc1garbage"]
        if self.duplicate:
            self._dup = list(msg)
        return msg

    def reconnect(self):
        self.reconnects.append(time.monotonic())
        self.inner.reconnect()

    def close(self):
        self.inner.close()


@pytest.fixture
def faulty(server):
    t = FaultyTransport(ZmqTransport(server.endpoint))
    c = InferenceClient(t, timeout_s=0.5, backoff_initial_s=0.2, backoff_max_s=0.8)
    yield t, c
    c.close()


def test_late_replies_are_discarded_by_request_id(server):
    # A real late reply: the server is slow (batch budget), the client gives up, then asks again.
    from robot_rl.serving.config import BatchingConfig

    cfg = insecure_config(batching=BatchingConfig(max_batch=4, budget_ms=150.0))
    with InferenceServer({"pick": tiny_policy()}, cfg) as slow:
        # backoff_initial_s large: the first failure reconnects, so keep the socket by failing
        # once beforehand and staying inside the backoff window
        t = FaultyTransport(ZmqTransport(slow.endpoint))
        c = InferenceClient(t, timeout_s=0.05, backoff_initial_s=60.0)
        c._next_reconnect = time.monotonic() + 60  # stay on this socket so the late reply reaches it
        with pytest.raises(DeadlineExceeded):
            c.infer("pick", valid_obs(), stamp=1.0)
        time.sleep(0.3)  # the late reply to stamp 1.0 is now waiting in the socket
        chunk = c.infer("pick", valid_obs(), stamp=2.0, timeout_s=2.0)
        assert chunk.start_time == 2.0
        assert c.discarded == 1
        c.close()


def test_duplicates_and_garbage_are_discarded(faulty):
    t, c = faulty
    t.duplicate = True
    first = c.infer("pick", valid_obs(), stamp=1.0)
    t.duplicate = False
    second = c.infer("pick", valid_obs(), stamp=2.0)
    assert (first.start_time, second.start_time) == (1.0, 2.0)
    assert c.discarded == 1
    t.corrupt_next = True
    assert c.infer("pick", valid_obs(), stamp=3.0).start_time == 3.0
    assert c.discarded == 2


def test_lost_replies_raise_and_reconnect_with_backoff(faulty):
    t, c = faulty
    t.drop_replies = 4
    c.timeout_s = 0.05
    for _ in range(4):
        with pytest.raises(DeadlineExceeded):
            c.infer("pick", valid_obs())
    assert len(t.reconnects) == 1  # all four failures fell inside the first 0.2 s backoff window
    time.sleep(0.25)
    t.drop_replies = 1
    with pytest.raises(DeadlineExceeded):
        c.infer("pick", valid_obs())
    assert len(t.reconnects) == 2
    t.drop_replies = 1
    with pytest.raises(DeadlineExceeded):
        c.infer("pick", valid_obs())
    assert len(t.reconnects) == 2  # the window doubled to 0.4 s
    c.timeout_s = 2.0
    t.drop_replies = 0  # a reply later than 50 ms (a loaded machine) left the last drop armed
    assert c.infer("pick", valid_obs(), stamp=9.0).start_time == 9.0  # the new connection works
    assert c._backoff == c._backoff_initial  # success resets the backoff


def test_server_errors_are_typed(client):
    with pytest.raises(ServerError) as err:
        client.infer("nope", valid_obs())
    assert err.value.code == "unknown_policy"


def test_clock_sync_and_robot_clock_server_times(server):
    offset = 1000.0  # a robot clock far from the server's
    c = InferenceClient(ZmqTransport(server.endpoint), timeout_s=5.0, clock=lambda: time.monotonic() - offset)
    est = c.sync_clock(8)
    assert abs(est.offset - offset) <= est.uncertainty + 1e-3
    before = c.clock()
    chunk = c.infer("pick", valid_obs(), stamp=before)
    after = c.clock()
    assert before - 1e-3 <= chunk.server_recv <= chunk.server_send <= after + 1e-3
    c.close()


def test_expired_deadline_is_dropped_before_inference(server):
    c = InferenceClient(ZmqTransport(server.endpoint), timeout_s=5.0)
    c.sync_clock(4)
    c.clock_offset._samples[-1] = type(c.clock_offset.best())(offset=c.clock_offset.offset - 30.0, rtt=0.0)
    with pytest.raises(ServerError) as err:  # the server thinks the robot's deadline is 30 s gone
        c.infer("pick", valid_obs())
    assert err.value.code == "deadline_exceeded"
    c.close()


def test_status_and_prometheus_metrics():
    with InferenceServer({"pick": tiny_policy()}, insecure_config()) as srv:
        with InferenceClient(ZmqTransport(srv.endpoint), timeout_s=5.0) as c:
            for _ in range(20):
                c.infer("pick", valid_obs())
            with pytest.raises(ServerError):
                c.infer("pick", {})
            st = c.status()
        p = st["policies"]["pick"]
        assert p["version"] == 0 and p["queue_depth"] == 0 and p["action_horizon"] == 4
        assert set(p["latency_ms"]) == {"p50", "p90", "p99"} and p["latency_ms"]["p50"] > 0
        assert st["errors"] == {"wrong_keys": 1}
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with InferenceServer({"pick": tiny_policy()}, insecure_config(metrics_port=port)) as srv:
        with InferenceClient(ZmqTransport(srv.endpoint), timeout_s=5.0) as c:
            for _ in range(5):
                c.infer("pick", valid_obs())
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'robot_rl_serving_requests_total{policy="pick",outcome="ok"} 5' in text
        assert 'robot_rl_serving_model_version{policy="pick"} 0' in text
        assert 'robot_rl_serving_latency_seconds{policy="pick",quantile="0.99"}' in text
        assert "# TYPE robot_rl_serving_queue_depth gauge" in text
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert err.value.code == 404
