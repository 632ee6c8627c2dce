"""Control-loop benchmark: timing jitter under load, and smoothness at chunk seams.

    .venv/bin/python bench/control_loop.py                   # 60 s loop + 20 s per peer
    .venv/bin/python bench/control_loop.py --duration 10 --peer-duration 5   # quick look

1. Timing. ControlLoop runs at the hardware config's rate (sim_ur5e: 500 Hz) for --duration
   seconds against a fake arm, a policy thread submits a chunk every 0.1 s, and a second
   process spins a CPU core the whole time (--busy 0 turns it off; it is not pinned to any
   core and not reniced: the kernel puts it where it likes). Printed: tick lateness
   (start - deadline) and period error (|start_k - start_k-1 - period|) p50 / p99 / max, missed
   deadlines, compute time. Peers measured in the same run, same load: an rclpy wall timer at
   the same rate (what a ROS node would use, normal priority), and a plain `time.sleep` loop
   in a thread with the same scheduling class as ours (so the ratio is sleep-then-spin's).

   What is measured is the bare loop in a process set up as a controller process would be
   (robot_rl/control/realtime.py): the loop thread asks for SCHED_FIFO at
   --realtime-priority (default 50, the ros2_control convention; 0: normal scheduling), is
   pinned to --loop-cpu only when given (default: not pinned), the thread submitting chunks
   runs at normal priority (--submitter-priority N: SCHED_FIFO N), and the process gets
   nice -10 for all its threads (--process-nice; the busy process stays at nice 0),
   sys.setswitchinterval(0.5 ms), gc.freeze() and mlockall, as controller_node's main does.
   What the OS granted is printed. The busy process is started before any of that (nice 0,
   unpinned). The rclpy timer peer inherits nice -10; the fake arm of the controller_node run
   resets itself to nice 0.
   Last, the same loop runs inside ros_nodes/controller_node.py with its 2-thread rclpy
   executor in the process (run_node); the line printed for it says which it is.

2. Seams. One chunk stream (--stream FILE.npz, or the built-in recorded stream: a 10 Hz policy
   whose 16-step chunks re-plan with a few centiradians of disagreement and arrive 20-60 ms
   late; --record FILE.npz saves it) is executed at 500 Hz by: no blending (switch at once),
   LeRobot's async aggregation (0.3 old + 0.7 new on overlapping steps, re-implemented from its
   description, interpolated with the same spline as ours), our cross-fade and our ensemble.
   Printed: the largest acceleration jump between consecutive control periods at a seam, and
   the ratio against ours.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robot_rl.config.hardware import load_hardware_config  # noqa: E402
from robot_rl.control.config import ControlConfig, ExecutorConfig, LoopConfig  # noqa: E402
from robot_rl.control.executor import Chunk, ChunkExecutor, Submit  # noqa: E402
from robot_rl.control.loop import ControlLoop, JointState  # noqa: E402
from robot_rl.control.realtime import tune_process, tune_thread  # noqa: E402
from robot_rl.control.spline import CubicChunk  # noqa: E402

US = 1e6


def _busy_process() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _summary(name: str, lateness: np.ndarray | None, period_err: np.ndarray, missed: int, extra: str = ""):
    late = (
        ""
        if lateness is None
        else (
            f"lateness p50/p99/max {np.quantile(lateness, 0.5) * US:7.1f} / {np.quantile(lateness, 0.99) * US:7.1f} / "
            f"{lateness.max() * US:8.1f} us   "
        )
    )
    print(
        f"  {name:<22} {late}period error p50/p99/max {np.quantile(period_err, 0.5) * US:7.1f} / "
        f"{np.quantile(period_err, 0.99) * US:7.1f} / {period_err.max() * US:8.1f} us   missed {missed}{extra}"
    )


def _timing(loop) -> dict:
    """The loop's tick records, oldest first (its ring buffer unrolled), and its counters."""
    n = min(loop._ticks, len(loop._starts))
    order = np.arange(loop._ticks - n, loop._ticks) % len(loop._starts)
    return {
        "lateness": loop._lateness[order],
        "period_err": np.abs(np.diff(loop._starts[order]) - loop.period),
        "missed": loop._missed,
        "stats": loop.stats(),
    }


