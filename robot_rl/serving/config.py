"""The server's typed config, and what counts as a loopback endpoint.

    cfg = from_yaml(ServerConfig, "serve.yaml")     # or ServerConfig(bind=..., policies={...})

Security rule: an endpoint beyond loopback (tcp://0.0.0.0, tcp://*, a LAN address) needs
CURVE keys, always. Loopback (tcp://127.x, tcp://localhost, tcp://[::1]) and ipc:// may
run without keys only when `insecure_loopback` says so explicitly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from robot_rl.serving.wire import Limits


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching per policy.

    A batch takes every request already queued (up to `max_batch`). When `budget_ms` > 0
    the worker also waits for more, but never past `budget_ms` after the first request of
    the batch arrived:

        arrival of first request ──┬── budget_ms ──┐
                                   │ collect more  │ run the batch (or earlier when full)

    A request that arrives alone (nothing else was waiting on the socket, nothing queued or
    running for its policy) skips the hand-off to the policy's thread and runs on the I/O
    thread, when all of these hold: `budget_ms` is 0 (no batch wait was asked for), the policy
    is not a compiled CUDA graph (those stay on the thread that recorded them), and the
    policy's measured batch-1 time is at most `inline_max_ms`. So the I/O thread is never
    busy with a policy for much longer than `inline_max_ms`: pings, status requests and other
    policies' requests wait at most that long, and long policies (DDIM-10) always run on
    their own thread. Requests that arrive together still go to the thread and are batched.
    """

    max_batch: int = 16
    budget_ms: float = 0.0
    max_queue: int = 256  # per policy; beyond it requests get OVERLOADED
    inline_max_ms: float = 1.0  # see below; 0 sends every request through the policy's thread

    def __post_init__(self):
        if self.max_batch < 1 or self.max_queue < 1:
            raise ValueError("max_batch and max_queue must be >= 1")
        if not 0 <= self.budget_ms <= 1000:
            raise ValueError("budget_ms must be in [0, 1000]")
        if not 0 <= self.inline_max_ms <= 100:
            raise ValueError("inline_max_ms must be in [0, 100]")


@dataclass(frozen=True)
class SecurityConfig:
    server_key: str = ""  # path to the server's .key_secret
    clients: str = ""  # allowed-keys file: robots (infer, ping, status)
    learners: str = ""  # allowed-keys file: learners (also update)
    insecure_loopback: bool = False  # serve loopback/ipc without keys; refused beyond loopback
    insecure_updates: bool = False  # without keys, accept weight updates from any local process

    @property
    def has_keys(self) -> bool:
        return bool(self.server_key)


@dataclass(frozen=True)
class ServerConfig:
    bind: str = "tcp://127.0.0.1:5555"
    policies: dict[str, str] = field(default_factory=dict)  # name -> checkpoint directory
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    security: SecurityConfig = field(default_factory=SecurityConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    limits: Limits = field(default_factory=Limits)
    metrics_port: int = 0  # 0: no HTTP metrics; otherwise Prometheus text on metrics_host:port/metrics
    metrics_host: str = "127.0.0.1"
    compile: Literal["off", "auto"] = "off"  # auto: on CUDA, keep torch.compile only where measured faster
    int8: bool = False  # serve diffusion policies' int8 copies, on CPU (DiffusionPolicy.quantized_int8)

    def __post_init__(self):
        endpoint_host(self.bind)  # raises for a malformed endpoint
        if not 0 <= self.metrics_port < 65536:
            raise ValueError("metrics_port must be in [0, 65535]")
        if self.int8 and self.device not in ("auto", "cpu"):
            raise ValueError(f"int8 serves on CPU; drop int8 or device {self.device!r}")
        check_security(self.bind, self.security)


def endpoint_host(endpoint: str) -> str | None:
    """The host of a tcp:// endpoint, None for ipc:// and inproc://; ValueError otherwise."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return None
    if not endpoint.startswith("tcp://"):
        raise ValueError(f"endpoint {endpoint!r} must start with tcp://, ipc:// or inproc://")
    rest = endpoint[len("tcp://") :]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not (port == "*" or port.isdigit()):
        raise ValueError(f"endpoint {endpoint!r} must look like tcp://HOST:PORT")
    return host.strip("[]")


def is_loopback(endpoint: str) -> bool:
    host = endpoint_host(endpoint)
    if host is None:
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: assume it reaches the network


def check_security(bind: str, security: SecurityConfig) -> None:
    """Refuse the combinations that would expose an unauthenticated server."""
    if security.has_keys:
        if not security.clients and not security.learners:
            raise ValueError("a server key needs at least one allowed-keys file (clients or learners)")
        return
    if security.clients or security.learners:
        raise ValueError("allowed-keys files need the server's own key (--server-key)")
    if not is_loopback(bind):
        raise ValueError(
            f"refusing to serve {bind} without CURVE keys: it is reachable beyond loopback. "
            "Make keys with `robot-rl keygen server` and `robot-rl keygen robot1`, then pass "
            "--server-key server.key_secret --clients allowed_clients.txt"
        )
    if not security.insecure_loopback:
        raise ValueError(
            f"no CURVE keys given for {bind}; pass --insecure-loopback to serve loopback without "
            "authentication or encryption"
        )
