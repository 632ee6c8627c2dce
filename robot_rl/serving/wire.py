"""The inference wire format: a msgpack header frame followed by raw array frames.

One request or reply is one ZeroMQ multipart message:

    frame 0   header   msgpack map, at most `Limits.max_header_bytes`
    frame 1.. arrays   raw C-order bytes, one frame per entry of header["arrays"]

Header fields (request):

    v        int    protocol version (PROTOCOL_VERSION)
    op       str    "infer" | "ping" | "status" | "update"
    id       int    request id chosen by the client (0 <= id < 2**63); echoed in the reply
    policy   str    policy name (infer, update)
    stamp    float  infer: robot-clock time (s) of the latest observation step
    deadline float  optional, robot-clock time after which the reply is useless
    offset   float  optional, the client's estimate of server_clock - robot_clock (s)
    t0       float  ping: robot-clock send time
    version  int    update: the new model version (must exceed the current one)
    arrays   list   [[key, dtype, [dim, ...]], ...] describing frames 1..n

Reply headers carry `v`, `id`, `ok`, and either `error: {code, message}` or the op's
fields (see server.py). Every check here runs on the header alone, before any array is
allocated: a dtype outside DTYPES (object arrays included), a shape with too many or
negative dimensions, an array or a request above the byte limits are refused with a
WireError carrying a typed ErrorCode. Array frames are then viewed in place
(np.frombuffer), never copied and never unpickled.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack
import numpy as np
import zmq

PROTOCOL_VERSION = 1

OPS = ("infer", "ping", "status", "update")

# The only dtypes that cross the wire. Little-endian, fixed size; no object, no strings.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "int32",
        "int64",
        "float16",
        "float32",
        "float64",
    )
}


class ErrorCode(str, enum.Enum):
    """Typed errors a server returns; the client raises ServerError carrying one."""

    MALFORMED = "malformed"  # header is not a msgpack map of the documented fields
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_OP = "unknown_op"
    BAD_DTYPE = "bad_dtype"  # dtype outside the whitelist
    BAD_SHAPE = "bad_shape"  # negative/too many dimensions, or not the policy's shape
    TOO_LARGE = "too_large"  # an array or the whole request exceeds the byte limits
    TRUNCATED = "truncated"  # frame count or frame length differs from the header
    WRONG_KEYS = "wrong_keys"  # observation keys differ from the policy's obs_spec
    UNKNOWN_POLICY = "unknown_policy"
    FORBIDDEN = "forbidden"  # e.g. a weight update from a key without the learner role
    STALE_VERSION = "stale_version"  # update version not above the current one
    BAD_UPDATE = "bad_update"  # weights that do not match the policy's parameters
    OVERLOADED = "overloaded"  # the policy's queue is full
    DEADLINE_EXCEEDED = "deadline_exceeded"  # dropped before inference: already too late
    INTERNAL = "internal"  # the policy raised; the server carries on


class WireError(ValueError):
    """A message that breaks the wire rules; `code` says which rule."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Size limits, all checked from the header before any array is allocated."""

    max_header_bytes: int = 16 * 1024
    max_arrays: int = 32
    max_ndim: int = 6
    max_array_bytes: int = 16 * 1024 * 1024
    max_request_bytes: int = 32 * 1024 * 1024
    max_update_bytes: int = 512 * 1024 * 1024  # one safetensors frame of weights

    def __post_init__(self):
        for name in ("max_header_bytes", "max_arrays", "max_ndim", "max_array_bytes", "max_request_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_array_bytes > self.max_request_bytes:
            raise ValueError("max_array_bytes cannot exceed max_request_bytes")

    @property
    def max_frame_bytes(self) -> int:
        """The cap handed to ZeroMQ (ZMQ_MAXMSGSIZE): bigger frames drop the connection."""
        return max(self.max_request_bytes, self.max_update_bytes, self.max_header_bytes)


class ArraySpec(NamedTuple):  # a tuple: built once per array per request, so it must be cheap
    key: str
    dtype: np.dtype
    shape: tuple[int, ...]
    nbytes: int


# ---------------------------------------------------------------------------------------
# Encoding


def pack_header(header: Mapping[str, Any]) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


_NAMES: dict[np.dtype, str] = {dt: name for name, dt in DTYPES.items()}  # '<f4' and '=f4' hash alike


def encode(header: dict[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> list[Any]:
    """Header plus arrays -> frames. C-contiguous little-endian arrays are passed as buffers, uncopied."""
    frames: list[Any] = []
    specs = []
    for key, arr in (arrays or {}).items():
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        name = _NAMES.get(arr.dtype)
        if name is None:
            name = arr.dtype.name
            if name not in DTYPES:
                raise WireError(
                    ErrorCode.BAD_DTYPE, f"array {key!r} has dtype {arr.dtype}, not one of {sorted(DTYPES)}"
                )
            arr = arr.astype(DTYPES[name])  # big-endian input: the wire is little-endian
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        specs.append([key, name, arr.shape])
        frames.append(arr.data if arr.size else b"")
    if specs:
        header = {**header, "arrays": specs}
    return [pack_header(header), *frames]


# ---------------------------------------------------------------------------------------
# Decoding: every check before allocation.


def unpack_header(frame: bytes | memoryview, limits: Limits) -> dict[str, Any]:
    if len(frame) > limits.max_header_bytes:
        raise WireError(ErrorCode.TOO_LARGE, f"header is {len(frame)} bytes, limit {limits.max_header_bytes}")
    try:
        header = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            max_str_len=limits.max_header_bytes,
            max_bin_len=limits.max_header_bytes,
            max_array_len=max(limits.max_arrays, limits.max_ndim, 64),
            max_map_len=64,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises many types (ExtraData, ValueError, ...): all malformed
        raise WireError(ErrorCode.MALFORMED, f"header is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise WireError(ErrorCode.MALFORMED, f"header must be a map, got {type(header).__name__}")
    return header


def request_id(header: Mapping[str, Any]) -> int | None:
    """The header's id when it is a valid one, else None (the error reply then has id None)."""
    rid = header.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < 2**63:
        return rid
    return None


def check_request(header: Mapping[str, Any]) -> tuple[str, int]:
    """Version, op and id of a request header; WireError when any is wrong."""
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise WireError(
            ErrorCode.UNSUPPORTED_VERSION, f"protocol version {version!r}, server speaks {PROTOCOL_VERSION}"
        )
    rid = request_id(header)
    if rid is None:
        raise WireError(ErrorCode.MALFORMED, f"id must be an integer in [0, 2**63), got {header.get('id')!r}")
    op = header.get("op")
    if op not in OPS:
        raise WireError(ErrorCode.UNKNOWN_OP, f"op {op!r} is not one of {list(OPS)}")
    return op, rid


def field(header: Mapping[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    """A typed header field; bools are never accepted as numbers."""
    if name not in header:
        if required:
            raise WireError(ErrorCode.MALFORMED, f"header lacks field {name!r}")
        return None
    value = header[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise WireError(ErrorCode.MALFORMED, f"field {name!r} must be {kind}, got a bool")
    if not isinstance(value, kinds):
        raise WireError(ErrorCode.MALFORMED, f"field {name!r} must be {kind}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise WireError(ErrorCode.MALFORMED, f"field {name!r} must be finite")
    return value


def array_specs(header: Mapping[str, Any], limits: Limits) -> list[ArraySpec]:
    """The declared arrays, checked against the dtype whitelist and the limits."""
    raw = header.get("arrays", [])
    if type(raw) is not list:
        raise WireError(ErrorCode.MALFORMED, "field 'arrays' must be a list")
    if len(raw) > limits.max_arrays:
        raise WireError(ErrorCode.TOO_LARGE, f"{len(raw)} arrays, limit {limits.max_arrays}")
    # `type(x) is int` (not isinstance) on purpose: it refuses bool, and it is what runs per
    # dimension of every request, so it has to be cheap.
    max_ndim, max_array, max_request = limits.max_ndim, limits.max_array_bytes, limits.max_request_bytes
    specs = []
    seen = set()
    total = 0
    for i, entry in enumerate(raw):
        if type(entry) is not list or len(entry) != 3:
            raise WireError(ErrorCode.MALFORMED, f"arrays[{i}] must be [key, dtype, shape]")
        key, dtype, shape = entry
        if type(key) is not str or not key or len(key) > 128:
            raise WireError(
                ErrorCode.MALFORMED, f"arrays[{i}] key must be a non-empty string of <= 128 chars"
            )
        if key in seen:
            raise WireError(ErrorCode.MALFORMED, f"array {key!r} appears twice")
        seen.add(key)
        dt = DTYPES.get(dtype) if type(dtype) is str else None
        if dt is None:
            raise WireError(
                ErrorCode.BAD_DTYPE, f"array {key!r}: dtype {dtype!r} is not one of {sorted(DTYPES)}"
            )
        if type(shape) is not list:
            raise WireError(ErrorCode.BAD_SHAPE, f"array {key!r}: shape must be a list of integers")
        if len(shape) > max_ndim:
            raise WireError(ErrorCode.BAD_SHAPE, f"array {key!r}: {len(shape)} dimensions, limit {max_ndim}")
        nbytes = dt.itemsize
        for d in shape:
            if type(d) is not int or d < 0:
                raise WireError(
                    ErrorCode.BAD_SHAPE, f"array {key!r}: dimension {d!r} is not a non-negative integer"
                )
            nbytes *= d
            if nbytes > max_array:  # checked per dimension: no overflow, no huge product
                raise WireError(
                    ErrorCode.TOO_LARGE, f"array {key!r}: shape {shape} exceeds {max_array} bytes"
                )
        total += nbytes
        if total > max_request:
            raise WireError(ErrorCode.TOO_LARGE, f"arrays exceed the request limit of {max_request} bytes")
        specs.append(ArraySpec(key, dt, tuple(shape), nbytes))
    return specs


def decode_arrays(specs: Sequence[ArraySpec], frames: Sequence[Any]) -> dict[str, np.ndarray]:
    """View frames 1..n as the declared arrays (no copy) after checking counts and lengths.

    The views share the frames' memory: treat them as read-only, and copy what must outlive
    the message (the worker copies into its batch).
    """
    if len(frames) != len(specs):
        raise WireError(
            ErrorCode.TRUNCATED, f"header declares {len(specs)} array frames, message has {len(frames)}"
        )
    out = {}
    for spec, frame in zip(specs, frames):
        buf = frame.buffer if isinstance(frame, zmq.Frame) else memoryview(frame)
        if buf.nbytes != spec.nbytes:
            raise WireError(
                ErrorCode.TRUNCATED,
                f"array {spec.key!r}: frame has {buf.nbytes} bytes, header declares {spec.nbytes}",
            )
        out[spec.key] = np.ndarray(spec.shape, spec.dtype, buf)
    return out


def error_header(rid: int | None, code: ErrorCode, message: str) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "id": rid,
        "ok": False,
        "error": {"code": code.value, "message": message[:512]},
    }
