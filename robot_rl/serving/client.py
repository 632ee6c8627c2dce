"""The inference client used by the policy node, learners and tests.

    transport = ZmqTransport("tcp://gpu-box:5555", client_key=load_keypair("robot1.key_secret"),
                             server_public=load_keypair("server.key", need_secret=False).public)
    client = InferenceClient(transport, timeout_s=0.1)
    client.sync_clock()                                   # ping exchange -> clock offset
    chunk = client.infer("pick", obs, stamp=t_obs)        # obs[key]: (To, *shape)
    chunk.actions  # (Ta, A) float32; chunk.start_time on the robot clock; chunk.version

Every request carries a fresh id. A reply whose id is not the one awaited (a reply that
arrived after its deadline, a duplicate) is discarded and counted in `discarded`. A request
that gets no reply before its deadline raises DeadlineExceeded; after a failure the client
replaces its connection, but no more often than an exponential backoff allows
(backoff_initial_s, doubling up to backoff_max_s, reset by the next success).

The client talks through `Transport`, four methods wide, so tests swap in a faulty one
(dropping, delaying, duplicating or truncating messages) and the network stays out of
unit tests.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import zmq

from robot_rl.serving import curve, wire
from robot_rl.serving.clock import ClockOffsetEstimator, ClockSample
from robot_rl.serving.config import is_loopback
from robot_rl.serving.wire import ErrorCode, Limits, WireError


class Transport(Protocol):
    """One message out, one message in; nothing else."""

    def send(self, frames: Sequence[Any]) -> None: ...

    def recv(self, timeout_s: float) -> list[bytes] | None:
        """The next message's frames, or None when none arrived within timeout_s."""
        ...

    def reconnect(self) -> None: ...

    def close(self) -> None: ...


class ZmqTransport:
    """A DEALER socket to the server; CURVE when keys are given (required beyond loopback)."""

    def __init__(
        self,
        endpoint: str,
        client_key: curve.KeyPair | None = None,
        server_public: bytes | None = None,
        context: zmq.Context | None = None,
    ):
        if (client_key is None) != (server_public is None):
            raise ValueError("CURVE needs both the client's key pair and the server's public key")
        if client_key is None and not is_loopback(endpoint):
            raise ValueError(f"refusing to send observations to {endpoint} unencrypted; pass CURVE keys")
        if client_key is not None and client_key.secret is None:
            raise ValueError("the client key has no secret part (load the .key_secret file)")
        self.endpoint = endpoint
        self._client_key = client_key
        self._server_public = server_public
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._sock = self._connect()

    def _connect(self) -> zmq.Socket:
        sock = self._context.socket(zmq.DEALER)
        sock.linger = 0
        sock.sndhwm = sock.rcvhwm = 1000
        sock.reconnect_ivl = 50
        sock.reconnect_ivl_max = 2000
        if self._client_key is not None:
            curve.make_client_socket_secure(sock, self._client_key, self._server_public)
        sock.connect(self.endpoint)
        self._rcvtimeo = -1
        return sock

    def send(self, frames: Sequence[Any]) -> None:
        self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)

    def recv(self, timeout_s: float) -> list[bytes] | None:
        # A blocking recv with a receive timeout: one libzmq call, no Poller built per request.
        timeout_ms = max(0, int(timeout_s * 1000 + 0.999))
        if timeout_ms != self._rcvtimeo:
            self._sock.rcvtimeo = self._rcvtimeo = timeout_ms
        try:
            return self._sock.recv_multipart()
        except zmq.Again:
            return None

    def reconnect(self) -> None:
        self._sock.close(linger=0)
        self._sock = self._connect()

    def close(self) -> None:
        self._sock.close(linger=0)
        if self._own_context:
            self._context.term()


class DeadlineExceeded(TimeoutError):
    """No reply before the request's deadline."""


