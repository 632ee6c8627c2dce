"""MCAP / rosbag2 import: JointState, Image and JointTrajectory topics into episodes.

One bag (an .mcap file, or a rosbag2 folder holding .mcap files) becomes one episode. The
streams arrive at their own rates, so the episode is resampled on a fixed step grid:

    /joint_states      |||||||||||||||||||||||||||||||||||   (e.g. 500 Hz)
    /camera/front/...  |     |     |     |     |     |       (e.g. 30 Hz)
    /robot_rl/action_chunk  [=======chunk=======]  [=======chunk====...
    steps (rate_hz)    ^   ^   ^   ^   ^   ^   ^   ^
                       t0 = first time every stream has a message

At each step every key holds the latest message at or before that time: joint positions
and velocities, each camera's frame (rgb8 / bgr8 / mono8 -> uint8 H x W x 3), and as action
the point of the latest action chunk whose time (header.stamp + time_from_start) is the
latest at or before the step (before any chunk: hold the measured position). Stamps are
the messages' header stamps, or the log time when a stamp is zero. No ROS install is
needed: messages are decoded by mcap-ros2-support from the schemas inside the bag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.store import DataError, EpisodeMeta, EpisodeStore

JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"


@dataclass(frozen=True)
class McapImportConfig:
    rate_hz: float = 10.0  # step rate of the resampled episode
    joint_states_topic: str = "/joint_states"
    action_topic: str = "/robot_rl/action_chunk"
    # camera name -> topic; empty: every sensor_msgs/Image topic, named by /camera/<name>/...
    image_topics: dict[str, str] = field(default_factory=dict)
    joint_names: tuple[str, ...] = ()  # arm joints in order; empty: the first JointState's names
    gripper_joint: str = ""  # a JointState name holding the gripper; adds gripper_pos and an action dim

    def __post_init__(self):
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")


def _stamp(msg, log_time_ns: int) -> float:
    st = getattr(getattr(msg, "header", None), "stamp", None)
    if st is not None and (st.sec or st.nanosec):
        return st.sec + st.nanosec * 1e-9
    return log_time_ns * 1e-9


def _camera_name(topic: str) -> str:
    parts = [p for p in topic.split("/") if p]
    if len(parts) >= 2 and parts[0] == "camera":
        return parts[1]
    return "_".join(p for p in parts if p != "image_raw") or "camera"


def _image_array(msg, where: str) -> np.ndarray:
    h, w, enc = msg.height, msg.width, msg.encoding.lower()
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}.get(enc)
    if channels is None:
        raise DataError(
            f"{where}: image encoding {msg.encoding!r} not supported (rgb8, bgr8, mono8, rgba8, bgra8)"
        )
    raw = np.frombuffer(bytes(msg.data), np.uint8)
    if raw.size < msg.step * h or msg.step < w * channels:
        raise DataError(f"{where}: image data has {raw.size} bytes, expected step {msg.step} x height {h}")
    img = raw[: msg.step * h].reshape(h, msg.step)[:, : w * channels].reshape(h, w, channels)
    if enc.startswith("bgr"):
        img = img[..., [2, 1, 0]]
    elif enc == "mono8":
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _bag_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.mcap"))
        if not files:
            raise DataError(f"{path}: a rosbag2 folder with no .mcap files (only MCAP storage is read)")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return [path]


def read_bag(path: str | Path, config: McapImportConfig = McapImportConfig()) -> dict[str, np.ndarray]:
    """One bag as resampled per-step arrays keyed by robot_rl.keys names."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    path = Path(path)
    joints: list[tuple[float, object]] = []
    images: dict[str, list[tuple[float, object]]] = {}
    chunks: list[tuple[float, object]] = []
    for file in _bag_files(path):
        try:
            with open(file, "rb") as f:
                reader = make_reader(f, decoder_factories=[DecoderFactory()])
                wanted_images = {t: c for c, t in config.image_topics.items()}
                for schema, channel, message, msg in reader.iter_decoded_messages():
                    t = _stamp(msg, message.log_time)
                    if channel.topic == config.joint_states_topic and schema.name == JOINT_STATE:
                        joints.append((t, msg))
                    elif channel.topic == config.action_topic and schema.name == TRAJECTORY:
                        chunks.append((t, msg))
                    elif schema.name == IMAGE and (not wanted_images or channel.topic in wanted_images):
                        cam = wanted_images.get(channel.topic) or _camera_name(channel.topic)
                        images.setdefault(cam, []).append((t, msg))
        except (McapError, ValueError, EOFError, OSError) as exc:
            raise DataError(f"{file}: cannot read MCAP: {exc}") from exc
    if not joints:
        raise DataError(f"{path}: no {JOINT_STATE} messages on {config.joint_states_topic}")
    missing = [c for c in config.image_topics if c not in images]
    if missing:
        raise DataError(f"{path}: no images on {config.image_topics[missing[0]]} (camera {missing[0]})")
    joints.sort(key=lambda x: x[0])
    chunks.sort(key=lambda x: x[0])
    first_names = list(joints[0][1].name)
    arm = list(config.joint_names) or [n for n in first_names if n != config.gripper_joint]
    t0 = max([joints[0][0]] + [sorted(v, key=lambda x: x[0])[0][0] for v in images.values()])
    t_end = joints[-1][0]
    grid = t0 + np.arange(int(np.floor((t_end - t0) * config.rate_hz + 1e-9)) + 1) / config.rate_hz
    if len(grid) < 1 or t_end < t0:
        raise DataError(
            f"{path}: the streams never overlap in time (joint states end before the first image)"
        )

    def latest(stream: list[tuple[float, object]]) -> np.ndarray:
        times = np.array([s[0] for s in stream])
        return np.searchsorted(times, grid, side="right") - 1

    def joint_values(msg, field_name: str, names: list[str], where: str) -> np.ndarray:
        index = {n: i for i, n in enumerate(msg.name)}
        values = getattr(msg, field_name)
        lost = [n for n in names if n not in index]
        if lost:
            raise DataError(f"{where}: JointState has no joint {lost[0]!r} (has {list(msg.name)})")
        if not len(values):
            return np.zeros(len(names))
        return np.array([values[index[n]] for n in names], np.float64)

    steps: dict[str, list] = {
        keys.JOINT_POS: [],
        keys.JOINT_VEL: [],
        keys.ACTION: [],
        keys.TIMESTAMP: list(grid),
    }
    if config.gripper_joint:
        steps[keys.GRIPPER_POS] = []
    j_idx = latest(joints)
    for k, t in enumerate(grid):
        _, js = joints[j_idx[k]]
        where = f"{path}: {config.joint_states_topic} at t={t:.3f}"
        q = joint_values(js, "position", arm, where)
        steps[keys.JOINT_POS].append(q)
        steps[keys.JOINT_VEL].append(joint_values(js, "velocity", arm, where))
        grip = joint_values(js, "position", [config.gripper_joint], where) if config.gripper_joint else None
        if grip is not None:
            steps[keys.GRIPPER_POS].append(grip)
        steps[keys.ACTION].append(_action_at(t, chunks, arm, config.gripper_joint, q, grip, path))
    for cam, stream in images.items():
        stream.sort(key=lambda x: x[0])
        idx = latest(stream)
        frames = {}
        key = keys.image_key(cam)
        steps[key] = []
        for i in idx:
            if i not in frames:
                frames[i] = _image_array(stream[i][1], f"{path}: camera {cam} at t={stream[i][0]:.3f}")
            steps[key].append(frames[i])
    out = {}
    for k, v in steps.items():
        arr = np.asarray(v)
        out[k] = arr if k in (keys.TIMESTAMP,) or keys.is_image_key(k) else arr.astype(np.float32)
    return out


