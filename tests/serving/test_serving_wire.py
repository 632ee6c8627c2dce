"""The wire format: round trips, and every rule checked from the header before allocation."""

import msgpack
import numpy as np
import pytest

from robot_rl import keys
from robot_rl.serving import wire
from robot_rl.serving.wire import ErrorCode, Limits, WireError

LIMITS = Limits()


def header_of(frames):
    return wire.unpack_header(frames[0], LIMITS)


def test_round_trip_keeps_dtype_shape_and_values_without_copying():
    arrays = {
        keys.JOINT_POS: np.arange(12, dtype=np.float32).reshape(2, 6),
        keys.image_key("front"): np.random.default_rng(0).integers(0, 255, (2, 8, 8, 3), dtype=np.uint8),
        "flag": np.array([True, False]),
    }
    frames = wire.encode({"v": 1, "op": "infer", "id": 7}, arrays)
    header = header_of(frames)
    specs = wire.array_specs(header, LIMITS)
    decoded = wire.decode_arrays(specs, [bytes(f) for f in frames[1:]])
    for key, arr in arrays.items():
        assert decoded[key].dtype == arr.dtype and decoded[key].shape == arr.shape
        np.testing.assert_array_equal(decoded[key], arr)
    assert not decoded[keys.JOINT_POS].flags.writeable  # a view of the frame, never a copy


def test_big_endian_input_is_sent_little_endian():
    arr = np.arange(4, dtype=">f8")
    frames = wire.encode({"v": 1}, {"x": arr})
    decoded = wire.decode_arrays(wire.array_specs(header_of(frames), LIMITS), [bytes(frames[1])])
    np.testing.assert_array_equal(decoded["x"], arr)


@pytest.mark.parametrize(
    "dtype", ["object", "O", "|O", "<U8", "S4", "V16", "complex64", "float128", "", 3, None]
)
def test_dtypes_outside_the_whitelist_are_refused(dtype):
    with pytest.raises(WireError) as err:
        wire.array_specs({"arrays": [["x", dtype, [2]]]}, LIMITS)
    assert err.value.code == ErrorCode.BAD_DTYPE


def test_encoding_an_object_array_is_refused():
    with pytest.raises(WireError) as err:
        wire.encode({"v": 1}, {"x": np.array([object(), 1], dtype=object)})
    assert err.value.code == ErrorCode.BAD_DTYPE


@pytest.mark.parametrize(
    "shape, code",
    [
        ([2**40, 2**40], ErrorCode.TOO_LARGE),  # would overflow int64 if multiplied blindly
        ([5000, 5000], ErrorCode.TOO_LARGE),
        ([-1, 3], ErrorCode.BAD_SHAPE),
        ([1.5], ErrorCode.BAD_SHAPE),
        ([True], ErrorCode.BAD_SHAPE),
        ([1] * 7, ErrorCode.BAD_SHAPE),
        ("23", ErrorCode.BAD_SHAPE),
    ],
)
def test_bad_shapes_are_refused_from_the_header(shape, code):
    with pytest.raises(WireError) as err:
        wire.array_specs({"arrays": [["x", "float32", shape]]}, LIMITS)
    assert err.value.code == code


def test_request_total_limit_counts_all_arrays():
    limits = Limits(max_array_bytes=1000, max_request_bytes=1500)
    specs = [["a", "uint8", [1000]], ["b", "uint8", [600]]]
    with pytest.raises(WireError) as err:
        wire.array_specs({"arrays": specs}, limits)
    assert err.value.code == ErrorCode.TOO_LARGE


def test_too_many_arrays_and_duplicate_keys():
    with pytest.raises(WireError) as err:
        wire.array_specs({"arrays": [[f"k{i}", "uint8", [1]] for i in range(40)]}, LIMITS)
    assert err.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(WireError) as err:
        wire.array_specs({"arrays": [["k", "uint8", [1]], ["k", "uint8", [1]]]}, LIMITS)
    assert err.value.code == ErrorCode.MALFORMED


def test_truncated_frames_and_short_messages():
    specs = wire.array_specs({"arrays": [["a", "float32", [3]], ["b", "uint8", [2]]]}, LIMITS)
    with pytest.raises(WireError) as err:
        wire.decode_arrays(specs, [b"\0" * 12])
    assert err.value.code == ErrorCode.TRUNCATED
    with pytest.raises(WireError) as err:
        wire.decode_arrays(specs, [b"\0" * 11, b"\0\0"])
    assert err.value.code == ErrorCode.TRUNCATED


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",
        b"\x92\x01",
        msgpack.packb([1, 2]),
        msgpack.packb({1: 2}),
        b"\x81\xa1v" + b"\xdd" + b"\xff" * 4,
    ],
)
def test_malformed_headers(frame):
    with pytest.raises(WireError) as err:
        wire.unpack_header(frame, LIMITS)
    assert err.value.code == ErrorCode.MALFORMED


def test_oversized_header_is_refused_before_parsing():
    with pytest.raises(WireError) as err:
        wire.unpack_header(b"\x80" + b" " * LIMITS.max_header_bytes, LIMITS)
    assert err.value.code == ErrorCode.TOO_LARGE


def test_msgpack_extension_types_are_refused():
    # ext types are how some msgpack users smuggle objects (msgpack-numpy); the header admits none
    frame = msgpack.packb({"v": 1, "x": msgpack.ExtType(1, b"payload")})
    with pytest.raises(WireError) as err:
        wire.unpack_header(frame, LIMITS)
    assert err.value.code == ErrorCode.MALFORMED


def test_request_checks_version_id_and_op():
    assert wire.check_request({"v": 1, "op": "ping", "id": 3}) == ("ping", 3)
    for header, code in [
        ({"v": 2, "op": "ping", "id": 3}, ErrorCode.UNSUPPORTED_VERSION),
        ({"v": 1, "op": "ping", "id": -1}, ErrorCode.MALFORMED),
        ({"v": 1, "op": "ping", "id": True}, ErrorCode.MALFORMED),
        ({"v": 1, "op": "exec", "id": 3}, ErrorCode.UNKNOWN_OP),
    ]:
        with pytest.raises(WireError) as err:
            wire.check_request(header)
        assert err.value.code == code


def test_fields_are_typed_and_finite():
    assert wire.field({"stamp": 1.5}, "stamp", (int, float)) == 1.5
    for header in ({"stamp": True}, {"stamp": "1"}, {"stamp": float("nan")}, {}):
        with pytest.raises(WireError):
            wire.field(header, "stamp", (int, float))
