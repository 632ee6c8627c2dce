"""Helpers for tests/serving: tiny real DiffusionPolicies, observations, configs, CURVE clients."""

from __future__ import annotations

import numpy as np
import torch

from robot_rl import keys
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig
from robot_rl.policies.diffusion import ObsFeature, SamplerConfig, UNetConfig
from robot_rl.serving import curve
from robot_rl.serving.client import InferenceClient, ZmqTransport
from robot_rl.serving.config import SecurityConfig, ServerConfig

OBS_HORIZON = 2
ACTION_HORIZON = 4
ACTION_DIM = 7


def tiny_policy(seed: int = 0, steps: int = 1) -> DiffusionPolicy:
    """A real DiffusionPolicy, small enough for thousands of calls in a test (about 1 ms each)."""
    torch.manual_seed(seed)
    cfg = DiffusionPolicyConfig(
        obs_spec={keys.JOINT_POS: ObsFeature((6,)), keys.GRIPPER_POS: ObsFeature((1,))},
        action_dim=ACTION_DIM,
        obs_horizon=OBS_HORIZON,
        pred_horizon=8,
        action_horizon=ACTION_HORIZON,
        unet=UNetConfig(down_dims=(16, 32), kernel_size=3, n_groups=4, step_embed_dim=16),
        sampler=SamplerConfig(kind="ddim", num_steps=steps),
    )
    return DiffusionPolicy(cfg).eval()


def valid_obs(value: float = 0.0) -> dict[str, np.ndarray]:
    return {
        keys.JOINT_POS: np.full((OBS_HORIZON, 6), value, np.float32),
        keys.GRIPPER_POS: np.full((OBS_HORIZON, 1), 0.5, np.float32),
    }


def insecure_config(**kw) -> ServerConfig:
    return ServerConfig(bind="tcp://127.0.0.1:*", security=SecurityConfig(insecure_loopback=True), **kw)


def secure_config(key_set, **kw) -> ServerConfig:
    return ServerConfig(
        bind="tcp://127.0.0.1:*",
        security=SecurityConfig(
            server_key=str(key_set / "server.key_secret"),
            clients=str(key_set / "clients.txt"),
            learners=str(key_set / "learners.txt"),
        ),
        **kw,
    )


def secure_client(key_set, endpoint: str, name: str, timeout_s: float = 5.0) -> InferenceClient:
    transport = ZmqTransport(
        endpoint,
        client_key=curve.load_keypair(key_set / f"{name}.key_secret"),
        server_public=curve.load_keypair(key_set / "server.key", need_secret=False).public,
    )
    return InferenceClient(transport, timeout_s=timeout_s)


class RawPeer:
    """A bare DEALER socket for sending frames the client library would never produce."""

    def __init__(self, endpoint: str):
        import zmq

        self._zmq = zmq
        self.context = zmq.Context.instance()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)

    def send(self, frames) -> None:
        self.sock.send_multipart(frames)

    def recv(self, timeout_s: float = 5.0):
        """The next reply as (header dict, array frames), or None on timeout."""
        import msgpack

        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        frames = self.sock.recv_multipart()
        return msgpack.unpackb(frames[0], raw=False), frames[1:]

    def infer_frames(self, rid: int, policy: str = "pick", obs=None, stamp: float = 1.0):
        from robot_rl.serving import wire

        header = {"v": 1, "op": "infer", "id": rid, "policy": policy, "stamp": stamp}
        return [bytes(f) for f in wire.encode(header, valid_obs() if obs is None else obs)]

    def assert_serves(self, rid: int, timeout_s: float = 5.0) -> dict:
        """Send a valid request and wait for its reply, collecting the replies that come first."""
        self.send(self.infer_frames(rid))
        others = []
        while True:
            got = self.recv(timeout_s)
            assert got is not None, f"no reply to valid request {rid}"
            header, frames = got
            if header.get("id") == rid:
                assert header["ok"], header
                assert len(frames) == 1
                return {"reply": header, "others": others}
            others.append(header)

    def close(self) -> None:
        self.sock.close(linger=0)
