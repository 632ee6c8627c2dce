"""CURVE: only listed keys get through, only learner keys may push weights, updates are atomic."""

import numpy as np
import pytest
import torch
import zmq
from serving_helpers import ACTION_HORIZON, secure_client, secure_config, tiny_policy, valid_obs

from robot_rl import keys
from robot_rl.serving import curve, wire
from robot_rl.serving.client import DeadlineExceeded, InferenceClient, ServerError, ZmqTransport
from robot_rl.serving.server import InferenceServer


@pytest.fixture(scope="module")
def secure_server(key_set):
    policy = tiny_policy(seed=1)
    with InferenceServer({"pick": policy}, secure_config(key_set)) as srv:
        srv.test_policy = policy
        yield srv


def test_listed_robot_is_served(secure_server, key_set):
    with secure_client(key_set, secure_server.endpoint, "robot") as c:
        chunk = c.infer("pick", valid_obs(), stamp=5.0)
        assert chunk.actions.shape[0] == ACTION_HORIZON and chunk.start_time == 5.0
        assert c.status()["secure"] is True


def test_unauthenticated_client_gets_nothing(secure_server, key_set):
    # A plaintext client cannot complete the handshake with a CURVE server.
    plain = InferenceClient(ZmqTransport(secure_server.endpoint), timeout_s=0.3)
    with pytest.raises(DeadlineExceeded):
        plain.infer("pick", valid_obs())
    plain.close()
    with secure_client(key_set, secure_server.endpoint, "robot") as c:
        assert c.infer("pick", valid_obs()).version >= 0


def test_wrong_key_client_is_refused(secure_server, key_set):
    with secure_client(key_set, secure_server.endpoint, "stranger", timeout_s=0.3) as c:
        with pytest.raises(DeadlineExceeded):
            c.ping()
    # A client that trusts the wrong server key is refused too (it cannot decrypt the handshake).
    wrong_server = ZmqTransport(
        secure_server.endpoint,
        client_key=curve.load_keypair(key_set / "robot.key_secret"),
        server_public=curve.load_keypair(key_set / "stranger.key", need_secret=False).public,
    )
    with InferenceClient(wrong_server, timeout_s=0.3) as c:
        with pytest.raises(DeadlineExceeded):
            c.ping()
    with secure_client(key_set, secure_server.endpoint, "robot") as c:
        c.ping()


def test_robot_key_may_not_push_weights(secure_server, key_set):
    with secure_client(key_set, secure_server.endpoint, "robot") as c:
        with pytest.raises(ServerError) as err:
            c.push_weights("pick", 99, secure_server.test_policy.state_dict())
        assert err.value.code == "forbidden"
        assert c.status()["policies"]["pick"]["version"] != 99


def _shifted_weights(state: dict, shift: float) -> dict[str, torch.Tensor]:
    """Same network, action normalizer moved so that every action moves by +shift."""
    sd = {k: v.clone() for k, v in state.items()}
    key = f"norm_{keys.ACTION}_offset"
    sd[key] = sd[key] - shift * sd[f"norm_{keys.ACTION}_scale"]
    return sd


def test_hot_update_is_versioned_atomic_and_drops_nothing(key_set):
    policy = tiny_policy(seed=2)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    with InferenceServer({"pick": policy}, secure_config(key_set)) as srv:
        # One learner connection, pipelined: 3 requests, the update, 3 requests. The server reads
        # them in order, so the first three must come from version 0 and the last three from 1.
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        curve.make_client_socket_secure(
            sock,
            curve.load_keypair(key_set / "learner.key_secret"),
            curve.load_keypair(key_set / "server.key", need_secret=False).public,
        )
        sock.connect(srv.endpoint)
        from safetensors.torch import save

        blob = save(_shifted_weights(before, 100.0))
        for rid in (1, 2, 3):
            sock.send_multipart(
                wire.encode({"v": 1, "op": "infer", "id": rid, "policy": "pick", "stamp": 0.0}, valid_obs())
            )
        sock.send_multipart(
            [wire.pack_header({"v": 1, "op": "update", "id": 4, "policy": "pick", "version": 1}), blob]
        )
        for rid in (5, 6, 7):
            sock.send_multipart(
                wire.encode({"v": 1, "op": "infer", "id": rid, "policy": "pick", "stamp": 0.0}, valid_obs())
            )
        replies = {}
        while len(replies) < 7:
            assert sock.poll(10_000)
            frames = sock.recv_multipart()
            h = wire.unpack_header(frames[0], wire.Limits())
            replies[h["id"]] = (h, frames[1:])
        sock.close()
        assert all(replies[r][0]["ok"] for r in replies)
        assert [replies[r][0]["version"] for r in (1, 2, 3, 4, 5, 6, 7)] == [0, 0, 0, 1, 1, 1, 1]
        old = [np.frombuffer(replies[r][1][0], np.float32) for r in (1, 2, 3)]
        new = [np.frombuffer(replies[r][1][0], np.float32) for r in (5, 6, 7)]
        assert max(np.abs(a).max() for a in old) < 20 and min(a.min() for a in new) > 80

        with secure_client(key_set, srv.endpoint, "learner") as learner:
            with pytest.raises(ServerError) as err:  # versions only go up
                learner.push_weights("pick", 1, policy.state_dict())
            assert err.value.code == "stale_version"
            bad = _shifted_weights(before, 0.0)
            bad[next(iter(bad))] = torch.zeros(3)
            with pytest.raises(ServerError) as err:  # a wrong shape changes nothing
                learner.push_weights("pick", 2, bad)
            assert err.value.code == "bad_update"
            with pytest.raises(ServerError) as err:
                learner.push_weights("pick", 2, b"not safetensors")
            assert err.value.code == "bad_update"
            assert learner.status()["policies"]["pick"]["version"] == 1
            shifted = _shifted_weights(before, 100.0)
            for k, v in policy.state_dict().items():  # exactly the pushed weights, nothing else
                assert torch.equal(v, shifted[k] if k.startswith("norm_") else before[k])
            assert learner.push_weights("pick", 7, before) == 7
            chunk = learner.infer("pick", valid_obs())
            assert chunk.version == 7 and np.abs(chunk.actions).max() < 20
