"""Actors in other processes (sim workers now, robots later) and the learner, over ZeroMQ.

The link follows the serving transport's rules (robot_rl/serving/wire.py): one message = a
msgpack header frame + raw array frames, dtypes whitelisted and sizes checked from the header
before anything is allocated, never pickle; CURVE authentication and encryption whenever the
learner listens beyond loopback (keys from `robot-rl keygen`, actors in an allowed-keys file).

    actor process                                   learner process
    ActorClient.send_transitions(episode)  ──REQ──► LearnerLink (ROUTER): checked against the
                                           ◄──────  replay's fields, queued for RemoteActors
    ActorClient.fetch_weights(have=v)      ──REQ──► newest published policy weights if newer
                                           ◄──────  than v (else just the version)

`RemoteActors` gives the learner loop (robot_rl.training.online.run_online) the same face as
a local EnvActor, so the loop, its checkpoints and its curve are the same in both set-ups.
`run_remote_actor` is the actor process's loop: step the env, send each finished episode,
pull new weights every `weights_every` env steps.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zmq

from robot_rl.serving import wire
from robot_rl.serving.config import is_loopback

PROTOCOL = 1
OPS = ("transitions", "weights")


class LinkError(RuntimeError):
    """The learner refused a message or did not answer in time."""


class LearnerLink:
    """The learner's socket: receives episodes of transitions, serves the newest weights."""

    def __init__(
        self,
        bind: str,
        spec: dict[str, tuple[tuple[int, ...], Any]],
        server_key: str | Path = "",
        actors: str | Path = "",
        insecure_loopback: bool = False,
        limits: wire.Limits | None = None,
    ):
        from robot_rl.serving import curve

        if not server_key and not (insecure_loopback and is_loopback(bind)):
            raise ValueError(
                f"refusing to listen on {bind} without CURVE keys (give server_key and actors, or "
                "insecure_loopback for a loopback endpoint)"
            )
        self.spec = {k: (tuple(shape), np.dtype(dt)) for k, (shape, dt) in spec.items()}
        self.limits = limits = limits or wire.Limits()
        self.context = zmq.Context()
        self._auth = None
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.MAXMSGSIZE, limits.max_frame_bytes)
        self.socket.setsockopt(zmq.LINGER, 0)
        if server_key:
            self._auth = curve.start_authenticator(self.context, curve.load_allowed_keys(actors))
            curve.make_server_socket_secure(self.socket, curve.load_keypair(server_key))
        self.socket.bind(bind)
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.received: deque[tuple[dict[str, np.ndarray], dict[str, float]]] = deque()
        self._weights: dict[str, np.ndarray] = {}
        self.version = 0
        self.rejected = 0

    def publish(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self._weights = {k: v.detach().cpu().contiguous().numpy() for k, v in weights.items()}
        self.version = version

    def poll(self, timeout_ms: int = 0) -> int:
        """Answer every waiting request (waiting up to timeout_ms for the first); returns how many."""
        handled = 0
        while self.socket.poll(timeout_ms if handled == 0 else 0):
            frames = self.socket.recv_multipart(copy=False)
            identity, body = (
                frames[0].bytes,
                frames[2:] if len(frames) > 2 and not frames[1].bytes else frames[1:],
            )
            self._handle(identity, body)
            handled += 1
        return handled

    def _reply(self, identity: bytes, header: dict, arrays: dict | None = None) -> None:
        self.socket.send_multipart([identity, b"", *wire.encode(header, arrays)], copy=False)

    def _handle(self, identity: bytes, frames: list) -> None:
        rid = None
        try:
            if not frames:
                raise wire.WireError(wire.ErrorCode.MALFORMED, "empty message")
            header = wire.unpack_header(frames[0].bytes, self.limits)
            rid = wire.request_id(header)
            op = header.get("op")
            if header.get("v") != PROTOCOL or op not in OPS or rid is None:
                raise wire.WireError(
                    wire.ErrorCode.UNKNOWN_OP, f"expected v={PROTOCOL}, op in {OPS} and an id"
                )
            if op == "weights":
                have = header.get("have", 0)
                newer = isinstance(have, int) and have < self.version
                self._reply(identity, {"v": PROTOCOL, "id": rid, "ok": True, "version": self.version},
                            self._weights if newer else None)  # fmt: skip
                return
            arrays = wire.decode_arrays(wire.array_specs(header, self.limits), frames[1:])
            self._check_transitions(arrays)
            stats = header.get("stats", {})
            stats = (
                {k: float(v) for k, v in stats.items() if isinstance(v, int | float)}
                if isinstance(stats, dict)
                else {}
            )
            self.received.append(({k: np.array(v) for k, v in arrays.items()}, stats))
            self._reply(identity, {"v": PROTOCOL, "id": rid, "ok": True})
        except wire.WireError as err:
            self.rejected += 1
            self._reply(identity, wire.error_header(rid, err.code, err.message))

    def _check_transitions(self, arrays: dict[str, np.ndarray]) -> None:
        if set(arrays) != set(self.spec):
            missing, extra = sorted(set(self.spec) - set(arrays)), sorted(set(arrays) - set(self.spec))
            raise wire.WireError(
                wire.ErrorCode.WRONG_KEYS, f"transitions: missing {missing}, unknown {extra}"
            )
        n = None
        for key, (shape, dtype) in self.spec.items():
            arr = arrays[key]
            if arr.shape[1:] != shape or arr.dtype != dtype:
                raise wire.WireError(
                    wire.ErrorCode.BAD_SHAPE,
                    f"{key!r}: got {arr.dtype} {arr.shape}, expected {dtype} (N, {', '.join(map(str, shape))})",
                )
            if n is not None and len(arr) != n:
                raise wire.WireError(wire.ErrorCode.BAD_SHAPE, f"{key!r}: {len(arr)} rows, others have {n}")
            n = len(arr)

    def close(self) -> None:
        self.socket.close(0)
        if self._auth is not None:
            self._auth.stop()
        self.context.term()


class ActorClient:
    """The actor's side: a REQ socket to the learner (CURVE when keys are given)."""

    def __init__(
        self,
        endpoint: str,
        client_key: str | Path = "",
        server_public: str | Path = "",
        timeout_s: float = 10.0,
    ):
        from robot_rl.serving import curve

        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        if client_key:
            server = curve.load_keypair(server_public, need_secret=False)
            curve.make_client_socket_secure(self.socket, curve.load_keypair(client_key), server.public)
        self.socket.connect(endpoint)
        self.timeout_ms = int(timeout_s * 1000)
        self._id = 0

    def _call(self, header: dict, arrays: dict | None = None) -> tuple[dict, list]:
        self._id += 1
        self.socket.send_multipart(wire.encode({"v": PROTOCOL, "id": self._id, **header}, arrays), copy=False)
        if not self.socket.poll(self.timeout_ms):
            raise LinkError(f"the learner did not answer within {self.timeout_ms} ms")
        frames = self.socket.recv_multipart(copy=False)
        reply = wire.unpack_header(frames[0].bytes, wire.Limits())
        if not reply.get("ok"):
            error = reply.get("error", {})
            raise LinkError(
                f"learner refused {header.get('op')}: {error.get('code')}: {error.get('message')}"
            )
        return reply, frames[1:]

    def send_transitions(
        self, transitions: dict[str, np.ndarray], stats: dict[str, float] | None = None
    ) -> None:
        self._call({"op": "transitions", "stats": stats or {}}, transitions)

    def fetch_weights(self, have: int) -> tuple[dict[str, torch.Tensor], int] | None:
        reply, frames = self._call({"op": "weights", "have": have})
        if not frames:
            return None
        arrays = wire.decode_arrays(wire.array_specs(reply, wire.Limits()), frames)
        return {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, int(reply["version"])

    def close(self) -> None:
        self.socket.close(0)
        self.context.term()


class RemoteActors:
    """The learner loop's view of remote actors: the EnvActor interface over a LearnerLink."""

    def __init__(self, link: LearnerLink, poll_ms: int = 50):
        self.link = link
        self.poll_ms = poll_ms
        self.last_env_steps = 0
        self.last_transitions = 0

    def step(self, explore_uniform: bool = False):  # noqa: ARG002 - actors explore on their side
        """The next episode any actor sent (waiting up to poll_ms); (None, None) when none came."""
        self.link.poll(self.poll_ms)
        if not self.link.received:
            self.last_env_steps = self.last_transitions = 0
            return None, None
        transitions, stats = self.link.received.popleft()
        self.last_env_steps = self.last_transitions = len(next(iter(transitions.values())))
        return transitions, {"return": 0.0, "success": 0.0, **stats, "length": float(self.last_env_steps)}

    def load_weights(self, tensors: dict[str, torch.Tensor], version: int) -> None:
        self.link.publish(tensors, version)

    def restart_episode(self, episodes_done: int) -> None:
        """Remote actors keep their own episodes; nothing to do here."""


def run_remote_actor(
    env, policy, client: ActorClient, env_steps: int, weights_every: int = 100, seed: int = 0
) -> int:
    """An actor process: step `env` with `policy` (weights from the learner), send every episode."""
    from robot_rl.training.online import EnvActor

    actor = EnvActor(env, policy, seed=seed)
    fresh = client.fetch_weights(0)
    if fresh is not None:
        actor.load_weights(*fresh)
    steps = 0
    while steps < env_steps:
        transitions, stats = actor.step()
        steps += actor.last_env_steps
        if transitions is not None:
            client.send_transitions(transitions, stats)
        if steps % weights_every == 0:
            fresh = client.fetch_weights(actor.version)
            if fresh is not None:
                actor.load_weights(*fresh)
        time.sleep(0)
    return steps