def _action_at(t, chunks, arm, gripper, q, grip, path) -> np.ndarray:
    """The commanded point applying at time t: latest chunk stamped <= t, latest point <= t."""
    held = np.concatenate([q, grip]) if grip is not None else q
    times = [c[0] for c in chunks]
    i = int(np.searchsorted(times, t, side="right")) - 1
    if i < 0:
        return held
    t_chunk, traj = chunks[i]
    if not traj.points:
        return held
    offsets = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points])
    j = max(int(np.searchsorted(t_chunk + offsets, t + 1e-9, side="right")) - 1, 0)
    names = list(traj.joint_names)
    pos = traj.points[j].positions
    lost = [n for n in arm if n not in names]
    if lost:
        raise DataError(f"{path}: action chunk at t={t_chunk:.3f} has no joint {lost[0]!r} (has {names})")
    action = [pos[names.index(n)] for n in arm]
    if gripper:
        action.append(pos[names.index(gripper)] if gripper in names else float(grip[0]))
    return np.array(action, np.float64)


def import_mcap(
    bags: list[str | Path],
    store_path: str | Path,
    config: McapImportConfig = McapImportConfig(),
    meta: EpisodeMeta | dict | None = None,
    progress: bool = True,
) -> EpisodeStore:
    """Append one episode per bag to the store at `store_path` (created when missing)."""
    from tqdm import tqdm

    store_path = Path(store_path)
    if store_path.exists():
        store = EpisodeStore.open(store_path, mode="a")
    else:
        store = EpisodeStore.create(store_path, step_dt=1.0 / config.rate_hz)
    base = EpisodeMeta.coerce(meta)
    for bag in tqdm(bags, desc="import mcap", unit="bag", disable=not progress):
        steps = read_bag(bag, config)
        ep_meta = EpisodeMeta(**{**base.__dict__, "start_time": float(steps[keys.TIMESTAMP][0])})
        try:
            store.append_episode(steps, ep_meta)
        except DataError as exc:
            raise DataError(f"{bag}: {exc}") from exc
    return store
