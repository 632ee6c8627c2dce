"""Inference serving: round-trip latency, throughput and overhead, against openpi's and LeRobot's transports.

    .venv/bin/python bench/serving.py                # defaults: DiffusionPolicy sizes of the paper
    .venv/bin/python bench/serving.py --small        # tiny U-Net, for a quick look on a CPU
    make bench-env                                   # installs the peers (websockets, grpcio)

What runs, all on loopback, each server in its own process, in the same run:

  1. our server (`InferenceServer`, insecure loopback, max_batch 16, no batch wait, default
     inline_max_ms: a lone request to a policy measured under 1 ms runs on the I/O thread) holding
       student   one-step consistency DiffusionPolicy, state + two 96x96 cameras
       ddim10    DDIM-10 DiffusionPolicy, same observation
       state     one-step policy on the state alone
       null      returns a zero chunk at once: what is left is the transport
     For each real policy: p50/p99 round trip of one client, the same policy called in
     process (same weights, same observation), the overhead (round trip minus the server's own
     policy time for that request; and p50 minus in-process p50), and the throughput of 8
     concurrent clients (threads in this process).
  2. transports for the same observation (state + two 96x96 uint8 images, To = 2), every
     server decoding the observation and answering with a (Ta, A) float32 chunk:
       ours       ZeroMQ, msgpack header + raw frames, the `null` policy (full server path)
       websocket  openpi's transport: `websockets` + msgpack with openpi's ndarray packing
       grpc       LeRobot's async-inference transport: gRPC carrying pickled payloads
                  (one unary call per step; LeRobot's streaming + polling pair costs more)
     printed as ratios peer / ours, and for reference (not compared with the peers):
       ours via policy thread   a second server with inline_max_ms 0: the null policy pays the
                                hand-off to its thread, as every policy slower than 1 ms does
       ours over ipc://         a third server bound to ipc:// (same-host serving)
       bare ZeroMQ echo         a ROUTER answering a fixed chunk, nothing else: the floor for any
                                ZeroMQ server; "ws / echo" is the best ratio one could reach here

The pickle lives only inside the gRPC peer baseline, never in robot_rl. Goals (issue 6):
overhead <= 150 us p50 for the state observation; >= 2x lower round trip than the websocket
baseline and >= 3x lower than the gRPC one.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import pickle
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robot_rl import keys  # noqa: E402

TO, TA, A = 2, 8, 7
IMAGE = (96, 96, 3)
CAMERAS = ("front", "wrist")


# ---------------------------------------------------------------------------------------
# Policies and observations


def make_policy(kind: str, small: bool, seed: int = 0):
    import torch

    from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig
    from robot_rl.policies.diffusion import ObsFeature, SamplerConfig, UNetConfig

    torch.manual_seed(seed)
    spec = {
        keys.JOINT_POS: ObsFeature((6,)),
        keys.JOINT_VEL: ObsFeature((6,)),
        keys.GRIPPER_POS: ObsFeature((1,)),
    }
    if kind != "state":
        spec.update({keys.image_key(c): ObsFeature(IMAGE, "uint8") for c in CAMERAS})
    unet = UNetConfig(down_dims=(32, 64, 128), n_groups=8) if small else UNetConfig()
    if kind == "ddim10":
        sampler, pred = SamplerConfig(kind="ddim", num_steps=10), "epsilon"
    else:  # the distilled student: one consistency step
        sampler, pred = SamplerConfig(kind="consistency", num_steps=1), "sample"
    cfg = DiffusionPolicyConfig(
        obs_spec=spec,
        action_dim=A,
        obs_horizon=TO,
        pred_horizon=16,
        action_horizon=TA,
        prediction_type=pred,
        unet=unet,
        sampler=sampler,
    )
    return DiffusionPolicy(cfg).eval()


class NullPolicy:
    """Answers a zero chunk at once: a server holding it measures the transport alone."""

    def __init__(self, with_images: bool):
        self.obs_spec = {
            keys.JOINT_POS: ((6,), "float32"),
            keys.JOINT_VEL: ((6,), "float32"),
            keys.GRIPPER_POS: ((1,), "float32"),
        }
        if with_images:
            self.obs_spec.update({keys.image_key(c): (IMAGE, "uint8") for c in CAMERAS})
        self.obs_horizon, self.action_horizon, self.action_dim = TO, TA, A

    def predict_action(self, obs):
        import torch

        b = next(iter(obs.values())).shape[0]
        return torch.zeros((b, TA, A))

    def to(self, device):
        return self

    def state_dict(self):
        return {}


def make_obs(with_images: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = {
        keys.JOINT_POS: rng.normal(size=(TO, 6)).astype(np.float32),
        keys.JOINT_VEL: rng.normal(size=(TO, 6)).astype(np.float32),
        keys.GRIPPER_POS: rng.random((TO, 1)).astype(np.float32),
    }
    if with_images:
        for c in CAMERAS:
            obs[keys.image_key(c)] = rng.integers(0, 256, (TO, *IMAGE), dtype=np.uint8)
    return obs


# ---------------------------------------------------------------------------------------
# Servers (each in its own process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_our_server(
    port: int, small: bool, device: str, ready, stop, bind: str = "", inline_max_ms: float | None = None
) -> None:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    from robot_rl.serving.cli import SWITCH_INTERVAL_S
    from robot_rl.serving.config import BatchingConfig, SecurityConfig, ServerConfig

    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as `robot-rl serve` does
    from robot_rl.serving.server import InferenceServer

    policies = {"null": NullPolicy(with_images=True), "null_state": NullPolicy(with_images=False)}
    if not bind:  # the main server also holds the real policies
        policies.update(
            {
                "student": make_policy("student", small),
                "ddim10": make_policy("ddim10", small),
                "state": make_policy("state", small),
            }
        )
    batching = {} if inline_max_ms is None else {"inline_max_ms": inline_max_ms}
    cfg = ServerConfig(
        bind=bind or f"tcp://127.0.0.1:{port}",
        device=device,
        security=SecurityConfig(insecure_loopback=True),
        batching=BatchingConfig(max_batch=16, budget_ms=0.0, **batching),
    )
    with InferenceServer(policies, cfg):
        ready.set()
        stop.wait()


def _openpi_pack(obj):
    # openpi_client/msgpack_numpy.py: arrays become {__ndarray__, data, dtype, shape}
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    return obj


def _openpi_unpack(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    return obj


def run_websocket_server(port: int, ready, stop) -> None:
    import msgpack
    import websockets.asyncio.server as ws_server

    action = np.zeros((TA, A), np.float32)

    async def handler(ws):
        async for message in ws:
            obs = msgpack.unpackb(message, object_hook=_openpi_unpack)
            assert keys.JOINT_POS in obs
            await ws.send(msgpack.packb({"actions": action}, default=_openpi_pack))

    async def main():
        async with ws_server.serve(handler, "127.0.0.1", port, compression=None, max_size=None):
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.1)

    asyncio.run(main())


def run_zmq_echo_server(port: int, ready, stop) -> None:
    """The floor: a bare ROUTER answering a fixed chunk, no validation, no inference thread."""
    import zmq

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(f"tcp://127.0.0.1:{port}")
    header = b"\x80" * 64
    action = np.zeros((TA, A), np.float32).tobytes()
    ready.set()
    while not stop.is_set():
        if router.poll(100):
            frames = router.recv_multipart(copy=False)
            router.send_multipart([frames[0], header, action])
    ctx.destroy(linger=0)


GRPC_METHOD = "/lerobot.AsyncInference/Infer"


def run_grpc_server(port: int, ready, stop) -> None:
    from concurrent import futures

    import grpc

    action = np.zeros((TA, A), np.float32)

    def infer(request: bytes, context) -> bytes:
        obs = pickle.loads(request)  # noqa: S301 (the peer's transport, as LeRobot does it)
        assert keys.JOINT_POS in obs
        return pickle.dumps(action)

    handler = grpc.method_handlers_generic_handler(
        "lerobot.AsyncInference", {"Infer": grpc.unary_unary_rpc_method_handler(infer)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    stop.wait()
    server.stop(0)


# ---------------------------------------------------------------------------------------
# Measurement


def percentiles(seconds: list[float]) -> tuple[float, float]:
    arr = np.asarray(seconds) * 1e6
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def throughput(endpoint: str, policy: str, obs, clients: int, per_client: int) -> float:
    from robot_rl.serving.client import InferenceClient, ZmqTransport

    barrier = threading.Barrier(clients + 1)
    errors = []

    def run():
        try:
            with InferenceClient(ZmqTransport(endpoint), timeout_s=60) as c:
                c.infer(policy, obs)
                barrier.wait()
                for _ in range(per_client):
                    c.infer(policy, obs)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return clients * per_client / (time.perf_counter() - t0)


def start(target, *args, **kwargs):
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=target, args=(*args, ready, stop), kwargs=kwargs, daemon=True)
    proc.start()
    if not ready.wait(timeout=600):
        raise RuntimeError(f"{target.__name__} did not start")
    return proc, stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="tiny U-Net (quick CPU run); default: paper sizes"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (server and in-process)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per measurement")
    parser.add_argument(
        "--policy-requests", type=int, default=0, help="timed requests per real policy (default: --requests)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for throughput")
    parser.add_argument("--transports-only", action="store_true", help="skip the policy section")
    args = parser.parse_args()
    n, warm = args.requests, max(10, args.requests // 10)
    n_policy = args.policy_requests or n

    import torch

    from robot_rl.serving.client import InferenceClient, ZmqTransport
    from robot_rl.serving.server import resolve_device

    device = resolve_device(args.device)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    print(
        f"bench/serving.py  device={device}  cpu_count={os.cpu_count()}  small={args.small}  torch={torch.__version__}"
    )

    port = free_port()
    ours, ours_stop = start(run_our_server, port, args.small, device)
    endpoint = f"tcp://127.0.0.1:{port}"
    img_obs, state_obs = make_obs(True), make_obs(False)
    results = {}
    try:
        client = InferenceClient(ZmqTransport(endpoint), timeout_s=120)
        print("\n== policies: round trip vs in process (batch 1, one client) ==")
        print(
            f"{'policy':10s} {'obs':12s} {'rtt p50':>10s} {'rtt p99':>10s} {'inproc p50':>11s} "
            f"{'overhead p50':>13s} {'(rtt-p50 - inproc-p50)':>23s} {'thrpt 8 clients':>16s}"
        )
        for name, obs in (
            () if args.transports_only else (("state", state_obs), ("student", img_obs), ("ddim10", img_obs))
        ):
            policy = make_policy(name, args.small).to(device)
            tobs = {k: torch.from_numpy(v[None]).to(device) for k, v in obs.items()}

            def call(policy=policy, tobs=tobs):
                out = policy.predict_action(tobs)
                return out.cpu()

            # Interleaved, one in-process call then one served call, so that load from other
            # processes on the machine hits both alike.
            for _ in range(warm):
                call()
                client.infer(name, obs)
            inproc, rtts, over = [], [], []
            for _ in range(n_policy):
                t = time.perf_counter()
                call()
                inproc.append(time.perf_counter() - t)
                t = time.perf_counter()
                chunk = client.infer(name, obs)
                rtt = time.perf_counter() - t
                rtts.append(rtt)
                over.append(rtt - chunk.timings["infer_s"])
            rtt50, rtt99 = percentiles(rtts)
            in50, _ = percentiles(inproc)
            over50, _ = percentiles(over)
            thr = throughput(endpoint, name, obs, args.clients, max(5, n_policy // args.clients))
            label = "state" if name == "state" else "state+2x96²"
            print(
                f"{name:10s} {label:12s} {rtt50:8.0f}us {rtt99:8.0f}us {in50:9.0f}us {over50:11.0f}us "
                f"{rtt50 - in50:21.0f}us {thr:12.1f} req/s"
            )
            results[name] = dict(rtt50=rtt50, rtt99=rtt99, in50=in50, over50=over50, thr=thr)

        print("\n== transports, same observation (state + two 96x96 images), reply = (Ta, A) chunk ==")
        ws_port, g_port = free_port(), free_port()
        ws, ws_stop = start(run_websocket_server, ws_port)
        g, g_stop = start(run_grpc_server, g_port)
        z_port = free_port()
        z, z_stop = start(run_zmq_echo_server, z_port)
        w_port = free_port()
        w, w_stop = start(
            run_our_server, w_port, args.small, device, bind=f"tcp://127.0.0.1:{w_port}", inline_max_ms=0.0
        )
        ipc_dir = tempfile.mkdtemp(prefix="robot_rl_bench_")
        ipc_endpoint = f"ipc://{ipc_dir}/serving.sock"
        ipc_proc, i_stop = start(run_our_server, 0, args.small, device, bind=ipc_endpoint)
        via_thread = InferenceClient(ZmqTransport(f"tcp://127.0.0.1:{w_port}"), timeout_s=120)
        over_ipc = InferenceClient(ZmqTransport(ipc_endpoint), timeout_s=120)
        import zmq

        from robot_rl.serving import wire

        z_sock = zmq.Context.instance().socket(zmq.DEALER)
        z_sock.linger = 0
        z_sock.connect(f"tcp://127.0.0.1:{z_port}")

        def zmq_echo_call():
            z_sock.send_multipart(wire.encode({"v": 1, "op": "infer", "id": 1}, img_obs), copy=False)
            z_sock.recv_multipart()

        import grpc
        import msgpack
        from websockets.sync.client import connect

        conn = connect(f"ws://127.0.0.1:{ws_port}", compression=None, max_size=None)
        channel = grpc.insecure_channel(f"127.0.0.1:{g_port}")
        stub = channel.unary_unary(GRPC_METHOD)

        def ws_call():
            conn.send(msgpack.packb(img_obs, default=_openpi_pack))
            reply = msgpack.unpackb(conn.recv(), object_hook=_openpi_unpack)
            assert reply["actions"].shape == (TA, A)

        def grpc_call():
            reply = pickle.loads(stub(pickle.dumps(img_obs)))  # noqa: S301 (peer baseline only)
            assert reply.shape == (TA, A)

        calls = {
            "ours": lambda: client.infer("null", img_obs),
            "ours_state": lambda: client.infer("null_state", state_obs),
            "ours_thread": lambda: via_thread.infer("null", img_obs),
            "ours_ipc": lambda: over_ipc.infer("null", img_obs),
            "ws": ws_call,
            "grpc": grpc_call,
            "zmq_echo": zmq_echo_call,
        }
        times = {k: [] for k in calls}
        order = list(calls)
        rng = np.random.default_rng(0)
        for i in range(warm + n):  # round robin in a shuffled order: load drifts hit every transport alike
            rng.shuffle(order)
            for k in order:
                t = time.perf_counter()
                calls[k]()
                if i >= warm:
                    times[k].append(time.perf_counter() - t)
        conn.close()
        channel.close()
        client.close()
        via_thread.close()
        over_ipc.close()
        z_sock.close()
        for stop_event in (ws_stop, g_stop, z_stop, w_stop, i_stop):
            stop_event.set()
        for proc in (ws, g, z, w, ipc_proc):
            proc.join(timeout=10)
        shutil.rmtree(ipc_dir, ignore_errors=True)
        ours50, ours99 = percentiles(times["ours"])
        s50, s99 = percentiles(times["ours_state"])
        ws_rtt, grpc_rtt, echo_rtt = times["ws"], times["grpc"], times["zmq_echo"]
        thread_rtt, ipc_rtt = times["ours_thread"], times["ours_ipc"]
    finally:
        ours_stop.set()
        ours.join(timeout=10)
    ws50, ws99 = percentiles(ws_rtt)
    g50, g99 = percentiles(grpc_rtt)
    print(f"{'transport':34s} {'p50':>9s} {'p99':>9s} {'p50 ratio peer/ours':>20s}")
    print(f"{'ours (ZeroMQ, null policy)':34s} {ours50:7.0f}us {ours99:7.0f}us {'1.00x':>20s}")
    print(f"{'openpi websocket + msgpack':34s} {ws50:7.0f}us {ws99:7.0f}us {ws50 / ours50:19.2f}x")
    print(f"{'LeRobot gRPC + pickle':34s} {g50:7.0f}us {g99:7.0f}us {g50 / ours50:19.2f}x")
    e50, e99 = percentiles(echo_rtt)
    t50, t99 = percentiles(thread_rtt)
    i50, i99 = percentiles(ipc_rtt)
    print("for reference:")
    print(f"{'ours, null via the policy thread':34s} {t50:7.0f}us {t99:7.0f}us {t50 / ours50:19.2f}x")
    print(f"{'ours over ipc:// (null policy)':34s} {i50:7.0f}us {i99:7.0f}us {i50 / ours50:19.2f}x")
    print(f"{'bare ZeroMQ echo (the floor)':34s} {e50:7.0f}us {e99:7.0f}us {e50 / ours50:19.2f}x")
    print(f"{'ours, state only (null policy)':34s} {s50:7.0f}us {s99:7.0f}us")
    print(
        f"best ratios any ZeroMQ server could reach here (peer / bare echo): websocket "
        f"{ws50 / e50:.2f}x, gRPC {g50 / e50:.2f}x"
    )

    print("\n== goals ==")
    if "state" in results:
        st = results["state"]
        print(
            f"overhead p50, state observation: {st['over50']:.0f} us (goal <= 150 us): "
            f"{'met' if st['over50'] <= 150 else 'NOT met'}"
        )
    print(
        f"websocket / ours: {ws50 / ours50:.2f}x (goal >= 2x): {'met' if ws50 / ours50 >= 2 else 'NOT met'}"
    )
    print(f"gRPC / ours:      {g50 / ours50:.2f}x (goal >= 3x): {'met' if g50 / ours50 >= 3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