def run_ours(hw, duration: float, loop_config: LoopConfig, submitter_priority: int = 0) -> dict:
    lock = threading.Lock()
    position = np.append((hw.position_lower + hw.position_upper) / 2, 0.5)
    state = {"q": position}

    def read():
        with lock:
            return JointState(state["q"], time.monotonic())

    def send(command):
        with lock:
            state["q"] = command

    # Workspace box with the arm's FK, as deployed.
    loop = ControlLoop(hw, read, send, ControlConfig(loop=loop_config))
    stop = threading.Event()

    def policy():
        tune_thread(submitter_priority)  # 0: normal scheduling, like an inference client's thread
        while not stop.is_set():
            now = time.monotonic()
            times = now + 0.02 + 0.1 * np.arange(16)
            wave = 0.2 * np.sin(times[:, None] + np.arange(hw.num_joints))
            loop.submit(Chunk(times[0], 0.1, np.hstack([position[:-1] + wave, np.full((16, 1), 0.5)])))
            stop.wait(0.1)

    worker = threading.Thread(target=policy, daemon=True)
    loop.start()
    worker.start()
    for _ in tqdm(range(int(duration)), desc="ControlLoop", unit="s", leave=False):
        time.sleep(1.0)
    stop.set()
    loop.stop()
    worker.join()
    return {
        **_timing(loop),
        "reasons": loop.reason_counts,
        "error": loop.error,
        "thread": loop.thread_status,
    }


def run_node(hw, duration: float, loop_config: LoopConfig) -> dict | None:
    """The same loop inside ros_nodes/controller_node.py, configured as its `main` runs it: a
    2-thread MultiThreadedExecutor in the process, joint states arriving at the control rate
    and a chunk every 0.1 s from a fake arm in another process (bench/control_loop.py
    --fake-arm), commands published over DDS each tick. Its clock is ROS time (system time)."""
    try:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        from ros_nodes.controller_node import ControllerNode
    except ImportError as exc:
        print(f"  controller_node: skipped ({exc})")
        return None
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    arm = subprocess.Popen([sys.executable, __file__, "--fake-arm", "--hardware", hw.name], env=env)
    rclpy.init(
        args=[
            "--ros-args",
            "-p",
            f"hardware_config:={hw.name}",
            "-p",
            f"realtime_priority:={loop_config.realtime_priority}",
        ]
    )
    node = executor = spinner = None
    try:
        node = ControllerNode()
        executor = MultiThreadedExecutor(num_threads=2)  # as controller_node's main
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        for _ in tqdm(range(int(duration)), desc="controller_node", unit="s", leave=False):
            time.sleep(1.0)
        loop = node.loop
        if loop is None or loop._ticks < 2:
            print("  controller_node: the loop never ran (no joint states from the fake arm?)")
            return None
        loop.stop()
        return {
            **_timing(loop),
            "mode": loop.mode.value,
            "chunks": loop.executor.counts,
            "thread": loop.thread_status,
        }
    finally:
        if node is not None:
            node.close()
        if executor is not None:
            executor.shutdown()
            spinner.join()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        arm.kill()
        arm.wait()


def fake_arm(hardware: str) -> int:
    """Fake hardware for run_node: echoes each command as the measured position (published at
    the control rate, stamped now) and sends a 16-step chunk every 0.1 s."""
    import rclpy
    from rclpy.duration import Duration
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import JointState as JointStateMsg
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from ros_nodes import common

    os.setpriority(os.PRIO_PROCESS, 0, 0)  # the arm's driver is not part of the controller process
    hw = load_hardware_config(hardware)
    names = [*hw.joint_names, hw.gripper.name]
    home = np.append((hw.position_lower + hw.position_upper) / 2, 0.5)
    state = {"q": home.copy()}
    rclpy.init()
    node = rclpy.create_node("bench_fake_arm")
    pub_js = node.create_publisher(JointStateMsg, "joint_states", common.SENSOR_QOS)
    pub_chunk = node.create_publisher(JointTrajectory, "action_chunk", common.COMMAND_QOS)
    node.create_subscription(
        Float64MultiArray, "commands", lambda m: state.__setitem__("q", np.array(m.data)), common.COMMAND_QOS
    )

    def _joint_state(now):
        msg = JointStateMsg(name=names, position=[float(x) for x in state["q"]])
        msg.header.stamp = common.to_stamp(now)
        return msg

    def publish_chunk():
        now = common.now_sec(node)
        times = now + 0.02 + 0.1 * np.arange(16)
        wave = 0.2 * np.sin(times[:, None] + np.arange(hw.num_joints))
        positions = np.hstack([home[:-1] + wave, np.full((16, 1), 0.5)])
        msg = JointTrajectory(joint_names=names)
        msg.header.stamp = common.to_stamp(times[0])
        for i, row in enumerate(positions):
            step = Duration(nanoseconds=i * 100_000_000).to_msg()
            msg.points.append(JointTrajectoryPoint(positions=row.tolist(), time_from_start=step))
        pub_chunk.publish(msg)

    node.create_timer(hw.control_period_s, lambda: pub_js.publish(_joint_state(common.now_sec(node))))
    node.create_timer(0.1, publish_chunk)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


