"""Fault tests: every bad message gets a typed error or is dropped, and the server carries on."""

import msgpack
import numpy as np
import pytest
from serving_helpers import ACTION_DIM, ACTION_HORIZON, OBS_HORIZON, RawPeer, valid_obs

from robot_rl import keys
from robot_rl.serving import wire
from robot_rl.serving.wire import ErrorCode

CODES = {c.value for c in ErrorCode}


@pytest.fixture
def peer(server):
    p = RawPeer(server.endpoint)
    yield p
    p.close()


def header(**kw):
    return {"v": 1, "op": "infer", "id": 11, "policy": "pick", "stamp": 1.0, **kw}


def arrays_decl(obs):
    return [[k, v.dtype.name, list(v.shape)] for k, v in obs.items()]


def error_of(peer, frames, rid=11):
    peer.send(frames)
    got = peer.recv()
    assert got is not None, "no error reply"
    reply, rest = got
    assert reply["ok"] is False and rest == []
    assert reply["id"] == rid
    assert reply["error"]["code"] in CODES
    return reply["error"]["code"]


def test_valid_request_returns_a_timestamped_versioned_chunk(peer):
    peer.send(peer.infer_frames(5, stamp=123.25))
    reply, frames = peer.recv()
    assert reply["ok"] and reply["id"] == 5 and reply["version"] == 0 and reply["policy"] == "pick"
    assert reply["start_time"] == 123.25  # chunk step 0 applies at the newest observation's stamp
    assert reply["server_send"] >= reply["server_recv"]
    assert set(reply["timings"]) == {"queue_s", "infer_s", "batch_size"}
    action = np.frombuffer(frames[0], np.float32).reshape(reply["arrays"][0][2])
    assert action.shape == (ACTION_HORIZON, ACTION_DIM) and np.isfinite(action).all()


@pytest.mark.parametrize(
    "frames",
    [
        [b""],
        [b"\xff\xfe garbage"],
        [msgpack.packb([1, 2, 3])],
        [msgpack.packb("infer")],
        [msgpack.packb({"v": 1, "op": "infer"})],  # no id
    ],
)
def test_malformed_frames_get_malformed_error_with_null_id(peer, frames):
    assert error_of(peer, frames, rid=None) == ErrorCode.MALFORMED.value
    peer.assert_serves(1)


@pytest.mark.parametrize("dtype", ["object", "O", "<U4", "S8", "V4", "complex128", "datetime64[s]"])
def test_unknown_dtypes_are_refused(peer, dtype):
    obs = valid_obs()
    decl = arrays_decl(obs)
    decl[0][1] = dtype
    frames = [
        msgpack.packb(header(arrays=decl)),
        obs[decl[0][0]].tobytes(),
        *[v.tobytes() for v in list(obs.values())[1:]],
    ]
    assert error_of(peer, frames) == ErrorCode.BAD_DTYPE.value
    peer.assert_serves(2)


def test_a_whitelisted_dtype_the_policy_does_not_take_is_refused(peer):
    obs = valid_obs()
    obs[keys.JOINT_POS] = obs[keys.JOINT_POS].astype(np.float64)
    assert error_of(peer, peer.infer_frames(11, obs=obs)) == ErrorCode.BAD_DTYPE.value
    peer.assert_serves(3)


@pytest.mark.parametrize(
    "shape, code",
    [
        ([OBS_HORIZON, 6000, 6000], ErrorCode.TOO_LARGE),
        ([2**62, 2**62], ErrorCode.TOO_LARGE),
        ([OBS_HORIZON, 7], ErrorCode.BAD_SHAPE),  # allowed size, wrong for the policy
        ([OBS_HORIZON + 1, 6], ErrorCode.BAD_SHAPE),
        ([-2, 6], ErrorCode.BAD_SHAPE),
    ],
)
def test_oversized_and_wrong_shapes_are_refused_before_allocation(peer, shape, code):
    obs = valid_obs()
    decl = arrays_decl(obs)
    decl[0][2] = shape
    # The frames stay small: the server must refuse from the header alone.
    frames = [msgpack.packb(header(arrays=decl)), b"\0" * 48, b"\0" * 8]
    assert error_of(peer, frames) == code.value
    peer.assert_serves(4)


def test_wrong_keys_are_named(peer):
    obs = valid_obs()
    obs["joint_position"] = obs.pop(keys.JOINT_POS)
    peer.send(peer.infer_frames(11, obs=obs))
    reply, _ = peer.recv()
    assert reply["error"]["code"] == ErrorCode.WRONG_KEYS.value
    assert keys.JOINT_POS in reply["error"]["message"] and "joint_position" in reply["error"]["message"]
    missing = valid_obs()
    del missing[keys.GRIPPER_POS]
    assert error_of(peer, peer.infer_frames(11, obs=missing)) == ErrorCode.WRONG_KEYS.value
    peer.assert_serves(5)


def test_truncated_multipart_messages(peer):
    frames = peer.infer_frames(11)
    assert error_of(peer, frames[:-1]) == ErrorCode.TRUNCATED.value  # a frame missing
    assert (
        error_of(peer, [frames[0], frames[1][:-3], frames[2]]) == ErrorCode.TRUNCATED.value
    )  # a short frame
    assert error_of(peer, [*frames, b"extra"]) == ErrorCode.TRUNCATED.value
    assert error_of(peer, frames[:1]) == ErrorCode.TRUNCATED.value  # header only
    peer.assert_serves(6)


