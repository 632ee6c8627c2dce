"""`robot-rl data ...`: inspect, check, combine and convert episode stores.

robot-rl data info STORE                       episodes, steps, keys, shapes, success rate
robot-rl data validate STORE                   every invariant; exit 1 with the problems
robot-rl data merge OUT IN [IN ...]            concatenate stores with the same keys
robot-rl data split STORE TRAIN VAL            episode-level split by seed
robot-rl data export-video STORE OUT.mp4       one camera of one episode
robot-rl data plot STORE OUT.png               joint trajectories (and actions) of one episode
robot-rl data export-robomimic STORE OUT.hdf5
robot-rl data import-robomimic IN.hdf5 STORE
robot-rl data import-mcap STORE BAG [BAG ...]  one episode per .mcap file or rosbag2 folder
"""

from __future__ import annotations

import argparse
import sys

from robot_rl import keys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = sub.add_parser("info", help="episodes, steps, keys, shapes and success rate")
    p.add_argument("store")
    p.set_defaults(_data=_info)

    p = sub.add_parser("validate", help="check every invariant (reads every chunk); exit 1 on problems")
    p.add_argument("store")
    p.set_defaults(_data=_validate)

    p = sub.add_parser("merge", help="concatenate stores with the same keys into a new one")
    p.add_argument("out")
    p.add_argument("inputs", nargs="+")
    p.set_defaults(_data=_merge)

    p = sub.add_parser("split", help="episode-level train/validation split into two new stores")
    p.add_argument("store")
    p.add_argument("train_out")
    p.add_argument("val_out")
    p.add_argument("--val-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(_data=_split)

    p = sub.add_parser("quality", help="coverage, action divergence, length and jerk, outlier episodes")
    p.add_argument("store")
    p.add_argument("--state-key", default=keys.JOINT_POS)
    p.add_argument("--bins", type=int, default=10)
    p.set_defaults(_data=_quality)

    p = sub.add_parser("export-video", help="write an mp4 of one camera of one episode")
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--episode", type=int, default=0)
    p.add_argument("--camera", default="", help="camera name (default: the first image key)")
    p.add_argument("--fps", type=float, default=0.0, help="default: 1 / the store's step_dt")
    p.set_defaults(_data=_export_video)

    p = sub.add_parser("plot", help="write a PNG of one episode's joint trajectories and actions")
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--episode", type=int, default=0)
    p.set_defaults(_data=_plot)

    p = sub.add_parser("export-robomimic", help="write a robomimic HDF5 file")
    p.add_argument("store")
    p.add_argument("out")
    p.set_defaults(_data=_export_robomimic)

    p = sub.add_parser("import-robomimic", help="convert a robomimic HDF5 file into a new store")
    p.add_argument("hdf5")
    p.add_argument("store")
    p.add_argument("--source", default="sim", choices=("teleop", "sim", "policy", "intervention"))
    p.add_argument("--robot", default="")
    p.set_defaults(_data=_import_robomimic)

    p = sub.add_parser("import-mcap", help="append one episode per MCAP file or rosbag2 folder")
    p.add_argument("store")
    p.add_argument("bags", nargs="+")
    p.add_argument("--rate-hz", type=float, default=10.0, help="step rate of the episodes")
    p.add_argument("--joint-states-topic", default="/joint_states")
    p.add_argument("--action-topic", default="/robot_rl/action_chunk")
    p.add_argument("--gripper-joint", default="")
    p.add_argument("--task", default="")
    p.add_argument("--source", default="teleop", choices=("teleop", "sim", "policy", "intervention"))
    p.add_argument("--robot", default="")
    p.set_defaults(_data=_import_mcap)


def run(args: argparse.Namespace) -> int:
    return int(args._data(args) or 0)


def _open(path, mode="r"):
    from robot_rl.data.store import EpisodeStore

    return EpisodeStore.open(path, mode=mode)


def _info(args) -> int:
    import numpy as np

    store = _open(args.store)
    meta = store.all_meta()
    print(f"{store.path}: {len(store)} episodes, {store.num_steps} steps, step_dt {store.step_dt:g} s")
    if len(store):
        lengths = np.diff(np.concatenate([[0], store.episode_ends]))
        print(f"  episode length: min {lengths.min()}, mean {lengths.mean():.1f}, max {lengths.max()}")
        judged = meta["success"] >= 0
        if judged.any():
            rate = float(np.mean(meta["success"][judged] == 1))
            print(f"  success rate: {rate:.3f} over {int(judged.sum())} judged episodes")
        for col in ("task", "source", "robot"):
            values, counts = np.unique(meta[col].astype(str), return_counts=True)
            print(f"  {col}: " + ", ".join(f"{v or '-'} ({c})" for v, c in zip(values, counts)))
    for k, spec in store.spec.items():
        arr = store.array(k)
        print(f"  data/{k:20s} {str(spec.shape):16s} {str(spec.dtype):8s} chunks {arr.chunks}")
    return 0


def _validate(args) -> int:
    store = _open(args.store)
    problems = store.validate(progress=True)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{store.path}: INVALID ({len(problems)} problem(s))", file=sys.stderr)
        return 1
    print(f"{store.path}: ok ({len(store)} episodes, {store.num_steps} steps)")
    return 0


def _copy_episodes(sources: list, out_path, episodes_of=None) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from robot_rl.data.store import DataError, EpisodeStore

    if Path(out_path).exists():
        raise ValueError(f"{out_path}: already exists; choose a new output path")
    first = sources[0]
    for s in sources[1:]:
        if s.spec != first.spec:
            raise DataError(f"{s.path}: keys or shapes differ from {first.path}; cannot merge")
    out = EpisodeStore.create(
        out_path, first.spec, step_dt=first.step_dt, image_codec=first.attrs["image_codec"]
    )
    jobs = [(s, i) for s in sources for i in (episodes_of(s) if episodes_of else range(len(s)))]
    for s, i in tqdm(jobs, desc=f"write {out_path}", unit="ep"):
        out.append_episode(s.episode(i), s.episode_meta(i))
    return len(out)


def _merge(args) -> int:
    sources = [_open(p) for p in args.inputs]
    n = _copy_episodes(sources, args.out)
    print(f"{args.out}: {n} episodes from {len(sources)} stores")
    return 0


def _split(args) -> int:
    from robot_rl.data.sequence import split_episodes

    store = _open(args.store)
    train, val = split_episodes(len(store), args.val_ratio, args.seed)
    _copy_episodes([store], args.train_out, lambda s: train)
    _copy_episodes([store], args.val_out, lambda s: val)
    print(f"{args.train_out}: {len(train)} episodes; {args.val_out}: {len(val)} episodes (seed {args.seed})")
    return 0


def _quality(args) -> int:
    from robot_rl.data.quality import quality_report

    store = _open(args.store)
    print(f"{store.path}:")
    print(quality_report(store, state_key=args.state_key, bins=args.bins).summary())
    return 0


def _camera_key(store, camera: str) -> str:
    from robot_rl import keys

    images = [k for k in store.keys if keys.is_image_key(k)]
    if not images:
        raise ValueError(f"{store.path}: the store has no image keys")
    key = keys.image_key(camera) if camera else images[0]
    if key not in images:
        raise ValueError(f"{store.path}: no camera {camera!r} (cameras: {', '.join(images)})")
    return key


def _export_video(args) -> int:
    import imageio.v3 as iio
    from tqdm import tqdm

    store = _open(args.store)
    key = _camera_key(store, args.camera)
    start, stop = store.episode_range(args.episode)
    fps = args.fps or 1.0 / store.step_dt
    frames = []
    for a in tqdm(range(start, stop, 256), desc="read frames", unit="block"):
        frames.append(store.read_steps(key, a, min(stop, a + 256), args.episode))
    import numpy as np

    video = np.concatenate(frames)
    # libx264 wants even sides; pad by one row / column when needed.
    h, w = video.shape[1:3]
    video = np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    iio.imwrite(args.out, video, fps=fps, codec="libx264", plugin="pyav" if _has_pyav() else None)
    print(f"{args.out}: {len(video)} frames of {key} at {fps:g} fps")
    return 0


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from robot_rl import keys

    store = _open(args.store)
    shown = [k for k in (keys.JOINT_POS, keys.GRIPPER_POS, keys.ACTION) if k in store.spec]
    if not shown:
        raise ValueError(
            f"{store.path}: nothing to plot (no {keys.JOINT_POS}, {keys.GRIPPER_POS} or {keys.ACTION})"
        )
    ep = store.episode(args.episode, (*shown, keys.TIMESTAMP))
    t = ep[keys.TIMESTAMP] - ep[keys.TIMESTAMP][0]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.6 * len(shown)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], shown):
        x = ep[k].reshape(len(t), -1)
        for d in range(x.shape[1]):
            ax.plot(t, x[:, d], lw=1, label=f"{d}")
        ax.set_ylabel(k)
        ax.grid(alpha=0.3)
        if x.shape[1] <= 8:
            ax.legend(loc="upper right", fontsize=7, ncol=x.shape[1])
    axes[-1, 0].set_xlabel("time since episode start (s)")
    meta = store.episode_meta(args.episode)
    fig.suptitle(f"{store.path.name} episode {args.episode}: {meta.task or '-'} ({meta.source})")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"{args.out}: {', '.join(shown)} over {len(t)} steps ({np.ptp(t):.2f} s)")
    return 0


def _export_robomimic(args) -> int:
    from robot_rl.data.converters.robomimic import export_robomimic

    store = _open(args.store)
    export_robomimic(store, args.out)
    print(f"{args.out}: {len(store)} demos, {store.num_steps} steps")
    return 0


def _import_robomimic(args) -> int:
    from robot_rl.data.converters.robomimic import import_robomimic

    store = import_robomimic(args.hdf5, args.store, source=args.source, robot=args.robot)
    print(f"{args.store}: {len(store)} episodes, {store.num_steps} steps, keys {', '.join(store.keys)}")
    return 0


def _import_mcap(args) -> int:
    from robot_rl.data.converters.mcap import McapImportConfig, import_mcap

    cfg = McapImportConfig(
        rate_hz=args.rate_hz,
        joint_states_topic=args.joint_states_topic,
        action_topic=args.action_topic,
        gripper_joint=args.gripper_joint,
    )
    meta = {"task": args.task, "source": args.source, "robot": args.robot}
    store = import_mcap(args.bags, args.store, cfg, meta)
    print(f"{args.store}: {len(store)} episodes, {store.num_steps} steps")
    return 0