def cpu_per_tick(hw, use_workspace: bool, ticks: int = 5000) -> float:
    """CPU seconds one tick costs (read, watchdog, executor, filter, send), on a fake clock: a
    number the machine's load does not change much, unlike wall-clock timings."""
    now = [0.0]
    state = {"q": np.append((hw.position_lower + hw.position_upper) / 2, 0.5)}
    loop = ControlLoop(
        hw,
        lambda: JointState(state["q"], now[0]),
        lambda c: state.__setitem__("q", c),
        use_workspace=use_workspace,
        clock=lambda: now[0],
    )
    start = time.process_time()
    for k in range(ticks):
        if k % 50 == 0:
            times = now[0] + 0.02 + 0.1 * np.arange(16)
            wave = 0.2 * np.sin(times[:, None] + np.arange(hw.num_joints))
            loop.submit(Chunk(times[0], 0.1, np.hstack([state["q"][:-1] + wave, np.full((16, 1), 0.5)])))
        now[0] += hw.control_period_s
        loop.tick(now[0])
    return (time.process_time() - start) / ticks


def run_sleep_loop(period: float, duration: float, loop_config: LoopConfig) -> dict:
    """A plain sleep-until-deadline loop, in its own thread with the loop's scheduling settings."""
    out = {}
    worker = threading.Thread(target=lambda: out.update(_sleep_loop(period, duration, loop_config)))
    worker.start()
    worker.join()
    return out


