"""`robot-rl serve --policy NAME=CKPT ... --bind tcp://HOST:PORT`: run the inference server.

    robot-rl keygen server && robot-rl keygen robot1
    echo "$(grep public-key keys/robot1.key | cut -d'"' -f2)  # robot1" > keys/clients.txt
    robot-rl serve --policy pick=runs/pick/ckpt --bind tcp://0.0.0.0:5555 \\
        --server-key keys/server.key_secret --clients keys/clients.txt --metrics-port 9100

A bind beyond loopback without --server-key refuses to start; loopback without keys needs
--insecure-loopback. `--config serve.yaml` reads a ServerConfig; flags given on the command
line override it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

SWITCH_INTERVAL_S = 2e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file with a ServerConfig (flags override it)")
    parser.add_argument(
        "--policy", action="append", default=[], metavar="NAME=CKPT", help="a policy to serve (repeatable)"
    )
    parser.add_argument("--bind", help="tcp://HOST:PORT or ipc://PATH (default tcp://127.0.0.1:5555)")
    parser.add_argument("--server-key", help="the server's NAME.key_secret")
    parser.add_argument("--clients", help="allowed-keys file: robots (infer, ping, status)")
    parser.add_argument("--learners", help="allowed-keys file: learners (may also push weights)")
    parser.add_argument(
        "--insecure-loopback",
        action="store_true",
        help="serve loopback/ipc without authentication or encryption",
    )
    parser.add_argument(
        "--insecure-updates",
        action="store_true",
        help="with --insecure-loopback: accept weights from local processes",
    )
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--max-batch", type=int, help="largest inference batch (default 16)")
    parser.add_argument("--batch-budget-ms", type=float, help="longest wait to fill a batch (default 0)")
    parser.add_argument(
        "--inline-max-ms",
        type=float,
        help="a lone request to a policy measured at most this fast runs on the I/O thread (default 1; 0: never)",
    )
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics on this port (0: off)")
    parser.add_argument("--metrics-host", help="address for /metrics (default 127.0.0.1)")
    parser.add_argument(
        "--compile", choices=["off", "auto"], help="auto: on CUDA keep torch.compile if faster"
    )
    parser.add_argument(
        "--int8",
        action="store_const",
        const=True,
        help="serve diffusion policies with int8 U-Nets, on CPU (faster for large networks; no weight updates)",
    )


def build_config(args: argparse.Namespace):
    from robot_rl.config.loader import from_dict, load_yaml
    from robot_rl.serving.config import ServerConfig

    data = load_yaml(args.config) if args.config else {}
    source = args.config or "command line"
    policies = dict(data.get("policies") or {})
    seen = set()
    for spec in args.policy:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--policy {spec!r} must be NAME=CHECKPOINT")
        if name in seen:
            raise ValueError(f"--policy {name!r} given twice")
        seen.add(name)
        policies[name] = path
    data["policies"] = policies
    sec = dict(data.get("security") or {})
    for flag, key in (("server_key", "server_key"), ("clients", "clients"), ("learners", "learners")):
        if getattr(args, flag):
            sec[key] = getattr(args, flag)
    if args.insecure_loopback:
        sec["insecure_loopback"] = True
    if args.insecure_updates:
        sec["insecure_updates"] = True
    data["security"] = sec
    batching = dict(data.get("batching") or {})
    if args.max_batch is not None:
        batching["max_batch"] = args.max_batch
    if args.batch_budget_ms is not None:
        batching["budget_ms"] = args.batch_budget_ms
    if args.inline_max_ms is not None:
        batching["inline_max_ms"] = args.inline_max_ms
    data["batching"] = batching
    for flag in ("bind", "device", "metrics_port", "metrics_host", "compile", "int8"):
        if getattr(args, flag) is not None:
            data[flag] = getattr(args, flag)
    config = from_dict(ServerConfig, data, source=source)
    if not config.policies:
        raise ValueError("no policies to serve; pass --policy NAME=CHECKPOINT")
    return config


def run(args: argparse.Namespace) -> int:
    import faulthandler
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # `kill -USR1 <pid>` prints every thread's Python stack to stderr: for a server that hangs.
    try:
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError, OSError):  # stderr is not a file (embedded, captured)
        pass
    config = build_config(args)  # security and endpoint checks happen here, before any model loads
    for name, path in config.policies.items():
        if not Path(path).is_dir():
            raise FileNotFoundError(f"policy {name!r}: no checkpoint directory {path}")
    from robot_rl.policies import load_policy
    from robot_rl.serving.server import InferenceServer

    policies = {}
    for name, path in config.policies.items():
        policies[name] = load_policy(path)
    # This process only serves: let the I/O thread take the GIL back from an inference thread
    # within 0.2 ms instead of the default 5 ms (measured: bench/serving.py, README).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    server = InferenceServer(policies, config).start()
    where = (
        f", metrics on http://{config.metrics_host}:{server.metrics_port}/metrics"
        if server.metrics_port
        else ""
    )
    print(f"serving {', '.join(policies)} on {server.endpoint}{where}", flush=True)
    server.serve_forever()
    return 0
