"""MCAP import: a bag written with mcap-ros2-support's writer (JointState, Image, JointTrajectory)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap_ros2.writer import Writer

from robot_rl import keys
from robot_rl.data.converters.mcap import McapImportConfig, import_mcap, read_bag
from robot_rl.data.store import DataError

MSG_DIR = Path(sys.prefix) / "share"  # .msg files shipped by the ros-jazzy message wheels
PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "string", "wstring"} | {
    f"{s}int{n}" for s in ("", "u") for n in (8, 16, 32, 64)
}
ARM = [f"j{i}" for i in range(6)]


def msgdef(full: str) -> str:
    """A ROS 2 message definition with its dependencies, in the MCAP ros2msg schema format."""
    seen, parts, queue = set(), [], [full]
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        pkg, typ = name.split("/")
        text = (MSG_DIR / pkg / "msg" / f"{typ}.msg").read_text()
        parts.append(text if name == full else f"MSG: {name}\n{text}")
        for line in text.splitlines():
            line = line.split("#")[0].strip()
            if not line or "=" in line.split()[0]:
                continue
            t = re.sub(r"\[.*\]|<=\d+", "", line.split()[0])
            if t in PRIMITIVES or "=" in line:
                continue
            queue.append(t if "/" in t else ("std_msgs/Header" if t == "Header" else f"{pkg}/{t}"))
    return ("\n" + "=" * 80 + "\n").join(parts)


def _stamp(t):
    return {"sec": int(t), "nanosec": int(round((t - int(t)) * 1e9))}


def write_bag(path, duration=1.0, encoding="rgb8"):
    with open(path, "wb") as f:
        w = Writer(f)
        js = w.register_msgdef("sensor_msgs/msg/JointState", msgdef("sensor_msgs/JointState"))
        im = w.register_msgdef("sensor_msgs/msg/Image", msgdef("sensor_msgs/Image"))
        tr = w.register_msgdef(
            "trajectory_msgs/msg/JointTrajectory", msgdef("trajectory_msgs/JointTrajectory")
        )
        t0 = 100.0
        events = []
        for k in range(int(duration * 500) + 1):  # joint states at 500 Hz
            t = t0 + k / 500
            q = [t - t0 + i for i in range(6)] + [0.5]
            msg = {
                "header": {"stamp": _stamp(t), "frame_id": ""},
                "name": [*ARM, "finger"],
                "position": q,
                "velocity": [1.0] * 7,
                "effort": [],
            }
            events.append((t, "/joint_states", js, msg))
        for k in range(int(duration * 30) + 1):  # camera at 30 Hz, 8x6, pixel value = frame number
            t = t0 + 0.01 + k / 30
            img = np.full((6, 8, 3), k % 256, np.uint8)
            img[..., 2] = 200  # a blue channel to check bgr8 -> rgb
            data = img[..., ::-1] if encoding == "bgr8" else img
            msg = {
                "header": {"stamp": _stamp(t), "frame_id": "cam"},
                "height": 6,
                "width": 8,
                "encoding": encoding,
                "is_bigendian": 0,
                "step": 24,
                "data": data.tobytes(),
            }
            events.append((t, "/camera/front/image_raw", im, msg))
        for k in range(4):  # a chunk every 0.25 s: 5 points 0.1 s apart, positions = chunk*10 + point
            t = t0 + 0.25 * k
            points = [
                {
                    "positions": [10.0 * k + p] * 7,
                    "velocities": [],
                    "accelerations": [],
                    "effort": [],
                    "time_from_start": {"sec": 0, "nanosec": int(p * 1e8)},
                }
                for p in range(5)
            ]
            msg = {
                "header": {"stamp": _stamp(t), "frame_id": ""},
                "joint_names": [*ARM, "finger"],
                "points": points,
            }
            events.append((t, "/robot_rl/action_chunk", tr, msg))
        for t, topic, schema, msg in sorted(events, key=lambda e: e[0]):
            w.write_message(topic, schema, msg, log_time=int(t * 1e9), publish_time=int(t * 1e9))
        w.finish()
    return path


def test_bag_to_episode_resampled_on_a_step_grid(tmp_path):
    bag = write_bag(tmp_path / "demo.mcap", encoding="bgr8")
    cfg = McapImportConfig(rate_hz=10.0, gripper_joint="finger")
    store = import_mcap(
        [bag, bag], tmp_path / "bag.zarr", cfg, meta={"task": "reach", "source": "teleop"}, progress=False
    )
    assert len(store) == 2 and store.validate() == []
    ep = store.episode(0)
    t = ep[keys.TIMESTAMP] - 100.0
    np.testing.assert_allclose(t[:3], [0.01, 0.11, 0.21], atol=1e-6)  # starts when the first image exists
    np.testing.assert_allclose(ep[keys.JOINT_POS][:, 0], np.floor(t * 500 + 1e-6) / 500, atol=1e-4)
    np.testing.assert_allclose(ep[keys.GRIPPER_POS][:, 0], 0.5)
    img = ep[keys.image_key("front")]
    assert img.shape == (len(t), 6, 8, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[:, 0, 0, 0], np.floor((t - 0.01) * 30 + 1e-6))  # latest frame
    assert np.all(img[..., 2] == 200)  # bgr8 came in as rgb
    # action: chunk k stamped 0.25k, point p applies at 0.25k + 0.1p
    expect = [
        10 * np.floor(x / 0.25 + 1e-9) + np.floor((x - 0.25 * np.floor(x / 0.25 + 1e-9)) / 0.1 + 1e-6)
        for x in t
    ]
    np.testing.assert_allclose(ep[keys.ACTION][:, 0], expect, atol=1e-5)
    assert ep[keys.ACTION].shape[1] == 7
    assert store.episode_meta(1).source == "teleop"


def test_bad_bags(tmp_path):
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap file at all")
    with pytest.raises(DataError, match="junk.mcap"):
        read_bag(tmp_path / "junk.mcap")
    bag = write_bag(tmp_path / "ok.mcap", duration=0.2)
    with pytest.raises(DataError, match="no sensor_msgs/msg/JointState messages on /arm/joint_states"):
        read_bag(bag, McapImportConfig(joint_states_topic="/arm/joint_states"))
    with pytest.raises(DataError, match="no joint 'elbow'"):
        read_bag(bag, McapImportConfig(joint_names=("elbow",)))
    (tmp_path / "bagdir").mkdir()
    with pytest.raises(DataError, match="no .mcap files"):
        read_bag(tmp_path / "bagdir")