def _sleep_loop(period: float, duration: float, loop_config: LoopConfig) -> dict:
    tune_thread(loop_config.realtime_priority, loop_config.cpus)
    starts, missed = [], 0
    deadline = time.monotonic() + period
    end = deadline + duration
    while deadline < end:
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        starts.append(now)
        deadline += period
        if now > deadline:
            skipped = int((now - deadline) // period) + 1
            missed += skipped
            deadline += skipped * period
    starts = np.array(starts)
    return {"period_err": np.abs(np.diff(starts) - period), "missed": missed}


def run_rclpy_timer(period: float, duration: float) -> dict | None:
    try:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
    except ImportError as exc:
        print(f"  rclpy timer: skipped ({exc})")
        return None
    rclpy.init()
    try:
        node = rclpy.create_node("bench_control_loop_timer")
        starts = []
        node.create_timer(period, lambda: starts.append(time.monotonic()))
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        end = time.monotonic() + duration
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown()
    starts = np.array(starts)
    gaps = np.diff(starts)
    missed = int(np.sum(np.maximum(np.round(gaps / period) - 1, 0)))
    return {"period_err": np.abs(gaps - period), "missed": missed}


# -- seams --------------------------------------------------------------------------------


def recorded_stream(num_chunks: int = 100, horizon: int = 16, seed: int = 7) -> dict[str, np.ndarray]:
    """A 10 Hz policy's chunk stream: a smooth task motion that each chunk re-plans with its own
    small error (the policy disagreeing with itself), stamped at its observation on a 0.1 s
    grid and arriving 20-60 ms later."""
    rng = np.random.default_rng(seed)
    dt, joints = 0.1, 7
    freq = rng.uniform(0.3, 1.0, joints)
    phase = rng.uniform(0, 2 * np.pi, joints)

    def motion(t):
        return 0.4 * np.sin(2 * np.pi * freq * t[:, None] + phase)

    # Chunk k is predicted from the observation at 0.1 k s, its first step applies then (the
    # common 10 Hz step grid LeRobot's queue relies on), and it arrives 20-60 ms later.
    t0 = dt * np.arange(num_chunks)
    arrival = t0 + rng.uniform(0.02, 0.06, num_chunks)
    positions = np.empty((num_chunks, horizon, joints))
    for k in range(num_chunks):
        times = t0[k] + dt * np.arange(horizon)
        drift = np.cumsum(rng.normal(0.0, 0.004, (horizon, joints)), axis=0)
        positions[k] = motion(times) + rng.normal(0.0, 0.02, joints) + drift
    positions[:, :, -1] = np.clip(positions[:, :, -1] + 0.5, 0, 1)  # gripper in [0, 1]
    return {"t0": t0, "dt": np.full(num_chunks, dt), "positions": positions, "arrival": arrival}


class LeRobotAggregate:
    """LeRobot async inference's action queue: on a new chunk, steps already queued become
    0.3 * old + 0.7 * new, later steps are appended; old steps are dropped. The queue's
    points are interpolated with the same natural cubic spline as ours."""

    def __init__(self):
        self.queue: dict[float, np.ndarray] = {}
        self.spline = None

    def submit(self, t0: float, dt: float, positions: np.ndarray, now: float) -> None:
        for i, action in enumerate(positions):
            t = round(t0 + i * dt, 6)
            self.queue[t] = 0.3 * self.queue[t] + 0.7 * action if t in self.queue else action
        # Three executed steps stay in the spline so that its natural end is not at `now`.
        keep = sorted(t for t in self.queue if t >= now - 3 * dt)
        self.queue = {t: self.queue[t] for t in keep}
        self.spline = CubicChunk(keep[0], dt, np.array([self.queue[t] for t in keep]))

    def sample(self, t: float) -> np.ndarray:
        return self.spline(t)


def seam_jumps(stream: dict[str, np.ndarray], rate_hz: float, window_s: float) -> dict[str, float]:
    period = 1.0 / rate_hz
    n = len(stream["t0"])
    dim = stream["positions"].shape[2]
    runners = {
        "none": ChunkExecutor(dim, ExecutorConfig(blend="none")),
        "lerobot 0.3/0.7": LeRobotAggregate(),
        "crossfade (ours)": ChunkExecutor(dim, ExecutorConfig(blend="crossfade", blend_window_s=window_s)),
        "ensemble (ours)": ChunkExecutor(dim, ExecutorConfig(blend="ensemble", blend_window_s=window_s)),
    }
    end = stream["arrival"][-1] + 0.5
    ticks = np.arange(stream["arrival"][0], end, period)
    out = {name: [] for name in runners}
    k = 0
    for t in ticks:
        while k < n and stream["arrival"][k] <= t:
            for runner in runners.values():
                t0, dt, pos = float(stream["t0"][k]), float(stream["dt"][k]), stream["positions"][k]
                if isinstance(runner, LeRobotAggregate):
                    runner.submit(t0, dt, pos, t)
                else:
                    runner.submit(Chunk(t0, dt, pos), t)
            k += 1
        for name, runner in runners.items():
            out[name].append(runner.sample(t))
    # Acceleration steps in the windows around seams (arrival .. arrival + window).
    in_seam = np.zeros(len(ticks), dtype=bool)
    for s in stream["arrival"][1:]:
        in_seam |= (ticks >= s - 3 * period) & (ticks <= s + window_s + 3 * period)
    result = {}
    for name, samples in out.items():
        y = np.array(samples)[:, :-1]  # arm joints
        acc = np.diff(y, 2, axis=0) / period**2
        step = np.abs(np.diff(acc, axis=0)).max(axis=1)
        result[name] = float(step[in_seam[3:]].max())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hardware", default="sim_ur5e")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of our loop (0: seams only)")
    parser.add_argument("--peer-duration", type=float, default=20.0, help="seconds of each peer loop")
    parser.add_argument("--busy", type=int, default=1, help="busy processes spinning during the timing runs")
    parser.add_argument(
        "--realtime-priority",
        type=int,
        default=LoopConfig().realtime_priority,
        help="SCHED_FIFO priority of the loop thread (0: normal scheduling)",
    )
    parser.add_argument(
        "--process-nice",
        type=int,
        default=-10,
        help="nice of this process's threads (as controller_node's main sets it); the busy process keeps 0",
    )
    parser.add_argument(
        "--submitter-priority",
        type=int,
        default=0,
        help="SCHED_FIFO priority of the thread that submits chunks (0: normal scheduling)",
    )
    parser.add_argument("--loop-cpu", type=int, action="append", default=[], help="pin the loop thread here")
    parser.add_argument(
        "--node-duration",
        type=float,
        default=20.0,
        help="seconds of the loop inside controller_node (0: skip)",
    )
    parser.add_argument("--fake-arm", action="store_true", help=argparse.SUPPRESS)  # run_node's other process
    parser.add_argument("--stream", type=Path, help="chunk stream .npz (t0, dt, positions, arrival)")
    parser.add_argument("--record", type=Path, help="save the built-in chunk stream here")
    args = parser.parse_args()
    if args.fake_arm:
        return fake_arm(args.hardware)
    hw = load_hardware_config(args.hardware)
    period = hw.control_period_s

    if args.stream:
        with np.load(args.stream, allow_pickle=False) as f:
            stream = {k: f[k] for k in ("t0", "dt", "positions", "arrival")}
    else:
        stream = recorded_stream()
    if args.record:
        np.savez(args.record, **stream)
    window = ControlConfig().executor.blend_window_s
    jumps = seam_jumps(stream, hw.control_rate_hz, window)

    if args.duration > 0:
        timing(hw, args)
    print(
        f"\n2. seams: largest acceleration step between consecutive {period * 1e3:g} ms periods at a chunk seam"
    )
    print(f"   ({len(stream['t0'])} chunks, blend window {window * 1e3:g} ms)")
    ref = jumps["crossfade (ours)"]
    for name, value in jumps.items():
        print(f"  {name:<18} {value:12.2f} rad/s^2   ({value / ref:8.1f}x ours)")
    return 0


