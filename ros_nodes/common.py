"""ROS plumbing shared by the nodes: spinning and shutdown, QoS, time, message conversion.

Only conversions and the main loop live here; what a node decides lives in robot_rl.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable

import numpy as np
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory

from robot_rl.config.hardware import HardwareConfig, load_hardware_config
from robot_rl.control.executor import Chunk

# Subscribers of joint states and cameras take the newest sample and never block a driver.
SENSOR_QOS = qos_profile_sensor_data
# Commands and chunks: every message matters, and only the newest few are worth keeping.
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Publishers of sensor data are reliable, so that reliable and best-effort subscribers both match.
SENSOR_PUB_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def run(make_node: Callable[[], Node], threads: int = 1, args: list[str] | None = None) -> int:
    """Init, spin until Ctrl-C / SIGTERM, destroy the node, shut down. Exit status 0 when clean;
    a node that sets `fatal` (an error in a thread of its own) has it raised here."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A callback or a take that was running when Ctrl-C arrived fails in odd ways (a publish
        # on a context going down; rclpy's bindings turning the interrupt into "Unable to convert
        # call argument"): that is the shutdown, not an error. rclpy shuts the context down from
        # a thread of its own, so give it a moment. Anything raised while it stays up is an error.
        if not _shutting_down_within(SHUTDOWN_GRACE_S):
            raise
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            # close() returning False: a thread of the node's still runs and may still publish,
            # so destroying the node under it could crash the process. Leave it to the exit.
            if close is None or close() is not False:
                node.destroy_node()
        rclpy.try_shutdown()
    fatal = getattr(node, "fatal", None)  # a node's own thread failed: the process fails with it
    if fatal is not None:
        raise fatal
    return 0


SHUTDOWN_GRACE_S = 0.5


def _shutting_down_within(timeout_s: float) -> bool:
    """True once the context is down (or Ctrl-C lands) within timeout_s; False if it stays up."""
    deadline = time.monotonic() + timeout_s
    try:
        while rclpy.ok():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
    except KeyboardInterrupt:
        pass
    return True


def logged_transition(callback: Callable) -> Callable:
    """rclpy turns an exception in a lifecycle callback into a silent ERROR; log it first."""

    @functools.wraps(callback)
    def wrapper(node, state):
        try:
            return callback(node, state)
        except Exception as exc:
            node.get_logger().error(f"{callback.__name__} failed: {exc}\n{traceback.format_exc()}")
            raise

    return wrapper


def autostart(node) -> None:
    """Configure and activate a lifecycle node now, as a lifecycle manager would; raise if it cannot."""
    from rclpy.lifecycle import TransitionCallbackReturn

    for name, trigger in (("configure", node.trigger_configure), ("activate", node.trigger_activate)):
        if trigger() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError(f"{node.get_name()}: {name} failed (the error is logged above)")


def hardware_from_parameter(node: Node, default: str = "sim_ur5e") -> HardwareConfig:
    name = node.declare_parameter("hardware_config", default).value
    return load_hardware_config(name)


def to_sec(stamp: TimeMsg) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(seconds: float) -> TimeMsg:
    sec, nanosec = divmod(int(round(seconds * 1e9)), 1_000_000_000)  # x.9999999997 -> x+1, 0
    return TimeMsg(sec=sec, nanosec=nanosec)


def now_sec(node: Node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def image_to_array(msg: Image) -> np.ndarray:
    """rgb8 / bgr8 / rgba8 / bgra8 / mono8 Image -> (H, W, 3) uint8 RGB. Other encodings: ValueError."""
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(msg.encoding)
    if channels is None:
        raise ValueError(f"image encoding {msg.encoding!r} not supported (rgb8, bgr8, rgba8, bgra8, mono8)")
    if msg.step < msg.width * channels or len(msg.data) < msg.step * msg.height:
        raise ValueError(
            f"image {msg.width}x{msg.height} {msg.encoding}: step {msg.step}, {len(msg.data)} bytes"
        )
    flat = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    pixels = flat[:, : msg.width * channels].reshape(msg.height, msg.width, channels)
    if msg.encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    rgb = pixels[..., :3]
    return np.ascontiguousarray(rgb[..., ::-1] if msg.encoding.startswith("bgr") else rgb)


def array_to_image(pixels: np.ndarray, stamp: TimeMsg, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = "rgb8"
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return msg


def diagnostics(node: Node, level: int, message: str, values: dict[str, object]) -> DiagnosticArray:
    status = DiagnosticStatus(level=level, name=node.get_fully_qualified_name(), message=message)
    status.hardware_id = node.get_name()
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def chunk_from_msg(msg: JointTrajectory, names: list[str]) -> Chunk:
    """A JointTrajectory (joint names in any order, equally spaced points) -> robot_rl.control's
    Chunk (t0, dt, positions in `names` order). ValueError if not."""
    index = {n: i for i, n in enumerate(msg.joint_names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"chunk lacks joint {missing[0]!r} (has {list(msg.joint_names)})")
    if not msg.points:
        raise ValueError("chunk has no points")
    order = [index[n] for n in names]
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    positions = np.array([[p.positions[i] for i in order] for p in msg.points], dtype=np.float64)
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    if len(times) > 1 and not np.allclose(np.diff(times), dt, atol=1e-6):
        raise ValueError("chunk points must be equally spaced in time")
    return Chunk(t0=to_sec(msg.header.stamp) + float(times[0]), dt=dt, positions=positions)
