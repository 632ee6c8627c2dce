"""The inference server: one ROUTER socket, an I/O thread, one inference thread per policy.

    robots / learners ──DEALER──► ROUTER (I/O thread) ──queue──► PolicyWorker "pick" ──┐
                      ◄──────────  validate, ping, status  ◄──── replies (shared ROUTER) ◄┘
                                   └─ a lone request to a fast policy: run here, reply here

The I/O thread reads the header, checks it against the wire rules and the addressed
policy's observation spec before touching any array, and either queues the request or
answers with a typed error. Pings and status requests are answered on the spot. A request
that arrived alone for an idle policy measured faster than `batching.inline_max_ms` runs
on the I/O thread itself, which saves a thread wake-up on the request's path (rule and
bound: BatchingConfig); everything else, and every long policy, runs on the policy's own
thread. Any exception while handling one message becomes an INTERNAL error for that message
only; the loop carries on.

Replies (ok):
    infer   policy, version, stamp, start_time (robot clock: when chunk step 0 applies),
            server_recv, server_send (server clock), timings {queue_s, infer_s, batch_size},
            plus one array frame `action` (Ta, A) float32
    ping    t0 (echoed), t1 (server receive), t2 (server send)
    status  status {policies: {name: {version, queue_depth, ...}}, uptime_s, errors}
    update  policy, version (after the swap)
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Mapping
from typing import Any

import zmq

from robot_rl.serving import curve, wire
from robot_rl.serving.config import ServerConfig, check_security
from robot_rl.serving.metrics import MetricsHTTPServer, ServerMetrics
from robot_rl.serving.wire import ErrorCode, WireError
from robot_rl.serving.worker import InferItem, PolicyWorker, ServablePolicy, UpdateItem, now

log = logging.getLogger(__name__)


class SharedRouter:
    """The ROUTER socket, shared by the I/O thread and the inference threads under one lock.

    ZeroMQ sockets may move between threads when a full memory barrier separates their use; the
    lock provides it. The I/O thread waits on the socket's file descriptor (not on the socket),
    so inference threads can send replies directly, saving a thread hand-off per request.
    ZMQ_FD is edge-triggered and any operation may consume its edge: after sending, a thread
    that sees input pending pokes the I/O thread through a pipe.
    """

    def __init__(self, router: zmq.Socket):
        self.router = router
        self.lock = threading.Lock()
        self.fd = router.getsockopt(zmq.FD)
        self.wake_r, self._wake_w = os.pipe()
        self.closed = False
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self._wake_w, False)

    def put(self, *replies: list) -> None:
        """Send reply messages now (called by inference threads)."""
        with self.lock:
            if self.closed:  # shutting down: the replies have nowhere to go
                return
            for frames in replies:
                self.send_locked(frames)
            pending = self.router.getsockopt(zmq.EVENTS) & zmq.POLLIN
        if pending:
            self.wake()

    def send_locked(self, frames: list) -> None:
        try:
            self.router.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:  # peer gone or its queue full: drop this reply only
            log.debug("dropped a reply: %s", exc)

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # full of wake-ups already, or closed during shutdown
            pass

    def drain_wakes(self) -> None:
        try:
            os.read(self.wake_r, 4096)
        except OSError:
            pass

    def close(self, io_thread_running: bool) -> None:
        """Close the socket; the pipe too unless the I/O thread might still poll it."""
        with self.lock:
            self.closed = True
            self.router.close(linger=0)
        if not io_thread_running:
            os.close(self.wake_r)
            os.close(self._wake_w)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class InferenceServer:
    """Serve `policies` (name -> policy) as `config` says. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        policies: Mapping[str, ServablePolicy],
        config: ServerConfig,
        versions: Mapping[str, int] | None = None,
    ):
        check_security(config.bind, config.security)
        if not policies:
            raise ValueError("no policies to serve; pass --policy NAME=CHECKPOINT")
        self.config = config
        self.limits = config.limits
        self.metrics = ServerMetrics()
        if config.int8:
            from robot_rl.policies import int8_copy

            policies = {name: int8_copy(p, f"policy {name!r}") for name, p in policies.items()}
        self._policies = dict(policies)
        self._versions = dict(versions or {})
        self._context = zmq.Context()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self.workers: dict[str, PolicyWorker] = {}
        self._auth = None
        self._clients: set[bytes] = set()
        self._learners: set[bytes] = set()
        self._secure = config.security.has_keys
        self._http: MetricsHTTPServer | None = None
        self._shared: SharedRouter | None = None
        self.endpoint = ""
        self._io = threading.Thread(target=self._io_loop, name="serving-io", daemon=True)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> InferenceServer:
        sec = self.config.security
        if self._secure:
            server_key = curve.load_keypair(sec.server_key)
            self._clients = curve.load_allowed_keys(sec.clients) if sec.clients else set()
            self._learners = curve.load_allowed_keys(sec.learners) if sec.learners else set()
            self._auth = curve.start_authenticator(self._context, self._clients | self._learners)
        router = self._context.socket(zmq.ROUTER)
        router.linger = 0
        router.maxmsgsize = self.limits.max_frame_bytes  # ZeroMQ drops the peer before allocating more
        router.sndhwm = router.rcvhwm = 10_000
        if self._secure:
            curve.make_server_socket_secure(router, server_key)
        try:
            router.bind(self.config.bind)
        except zmq.ZMQError as exc:
            router.close()
            self.stop()
            raise ValueError(f"cannot bind {self.config.bind}: {exc}") from None
        self._shared = SharedRouter(router)
        device = "cpu" if self.config.int8 else resolve_device(self.config.device)
        for name, policy in self._policies.items():
            self.workers[name] = PolicyWorker(
                name,
                policy,
                self.config.batching,
                self.metrics,
                self._shared,
                device=device,
                version=self._versions.get(name, 0),
                compile_mode=self.config.compile,
            )
        for worker in self.workers.values():
            worker.start()
        self.endpoint = router.last_endpoint.decode()
        if self.config.metrics_port:
            self._http = MetricsHTTPServer(
                self.config.metrics_host, self.config.metrics_port, self.prometheus
            )
        self._io.start()
        self._started.wait(timeout=10)
        log.info(
            "serving %s on %s (%s)",
            list(self.workers),
            self.endpoint,
            "CURVE" if self._secure else "insecure",
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._io.is_alive():
            self._io.join(timeout=10)
        for worker in self.workers.values():
            worker.stop()
        if self._http:
            self._http.close()
        if self._auth:
            self._auth.stop()
        if self._shared is not None:
            self._shared.close(io_thread_running=self._io.is_alive())
        self._context.destroy(linger=0)

    def __enter__(self) -> InferenceServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def metrics_port(self) -> int | None:
        return self._http.port if self._http else None

    def serve_forever(self) -> None:
        try:
            while self._io.is_alive():
                self._io.join(timeout=0.5)
        finally:
            self.stop()

    # -- status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        policies = {}
        for name, w in self.workers.items():
            info = w.info
            policies[name] = {
                "version": info.version,
                "queue_depth": w.queue_depth(),
                "obs_horizon": info.obs_horizon,
                "action_horizon": info.action_horizon,
                "action_dim": info.action_dim,
                "latent_dim": info.latent_dim,
                "obs_spec": {k: [list(shape), dt] for k, (shape, dt) in info.obs_spec.items()},
                "latency_ms": self.metrics.latency_ms(name),
                "batches": self.metrics.batches[name],
                "batched_requests": self.metrics.batched_requests[name],
            }
        return {
            "policies": policies,
            "uptime_s": time.monotonic() - self.metrics.started,
            "errors": dict(self.metrics.errors),
            "secure": self._secure,
        }

    def prometheus(self) -> str:
        return self.metrics.prometheus(
            {n: {"version": w.version, "queue_depth": w.queue_depth()} for n, w in self.workers.items()}
        )

    # -- I/O thread ------------------------------------------------------------------

    def _io_loop(self) -> None:
        shared = self._shared
        router = shared.router
        poller = select.poll()
        poller.register(shared.fd, select.POLLIN)
        poller.register(shared.wake_r, select.POLLIN)
        self._started.set()
        wake_r = shared.wake_r
        while not self._stop.is_set():
            held = None  # the round's latest infer request, not yet queued: it may run here
            received = 0
            with shared.lock:
                if shared.closed:
                    return
                # Asking EVENTS first (not recv until zmq.Again) saves an exception per round; it
                # also re-arms the edge-triggered ZMQ_FD once it reports no input.
                while received < 256 and router.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # bounded:
                    try:  # inference threads get the lock between rounds
                        frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    received += 1
                    if held is not None:  # not alone: queue it before the next message (keeps order)
                        held[0].submit(held[1])
                        held = None
                    held = self._handle(frames)
            if held is not None:
                worker, item = held
                if not (received == 1 and worker.try_run_inline(item)):
                    worker.submit(item)
            if received:
                continue  # look at the socket again before sleeping on it
            for fd, _ in poller.poll(50):
                if fd == wake_r:
                    shared.drain_wakes()

    def _reply(self, identity: bytes, header: dict[str, Any], frames: list | None = None) -> None:
        """Called by the I/O thread, which holds the socket's lock."""
        self._shared.send_locked([identity, wire.pack_header(header), *(frames or [])])

    def _error(self, identity: bytes, rid: int | None, err: WireError, policy: str = "") -> None:
        self.metrics.error(err.code.value, policy)
        self._reply(identity, wire.error_header(rid, err.code, err.message))

    def _handle(self, frames: list) -> tuple[PolicyWorker, InferItem] | None:
        """Answer or queue one message; a valid infer request is returned instead, for the caller to place."""
        t_recv = now()
        identity = frames[0].bytes
        rid = None
        policy_name = ""
        try:
            if len(frames) < 2:
                raise WireError(ErrorCode.MALFORMED, "message has no header frame")
            header = wire.unpack_header(frames[1].buffer, self.limits)
            rid = wire.request_id(header)
            op, rid = wire.check_request(header)
            if op == "infer":
                return self._check_infer(identity, rid, header, frames, t_recv)
            elif op == "ping":
                t0 = wire.field(header, "t0", (int, float), required=False)
                self._reply(
                    identity,
                    {"v": wire.PROTOCOL_VERSION, "id": rid, "ok": True, "t0": t0, "t1": t_recv, "t2": now()},
                )
            elif op == "status":
                self._reply(
                    identity, {"v": wire.PROTOCOL_VERSION, "id": rid, "ok": True, "status": self.status()}
                )
            elif op == "update":
                policy_name = self._enqueue_update(identity, rid, header, frames, t_recv)
        except WireError as err:
            self._error(identity, rid, err, policy_name)
        except Exception as exc:  # a bug in handling one message must not stop the server
            log.exception("error handling a message")
            self._error(identity, rid, WireError(ErrorCode.INTERNAL, type(exc).__name__), policy_name)
        return None

    def _worker(self, header: Mapping[str, Any]) -> PolicyWorker:
        name = wire.field(header, "policy", str)
        worker = self.workers.get(name)
        if worker is None:
            raise WireError(
                ErrorCode.UNKNOWN_POLICY, f"no policy {name[:64]!r}; serving {sorted(self.workers)}"
            )
        return worker

    def _check_infer(self, identity, rid, header, frames, t_recv) -> tuple[PolicyWorker, InferItem]:
        worker = self._worker(header)
        stamp = float(wire.field(header, "stamp", (int, float)))
        deadline = wire.field(header, "deadline", (int, float), required=False)
        offset = wire.field(header, "offset", (int, float), required=False)
        specs = wire.array_specs(header, self.limits)
        got = {s.key for s in specs}
        want = set(worker.expected)
        if got != want:
            raise WireError(
                ErrorCode.WRONG_KEYS,
                f"policy {worker.name!r} takes {sorted(want)}; missing {sorted(want - got)}, "
                f"unexpected {sorted(got - want)[:8]}",
            )
        for spec in specs:
            dtype, shape = worker.expected[spec.key]
            if spec.dtype != dtype:
                raise WireError(
                    ErrorCode.BAD_DTYPE, f"{spec.key!r} must be {dtype.name}, got {spec.dtype.name}"
                )
            if spec.shape != shape:
                raise WireError(
                    ErrorCode.BAD_SHAPE, f"{spec.key!r} must have shape {list(shape)}, got {list(spec.shape)}"
                )
        obs = wire.decode_arrays(specs, frames[2:])
        if worker.queue_depth() >= self.config.batching.max_queue:
            raise WireError(
                ErrorCode.OVERLOADED, f"policy {worker.name!r} has {worker.queue_depth()} requests queued"
            )
        return worker, InferItem(identity, rid, obs, frames, stamp, t_recv, deadline, offset)

    def _enqueue_update(self, identity, rid, header, frames, t_recv) -> str:
        if self._secure:
            user = frames[1].get("User-Id").encode()
            if user not in self._learners:
                raise WireError(
                    ErrorCode.FORBIDDEN, "this key may not update weights (not in the learners list)"
                )
        elif not self.config.security.insecure_updates:
            raise WireError(
                ErrorCode.FORBIDDEN, "weight updates need CURVE keys (or --insecure-updates on loopback)"
            )
        worker = self._worker(header)
        version = wire.field(header, "version", int)
        if len(frames) != 3:
            raise WireError(
                ErrorCode.TRUNCATED, f"an update is header + one safetensors frame, got {len(frames) - 1}"
            )
        if len(frames[2]) > self.limits.max_update_bytes:
            raise WireError(ErrorCode.TOO_LARGE, f"update exceeds {self.limits.max_update_bytes} bytes")
        worker.submit(UpdateItem(identity, rid, version, frames[2], t_recv))
        return worker.name