def timing(hw, args) -> None:
    period = hw.control_period_s
    print(
        f"control loop benchmark: {hw.name}, {hw.control_rate_hz:g} Hz, {os.cpu_count()} CPUs, {args.busy} busy process(es)"
    )
    print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    loop_config = LoopConfig(realtime_priority=args.realtime_priority, cpus=tuple(args.loop_cpu))
    busy = [_busy_process() for _ in range(args.busy)]  # before tune_process: they keep nice 0
    try:
        process = tune_process(
            switch_interval_s=0.0005, freeze_gc=True, lock_memory=True, nice=args.process_nice
        )
        print(
            f"  process: nice {process.nice}, switch interval {process.switch_interval_s * 1e3:g} ms, "
            f"{process.gc_frozen} objects frozen out of the GC, memory locked: {process.memory_locked}"
            + "".join(f"; {p}" for p in process.problems)
        )
        ours = run_ours(hw, args.duration, loop_config, args.submitter_priority)
        load_during = os.getloadavg()
        sleeper = run_sleep_loop(period, args.peer_duration, loop_config)
        ros = run_rclpy_timer(period, args.peer_duration)
        node = run_node(hw, args.node_duration, loop_config) if args.node_duration > 0 else None
    finally:
        for p in busy:
            p.kill()
            p.wait()
    print(f"  load average during: {' '.join(f'{x:.2f}' for x in load_during)}")
    granted = ours["thread"]
    print(
        f"  loop thread: SCHED_FIFO {granted.fifo_priority or 'not granted (normal scheduling)'}, "
        f"cores {list(granted.cpus)}{'; ' if granted.problems else ''}{'; '.join(granted.problems)}"
    )
    print(
        f"  CPU per tick (fake clock, no load of its own): {cpu_per_tick(hw, False) * US:.0f} us, "
        f"{cpu_per_tick(hw, True) * US:.0f} us with the workspace FK (period {period * US:.0f} us)"
    )
    print(
        f"\n1. timing ({args.duration:g} s ours, {args.peer_duration:g} s per peer, "
        f"{args.node_duration:g} s controller_node)"
    )
    s = ours["stats"]
    _summary(
        "ControlLoop (ours)",
        ours["lateness"],
        ours["period_err"],
        ours["missed"],
        f"   compute p99 {s.compute_p99_s * US:.0f} us, spin margin {s.spin_margin_s * US:.0f} us, "
        f"{s.ticks} ticks",
    )
    _summary(
        "time.sleep loop", None, sleeper["period_err"], sleeper["missed"], "   (same scheduling as ours)"
    )
    if ros is not None:
        _summary("rclpy timer", None, ros["period_err"], ros["missed"])
    if node is not None:
        s = node["stats"]
        granted = node["thread"]
        _summary(
            "controller_node",
            node["lateness"],
            node["period_err"],
            node["missed"],
            f"   compute p99 {s.compute_p99_s * US:.0f} us, {s.ticks} ticks, mode {node['mode']}, "
            f"chunks accepted {node['chunks'][Submit.ACCEPTED]}, SCHED_FIFO {granted.fifo_priority or 'no'}",
        )
    ours_p99 = np.quantile(ours["period_err"], 0.99)
    for name, peer in (("time.sleep loop", sleeper), ("rclpy timer", ros)):
        if peer is not None:
            ratio = np.quantile(peer["period_err"], 0.99) / max(ours_p99, 1e-9)
            print(f"  period error p99: {name} / ours = {ratio:.1f}x")
    goal = "met" if ours_p99 <= 50e-6 else "NOT met"
    print(f"  goal p99 <= 50 us with the busy process: {goal} ({ours_p99 * US:.1f} us)")
    if ours["error"] is not None:
        print(f"  loop error: {ours['error']!r}")


if __name__ == "__main__":
    sys.exit(main())