class ServerError(RuntimeError):
    """The server answered with a typed error."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ActionChunk:
    actions: np.ndarray  # (Ta, A) float32
    start_time: float  # robot clock: when actions[0] applies
    version: int  # model version that produced it
    policy: str
    request_id: int
    timings: dict[str, float] = field(default_factory=dict)  # server: queue_s, infer_s, batch_size
    round_trip_s: float = 0.0
    server_recv: float | None = None  # robot clock, when the clock offset is known
    server_send: float | None = None
    latent: np.ndarray | None = None  # (D,) the learner's action behind the chunk, if the policy has one


# Replies are small and from a server we chose, but the client checks them all the same.
_REPLY_LIMITS = Limits(
    max_header_bytes=1 << 20, max_arrays=4, max_array_bytes=1 << 26, max_request_bytes=1 << 26
)


class InferenceClient:
    def __init__(
        self,
        transport: Transport,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
    ):
        self.transport = transport
        self.timeout_s = timeout_s
        self.clock = clock
        self.clock_offset = ClockOffsetEstimator()
        self.discarded = 0  # replies dropped because their id was not the one awaited
        self.reconnects = 0
        self._ids = itertools.count(int.from_bytes(np.random.default_rng().bytes(4), "little") << 20)
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._backoff = backoff_initial_s
        self._next_reconnect = 0.0
        self._failures = 0

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------

    def infer(
        self,
        policy: str,
        obs: Mapping[str, np.ndarray],
        stamp: float | None = None,
        timeout_s: float | None = None,
    ) -> ActionChunk:
        """One observation window (each obs[key] shaped (To, *shape)) -> one action chunk."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        stamp = self.clock() if stamp is None else stamp
        header: dict[str, Any] = {"op": "infer", "policy": policy, "stamp": float(stamp)}
        if self.clock_offset.ready:
            header["deadline"] = self.clock() + timeout
            header["offset"] = self.clock_offset.offset
        t0 = time.perf_counter()
        reply, frames = self._request(header, obs, timeout)
        rtt = time.perf_counter() - t0
        arrays = wire.decode_arrays(wire.array_specs(reply, _REPLY_LIMITS), frames)
        if "action" not in arrays:
            raise ServerError(ErrorCode.MALFORMED.value, "reply carries no action array")
        recv = send = None
        if self.clock_offset.ready:
            recv = self.clock_offset.to_robot(reply["server_recv"])
            send = self.clock_offset.to_robot(reply["server_send"])
        return ActionChunk(
            actions=arrays["action"],
            start_time=reply["start_time"],
            version=reply["version"],
            policy=reply["policy"],
            request_id=reply["id"],
            timings=reply.get("timings", {}),
            round_trip_s=rtt,
            server_recv=recv,
            server_send=send,
            latent=arrays.get("latent"),
        )

    def ping(self, timeout_s: float | None = None) -> ClockSample:
        t0 = self.clock()
        reply, _ = self._request(
            {"op": "ping", "t0": t0}, None, self.timeout_s if timeout_s is None else timeout_s
        )
        t3 = self.clock()
        return self.clock_offset.add(t0, reply["t1"], reply["t2"], t3)

    def sync_clock(self, n: int = 16) -> ClockOffsetEstimator:
        """`n` pings; the estimator keeps the min-RTT sample's offset."""
        for _ in range(n):
            self.ping()
        return self.clock_offset

    def status(self, timeout_s: float | None = None) -> dict[str, Any]:
        reply, _ = self._request({"op": "status"}, None, self.timeout_s if timeout_s is None else timeout_s)
        return reply["status"]

    def push_weights(
        self, policy: str, version: int, weights: Mapping[str, Any] | bytes, timeout_s=30.0
    ) -> int:
        """Send new weights (a state dict of tensors, or safetensors bytes); returns the served version."""
        if not isinstance(weights, bytes | bytearray | memoryview):
            from safetensors.torch import save

            weights = save({k: v.detach().cpu().contiguous() for k, v in weights.items()})
        header = {"op": "update", "policy": policy, "version": int(version)}
        reply, _ = self._request(header, None, timeout_s, extra_frames=[weights])
        return reply["version"]

    # -- plumbing --------------------------------------------------------------------

    def _request(
        self,
        header: dict[str, Any],
        arrays: Mapping[str, np.ndarray] | None,
        timeout_s: float,
        extra_frames: Sequence[Any] = (),
    ) -> tuple[dict[str, Any], list[bytes]]:
        rid = next(self._ids)
        frames = wire.encode({"v": wire.PROTOCOL_VERSION, "id": rid, **header}, arrays)
        deadline = time.perf_counter() + timeout_s
        try:
            self.transport.send([*frames, *extra_frames])
        except zmq.ZMQError as exc:
            self._failed()
            raise DeadlineExceeded(f"could not send request {rid}: {exc}") from None
        while True:
            remaining = deadline - time.perf_counter()
            msg = self.transport.recv(remaining) if remaining > 0 else None
            if msg is None:
                self._failed()
                raise DeadlineExceeded(
                    f"no reply to request {rid} ({header['op']}) within {timeout_s * 1e3:.1f} ms"
                )
            try:
                reply = wire.unpack_header(msg[0], _REPLY_LIMITS) if msg else {}
            except WireError:
                self.discarded += 1
                continue
            if reply.get("id") != rid:
                self.discarded += 1  # late reply to an earlier request, or garbage
                continue
            self._succeeded()
            if not reply.get("ok"):
                err = reply.get("error") or {}
                raise ServerError(str(err.get("code", "unknown")), str(err.get("message", "")))
            return reply, msg[1:]

    def _failed(self) -> None:
        self._failures += 1
        t = time.monotonic()
        if t >= self._next_reconnect:
            self.transport.reconnect()
            self.reconnects += 1
            self._next_reconnect = t + self._backoff
            self._backoff = min(self._backoff * 2, self._backoff_max)

    def _succeeded(self) -> None:
        self._failures = 0
        self._backoff = self._backoff_initial
        self._next_reconnect = 0.0
