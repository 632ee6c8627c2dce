"""One inference thread per policy: dynamic batching, versioned weights, hot updates.

The I/O thread validates a request and puts it on the policy's queue; this thread takes
it off, batches it with the requests that arrived together, runs the policy and sends the
replies itself through the server's shared ROUTER socket (server.py's SharedRouter).

A lone request to a fast policy skips the queue: the I/O thread runs it through the same
code (`try_run_inline`), saving the wake-up of this thread (see BatchingConfig for the
rule). `outstanding` counts requests and updates queued or running here; the I/O thread
runs a request itself only when it is zero, so a policy never runs on two threads at once
and a request never overtakes an update that arrived before it.

    queue ─► [r1 r2 r3] ─► stack (B, To, ...) ─► predict_action ─► (B, Ta, A) ─► 3 replies
              └── all already queued, plus (budget_ms > 0) any arriving within budget_ms
                  of r1's arrival; never longer

Weight updates travel through the same queue, so they are applied between batches: a batch
already running finishes on the old weights, every request queued before the update is
answered by the old weights, every one after by the new. Nothing is dropped, and the
parameters are checked (names, shapes, dtypes) before a single one is overwritten.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robot_rl.serving import wire
from robot_rl.serving.config import BatchingConfig
from robot_rl.serving.metrics import ServerMetrics
from robot_rl.serving.wire import ErrorCode

log = logging.getLogger(__name__)
_F32 = np.dtype("<f4")  # the wire is little-endian


@runtime_checkable
class ServablePolicy(Protocol):
    """What the server needs from a policy (robot_rl.policies' DiffusionPolicy satisfies it).

    Timing, for obs_horizon To = 2 and action_horizon Ta = 4:

        observation steps   |o(t-1)|o(t)|
        returned chunk              |a(t)|a(t+1)|a(t+2)|a(t+3)|
                                     ^ start_time = stamp of o(t), on the robot's clock
    """

    obs_spec: Mapping[str, tuple[tuple[int, ...], str]]  # key -> (per-step shape, dtype name)
    obs_horizon: int
    action_horizon: int
    action_dim: int

    def predict_action(self, obs: dict[str, Any]) -> Any: ...  # (B, To, *shape) -> (B, Ta, A)

    # Optional: `latent_dim` > 0 and `predict_action_and_latent(obs) -> ((B, Ta, A), (B, D))` for a
    # policy whose chunk comes from an action an RL learner chose (robot_rl.policies.explorer);
    # the reply then carries the latent too, so a robot acting for a learner can send it back.

    def to(self, device: Any) -> Any: ...

    def state_dict(self) -> Mapping[str, Any]: ...


class ReplySink(Protocol):
    """Where an inference thread puts its replies (server.py's SharedRouter sends them at once)."""

    def put(self, *replies: list) -> None: ...


@dataclass
class InferItem:
    identity: bytes
    rid: int
    obs: dict[str, np.ndarray]  # read-only views into `frames`
    frames: list  # the zmq frames, kept alive while the views are in use
    stamp: float  # robot clock
    t_recv: float  # server clock
    deadline: float | None = None  # robot clock
    offset: float | None = None  # client's estimate of server - robot


@dataclass
class UpdateItem:
    identity: bytes
    rid: int
    version: int
    blob: Any  # a zmq frame holding a safetensors file
    t_recv: float


@dataclass
class PolicyInfo:
    name: str
    version: int
    obs_horizon: int
    action_horizon: int
    action_dim: int
    obs_spec: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    latent_dim: int = 0  # > 0: replies carry the learner's action too (an exploring policy)


def now() -> float:
    """The server clock."""
    return time.monotonic()


class PolicyWorker:
    def __init__(
        self,
        name: str,
        policy: ServablePolicy,
        batching: BatchingConfig,
        metrics: ServerMetrics,
        outbox: ReplySink,
        device: str = "cpu",
        version: int = 0,
        compile_mode: str = "off",
    ):
        import torch

        self._torch = torch
        self.name = name
        self.policy = policy
        self.batching = batching
        self.metrics = metrics
        self.device = torch.device(device)
        self.version = version
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.obs_spec = {
            k: (tuple(int(d) for d in shape), str(dt)) for k, (shape, dt) in policy.obs_spec.items()
        }
        for key, (_, dt) in self.obs_spec.items():
            if dt not in wire.DTYPES:
                raise ValueError(f"policy {name!r}: observation {key!r} has dtype {dt}, not servable")
        self.expected = {
            k: (wire.DTYPES[dt], (policy.obs_horizon, *shape)) for k, (shape, dt) in self.obs_spec.items()
        }
        self._outbox = outbox
        self._to_device = self.device.type != "cpu"
        self._reset = getattr(policy, "reset", None)
        self._latent_dim = int(getattr(policy, "latent_dim", 0))
        self._compile_mode = compile_mode
        self._outstanding = 0  # items submitted to this thread and not finished (guarded by _count_lock)
        self._count_lock = threading.Lock()
        self.solo_s = float("inf")  # median batch-1 time of the last calls; inf until measured
        self._solo_times: deque[float] = deque(maxlen=15)
        self.inline_runs = 0
        self._fixed_shape_fn = None  # compiled predict_action for batch size 1, when measured faster
        self._thread = threading.Thread(target=self._run, name=f"policy-{name}", daemon=True)
        self._ready = threading.Event()
        policy.to(self.device)
        if hasattr(policy, "eval"):
            policy.eval()

    @property
    def info(self) -> PolicyInfo:
        p = self.policy
        return PolicyInfo(
            self.name,
            self.version,
            p.obs_horizon,
            p.action_horizon,
            p.action_dim,
            self.obs_spec,
            self._latent_dim,
        )

    def queue_depth(self) -> int:
        return self.queue.qsize()

    def submit(self, item: InferItem | UpdateItem) -> None:
        """Queue an item for this policy's thread (called by the I/O thread)."""
        with self._count_lock:
            self._outstanding += 1
        self.queue.put(item)

    def _finished(self, n: int) -> None:
        with self._count_lock:
            self._outstanding -= n

    def can_run_inline(self) -> bool:
        """Whether BatchingConfig's rule lets the I/O thread run a lone request of this policy."""
        return (
            self.batching.budget_ms == 0
            and self._fixed_shape_fn is None
            and self.solo_s * 1e3 <= self.batching.inline_max_ms
        )

    def _add_solo_time(self, seconds: float) -> None:
        """The median of the last 15 batch-1 times: one preempted call does not move it."""
        self._solo_times.append(seconds)
        times = sorted(self._solo_times)
        self.solo_s = times[len(times) // 2]

    def try_run_inline(self, item: InferItem) -> bool:
        """Run `item` on the calling thread if this policy is idle and fast enough; False: queue it."""
        if not self.can_run_inline():
            return False
        with self._count_lock:
            if self._outstanding:
                return False
            self._outstanding = 1
        self.inline_runs += 1  # before the reply leaves, so a client that got it sees the count
        try:
            self._run_batch([item])
        finally:
            self._finished(1)
        return True

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=120)

    def stop(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=10)

    # ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._warm_up()
        finally:
            self._ready.set()
        pending = None
        while True:
            item = pending if pending is not None else self.queue.get()
            pending = None
            if item is None:
                return
            if isinstance(item, UpdateItem):
                try:
                    self._apply_update(item)
                finally:
                    self._finished(1)
                continue
            batch = [item]
            pending = self._collect(batch)
            try:
                self._run_batch(batch)
            finally:
                self._finished(len(batch))

    def _collect(self, batch: list[InferItem]):
        """Fill `batch` with what is queued, waiting at most budget_ms from the first arrival.

        Returns an item that must not join this batch (an update or the stop signal), or None.
        """
        limit = self.batching.max_batch
        until = batch[0].t_recv + self.batching.budget_ms / 1e3
        while len(batch) < limit:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                remaining = until - now()
                if remaining <= 0:
                    return None
                try:
                    item = self.queue.get(timeout=remaining)
                except queue.Empty:
                    return None
            if not isinstance(item, InferItem):
                return item
            batch.append(item)
        return None

    def _run_batch(self, batch: list[InferItem]) -> None:
        torch = self._torch
        t_start = now()
        live = []
        for item in batch:
            if (
                item.deadline is not None
                and item.offset is not None
                and t_start - item.offset > item.deadline
            ):
                self._error(
                    item.identity, item.rid, ErrorCode.DEADLINE_EXCEEDED, "deadline passed while queued"
                )
            else:
                live.append(item)
        if not live:
            return
        try:
            if self._reset is not None:
                self._reset()  # no warm-start memory may leak from one robot's chunk into another's
            obs = {}
            for key in self.obs_spec:
                if len(live) == 1:  # a copy (the view points into the message) with a batch axis
                    stacked = np.array(live[0].obs[key][None])
                else:
                    stacked = np.stack([it.obs[key] for it in live])
                obs[key] = torch.from_numpy(stacked)
                if self._to_device:
                    obs[key] = obs[key].to(self.device, non_blocking=True)
            latent = None
            with torch.inference_mode():
                if self._latent_dim:
                    actions, latent = self.policy.predict_action_and_latent(obs)
                else:
                    fn = (
                        self._fixed_shape_fn
                        if (len(live) == 1 and self._fixed_shape_fn)
                        else self.policy.predict_action
                    )
                    actions = fn(obs)
            actions = np.ascontiguousarray(actions.detach().to("cpu", torch.float32).numpy(), _F32)
            want = (len(live), self.policy.action_horizon, self.policy.action_dim)
            if actions.shape != want:
                raise RuntimeError(f"policy returned actions of shape {actions.shape}, expected {want}")
            if latent is not None:
                latent = np.ascontiguousarray(latent.detach().to("cpu", torch.float32).numpy(), _F32)
                if latent.shape != (len(live), self._latent_dim):
                    raise RuntimeError(f"policy returned a latent of shape {latent.shape}")
        except Exception as exc:  # a policy bug must not take the server down
            log.exception("policy %s failed on a batch of %d", self.name, len(live))
            for item in live:
                self._error(
                    item.identity, item.rid, ErrorCode.INTERNAL, f"policy raised {type(exc).__name__}"
                )
            return
        t_done = now()
        infer_s = t_done - t_start
        if len(live) == 1:
            self._add_solo_time(infer_s)
        replies = []
        arrays = [["action", "float32", list(actions.shape[1:])]]
        if latent is not None:
            arrays.append(["latent", "float32", [self._latent_dim]])
        t_send = now()
        for i, item in enumerate(live):
            header = {
                "v": wire.PROTOCOL_VERSION,
                "id": item.rid,
                "ok": True,
                "policy": self.name,
                "version": self.version,
                "stamp": item.stamp,
                "start_time": item.stamp,
                "server_recv": item.t_recv,
                "server_send": t_send,
                "timings": {"queue_s": t_start - item.t_recv, "infer_s": infer_s, "batch_size": len(live)},
                "arrays": arrays,
            }
            frames = [item.identity, wire.pack_header(header), actions[i].data]
            if latent is not None:
                frames.append(latent[i].data)
            replies.append(frames)
        # Counted before the replies leave: a client that has its reply sees it in `status`.
        self.metrics.batch_done(self.name, len(live), infer_s, [t_send - it.t_recv for it in live])
        self._outbox.put(*replies)

    def _apply_update(self, item: UpdateItem) -> None:
        torch = self._torch
        if item.version <= self.version:
            self._error(
                item.identity,
                item.rid,
                ErrorCode.STALE_VERSION,
                f"version {item.version} is not above the served version {self.version}",
            )
            return
        if getattr(self.policy, "int8", False):
            msg = "this policy is served in int8 (an inference copy); serve it without int8 to push weights"
            self._error(item.identity, item.rid, ErrorCode.BAD_UPDATE, msg)
            return
        try:
            from safetensors.torch import load as load_safetensors

            new = load_safetensors(bytes(item.blob.buffer if hasattr(item.blob, "buffer") else item.blob))
        except Exception as exc:
            self._error(item.identity, item.rid, ErrorCode.BAD_UPDATE, f"not a safetensors file ({exc})")
            return
        current = self.policy.state_dict()
        missing = sorted(set(current) - set(new))
        extra = sorted(set(new) - set(current))
        problem = ""
        if missing or extra:
            problem = f"missing {missing[:5]} unexpected {extra[:5]}"
        else:
            for key, tensor in current.items():
                if tuple(new[key].shape) != tuple(tensor.shape) or new[key].dtype != tensor.dtype:
                    problem = (
                        f"{key}: got {new[key].dtype} {tuple(new[key].shape)}, "
                        f"serving {tensor.dtype} {tuple(tensor.shape)}"
                    )
                    break
                if tensor.is_floating_point() and not torch.isfinite(new[key]).all():
                    problem = f"{key}: contains NaN or inf"
                    break
        if problem:
            self._error(
                item.identity, item.rid, ErrorCode.BAD_UPDATE, f"weights do not fit policy: {problem}"
            )
            return
        with torch.no_grad():
            for key, tensor in current.items():
                tensor.copy_(new[key])
        old = self.version
        self.version = item.version
        log.info("policy %s: weights %d -> %d", self.name, old, item.version)
        header = {
            "v": wire.PROTOCOL_VERSION,
            "id": item.rid,
            "ok": True,
            "policy": self.name,
            "version": self.version,
        }
        self._send(item.identity, [wire.pack_header(header)])

    def _error(self, identity: bytes, rid: int, code: ErrorCode, message: str) -> None:
        self.metrics.error(code.value, self.name)
        self._send(identity, [wire.pack_header(wire.error_header(rid, code, message))])

    def _send(self, identity: bytes, frames: list) -> None:
        self._outbox.put([identity, *frames])

    # ---------------------------------------------------------------------------------

    def dummy_obs(self, batch: int = 1) -> dict[str, Any]:
        torch = self._torch
        return {
            k: torch.zeros((batch, *shape), dtype=getattr(torch, dtype.name)).to(self.device)
            for k, (dtype, shape) in self.expected.items()
        }

    def _warm_up(self) -> None:
        """One call so the first request does not pay for lazy initialisation; then the compile hook."""
        torch = self._torch
        try:
            with torch.inference_mode():
                t = time.perf_counter()
                self.policy.predict_action(self.dummy_obs())
                self._add_solo_time(time.perf_counter() - t)  # includes lazy initialisation: slow
                if self.solo_s * 1e3 <= 10 * self.batching.inline_max_ms:  # maybe fast: time 3 more
                    self._solo_times.clear()
                    for _ in range(3):
                        t = time.perf_counter()
                        self.policy.predict_action(self.dummy_obs())
                        self._add_solo_time(time.perf_counter() - t)
        except Exception:
            log.exception("policy %s failed its warm-up call", self.name)
            return
        if self._compile_mode == "auto" and self.device.type == "cuda":
            self._fixed_shape_fn = choose_fixed_shape_fn(self.policy, self.dummy_obs(), self.name)


def choose_fixed_shape_fn(policy: ServablePolicy, obs: dict[str, Any], name: str = ""):
    """torch.compile(mode="reduce-overhead": CUDA graphs) for the batch-size-1 path, kept only if faster.

    Returns the compiled callable when its median latency beats eager by at least 5 %, else None.
    """
    import torch

    def median_s(fn, n=30):
        times = []
        with torch.inference_mode():
            for _ in range(n):
                torch.cuda.synchronize()
                t = time.perf_counter()
                fn(obs)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
        return float(np.median(times))

    try:
        compiled = torch.compile(policy.predict_action, mode="reduce-overhead", dynamic=False)
        with torch.inference_mode():
            for _ in range(3):
                compiled(obs)
        eager_s, compiled_s = median_s(policy.predict_action), median_s(compiled)
    except Exception as exc:
        log.warning("policy %s: torch.compile failed (%s); serving eager", name, exc)
        return None
    keep = compiled_s < 0.95 * eager_s
    log.info(
        "policy %s: eager %.3f ms, compiled %.3f ms: %s",
        name,
        eager_s * 1e3,
        compiled_s * 1e3,
        "using compiled" if keep else "keeping eager",
    )
    return compiled if keep else None