def test_unknown_policy_op_and_version(peer):
    assert error_of(peer, peer.infer_frames(11, policy="place")) == ErrorCode.UNKNOWN_POLICY.value
    assert error_of(peer, [msgpack.packb({"v": 1, "op": "shell", "id": 11})]) == ErrorCode.UNKNOWN_OP.value
    assert (
        error_of(peer, [msgpack.packb({"v": 9, "op": "ping", "id": 11})])
        == ErrorCode.UNSUPPORTED_VERSION.value
    )
    assert error_of(peer, [msgpack.packb(header(stamp="now"))]) == ErrorCode.MALFORMED.value
    peer.assert_serves(7)


def test_insecure_server_refuses_weight_updates(peer):
    frames = [msgpack.packb({"v": 1, "op": "update", "id": 11, "policy": "pick", "version": 5}), b"weights"]
    assert error_of(peer, frames) == ErrorCode.FORBIDDEN.value
    peer.assert_serves(8)


def test_client_vanishing_mid_request(server):
    for i in range(20):
        gone = RawPeer(server.endpoint)
        gone.send(gone.infer_frames(100 + i))
        gone.close()  # before the reply: the server's reply has nowhere to go and is dropped
    peer = RawPeer(server.endpoint)
    try:
        peer.assert_serves(9)
    finally:
        peer.close()


def _fuzz_messages(n: int, seed: int = 0):
    """Mutations of a valid request: random bytes, wrong types, bit flips, missing or extra frames."""
    rng = np.random.default_rng(seed)
    obs = valid_obs()
    base_header = header(arrays=arrays_decl(obs))
    base = [msgpack.packb(base_header)] + [v.tobytes() for v in obs.values()]
    junk_values = [
        None,
        True,
        -1,
        2**63,
        1.5,
        float("nan"),
        "x" * 40,
        b"\x00\x01",
        [],
        {},
        [1, [2]],
        {"a": 1},
    ]
    dtypes = ["float32", "object", "float64", "uint8", "<f4", "bogus", 7]
    for i in range(n):
        kind = i % 8
        frames = list(base)
        if kind == 0:  # random bytes for a header
            frames[0] = rng.bytes(int(rng.integers(0, 64)))
        elif kind == 1:  # bit flips in the packed header
            h = bytearray(frames[0])
            for _ in range(int(rng.integers(1, 6))):
                h[int(rng.integers(len(h)))] ^= 1 << int(rng.integers(8))
            frames[0] = bytes(h)
        elif kind == 2:  # a field replaced by a junk value
            h = dict(base_header)
            h[list(h)[int(rng.integers(len(h)))]] = junk_values[int(rng.integers(len(junk_values)))]
            frames[0] = msgpack.packb(h)
        elif kind == 3:  # mangled array declaration
            h = dict(base_header)
            decl = [list(d) for d in base_header["arrays"]]
            j = int(rng.integers(len(decl)))
            decl[j][1] = dtypes[int(rng.integers(len(dtypes)))]
            decl[j][2] = [int(x) for x in rng.integers(-3, 2**31, size=int(rng.integers(0, 8)))]
            h["arrays"] = decl
            frames[0] = msgpack.packb(h)
        elif kind == 4:  # frames dropped or added
            frames = (
                frames[: int(rng.integers(1, len(frames)))] if rng.random() < 0.5 else frames + [rng.bytes(9)]
            )
        elif kind == 5:  # array frames of random length
            frames[1 + int(rng.integers(len(obs)))] = rng.bytes(int(rng.integers(0, 100)))
        elif kind == 6:  # random ops and ids with a valid-looking body
            h = dict(base_header, op=["ping", "status", "update", "infer", "x"][int(rng.integers(5))])
            h["id"] = int(rng.integers(0, 2**62))
            frames[0] = msgpack.packb(h)
        else:  # valid request with random (but finite) values: must be served
            vals = {k: rng.normal(size=v.shape).astype(v.dtype) for k, v in obs.items()}
            frames = [msgpack.packb(dict(base_header, stamp=float(rng.normal())))] + [
                v.tobytes() for v in vals.values()
            ]
        yield frames


def test_ten_thousand_fuzzed_messages(server):
    """Each fuzzed message is followed by a valid request on the same connection (FIFO at the
    server), sent in windows of 50 pairs; every valid request must be answered."""
    peer = RawPeer(server.endpoint)
    try:
        seen_codes = set()
        valid_ids = set()
        window = 50
        messages = list(_fuzz_messages(10_000))
        for start in range(0, len(messages), window):
            expected = set()
            for i in range(start, min(start + window, len(messages))):
                peer.send(messages[i])
                peer.send(peer.infer_frames(10**6 + i))
                expected.add(10**6 + i)
            while expected:
                got = peer.recv(timeout_s=10.0)
                assert got is not None, f"valid requests {sorted(expected)[:5]} got no reply"
                reply, frames = got
                assert isinstance(reply, dict) and reply["v"] == wire.PROTOCOL_VERSION
                if reply.get("id") in expected:
                    assert reply["ok"] and len(frames) == 1, reply
                    expected.discard(reply["id"])
                    valid_ids.add(reply["id"])
                elif reply["ok"] is False:  # the fuzzed message's typed error
                    assert reply["error"]["code"] in CODES
                    seen_codes.add(reply["error"]["code"])
        assert len(valid_ids) == 10_000
        assert {"malformed", "bad_dtype", "truncated", "bad_shape", "too_large"} <= seen_codes
    finally:
        peer.close()
