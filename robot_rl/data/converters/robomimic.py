"""robomimic HDF5 <-> episode store.

robomimic's layout (what its SequenceDataset reads):

    data/                       attrs: total (steps), env_args (JSON)
      demo_<i>/                 attrs: num_samples
        obs/<key>  next_obs/<key>   (T, ...) per-step observations, next_obs shifted by one
        actions (T, A)  rewards (T,)  dones (T,)
    mask/train, mask/valid      demo names (the split)

Export writes our keys under their own names (image_front stays image_front) plus
`interventions` and `timestamps` beside `actions`, so a round trip loses nothing.
Import maps robosuite names to ours (ROBOSUITE_KEYS; robot0_eef_quat is x y z w there
and w x y z here) and keeps any other key under its own name; `*_image` keys become
image keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.sequence import split_episodes
from robot_rl.data.store import DataError, EpisodeStore

ROBOSUITE_KEYS = {
    "robot0_joint_pos": keys.JOINT_POS,
    "robot0_joint_vel": keys.JOINT_VEL,
    "robot0_eef_pos": keys.EE_POS,
    "robot0_eef_quat": keys.EE_QUAT,
    "agentview_image": keys.image_key("agentview"),
    "robot0_eye_in_hand_image": keys.image_key("wrist"),
}
_XYZW_KEYS = {"robot0_eef_quat"}
_STEP_KEYS = {"actions": keys.ACTION, "rewards": keys.REWARD, "dones": keys.TERMINAL}
_EXTRA_KEYS = {"interventions": keys.INTERVENTION, "timestamps": keys.TIMESTAMP}


def export_robomimic(
    store: EpisodeStore, h5_path: str | Path, val_ratio: float = 0.1, seed: int = 42, progress: bool = True
) -> Path:
    """Write every committed episode as a robomimic demo."""
    import h5py
    from tqdm import tqdm

    h5_path = Path(h5_path)
    obs_keys = [k for k in store.keys if k not in keys.STEP_KEYS]
    meta = store.all_meta()
    tmp = h5_path.with_name(h5_path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        task = str(meta["task"][0]) if len(store) else ""
        data.attrs["env_args"] = json.dumps({"env_name": task or "robot_rl", "type": 2, "env_kwargs": {}})
        for i in tqdm(range(len(store)), desc="export robomimic", unit="ep", disable=not progress):
            ep = store.episode(i)
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = len(ep[keys.ACTION])
            for col, vals in meta.items():
                g.attrs[col] = vals[i].item() if hasattr(vals[i], "item") else str(vals[i])
            for k in obs_keys:
                x = ep[k]
                chunks = (1, *x.shape[1:]) if keys.is_image_key(k) else None
                g.create_dataset(f"obs/{k}", data=x, chunks=chunks)
                g.create_dataset(f"next_obs/{k}", data=np.concatenate([x[1:], x[-1:]]), chunks=chunks)
            g.create_dataset("actions", data=ep[keys.ACTION])
            g.create_dataset("rewards", data=ep[keys.REWARD])
            g.create_dataset("dones", data=ep[keys.TERMINAL].astype(np.int64))
            g.create_dataset("interventions", data=ep[keys.INTERVENTION])
            g.create_dataset("timestamps", data=ep[keys.TIMESTAMP])
        data.attrs["total"] = store.num_steps
        train, val = split_episodes(len(store), val_ratio, seed)
        f.create_dataset("mask/train", data=np.array([f"demo_{i}" for i in train], dtype="S"))
        f.create_dataset("mask/valid", data=np.array([f"demo_{i}" for i in val], dtype="S"))
    tmp.replace(h5_path)
    return h5_path


def _demo_order(names) -> list[str]:
    def index(name: str):
        m = re.search(r"(\d+)$", name)
        return (int(m.group(1)) if m else -1, name)

    return sorted(names, key=index)


def robomimic_key(name: str, key_map: dict[str, str] | None = None) -> str:
    """Our key for a robomimic observation name."""
    table = {**ROBOSUITE_KEYS, **(key_map or {})}
    if name in table:
        return table[name]
    if name.endswith("_image"):
        return keys.image_key(name.removesuffix("_image"))
    return name


def import_robomimic(
    h5_path: str | Path,
    store_path: str | Path,
    key_map: dict[str, str] | None = None,
    source: str = "sim",
    robot: str = "",
    overwrite: bool = False,
    progress: bool = True,
) -> EpisodeStore:
    """Every demo of a robomimic file as one episode, in demo-number order."""
    import h5py
    from tqdm import tqdm

    h5_path = Path(h5_path)
    if not h5_path.is_file():
        raise FileNotFoundError(f"{h5_path}: no such file")
    try:
        f = h5py.File(h5_path, "r")
    except OSError as exc:
        raise DataError(f"{h5_path}: not an HDF5 file: {exc}") from exc
    with f:
        if "data" not in f:
            raise DataError(f"{h5_path}: no 'data' group: not a robomimic dataset")
        data = f["data"]
        try:
            env_name = json.loads(data.attrs.get("env_args", "{}")).get("env_name", "")
        except (TypeError, ValueError):
            env_name = ""
        store = EpisodeStore.create(store_path, overwrite=overwrite)
        for name in tqdm(
            _demo_order(data.keys()), desc="import robomimic", unit="demo", disable=not progress
        ):
            g = data[name]
            where = f"{h5_path}: data/{name}"
            if "actions" not in g or "obs" not in g:
                raise DataError(f"{where}: a demo needs 'actions' and 'obs'")
            steps = {}
            for k in g["obs"]:
                x = np.asarray(g["obs"][k])
                if k in _XYZW_KEYS and x.shape[-1] == 4:
                    x = x[..., [3, 0, 1, 2]]
                steps[robomimic_key(k, key_map)] = x
            for src, dst in {**_STEP_KEYS, **_EXTRA_KEYS}.items():
                if src in g:
                    x = np.asarray(g[src])
                    steps[dst] = x.astype(np.bool_) if dst in (keys.TERMINAL, keys.INTERVENTION) else x
            meta = {
                "task": str(g.attrs.get("task", env_name)),
                "source": str(g.attrs.get("source", source)),
                "robot": str(g.attrs.get("robot", robot)),
                "operator": str(g.attrs.get("operator", "")),
                "config_hash": str(g.attrs.get("config_hash", "")),
            }
            if "success" in g.attrs and int(g.attrs["success"]) >= 0:
                meta["success"] = bool(g.attrs["success"])
            if "start_time" in g.attrs:
                meta["start_time"] = float(g.attrs["start_time"])
            try:
                store.append_episode(steps, meta)
            except DataError as exc:
                raise DataError(f"{where}: {exc}") from exc
    return store
