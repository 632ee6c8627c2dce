"""Normalizers: the ranges they map to, saved with the dataset, and a safetensors round trip."""

from __future__ import annotations

import numpy as np
import torch
from data_synthetic import make_episode
from safetensors.numpy import load_file, save_file

from robot_rl import keys
from robot_rl.data.normalizer import Normalizer, compute_stats, load_or_compute_stats
from robot_rl.data.store import EpisodeStore


def test_minmax_and_meanstd_on_store_data(tmp_path):
    store = EpisodeStore.create(tmp_path / "n.zarr")
    eps = [make_episode(i) for i in range(4)]
    for ep in eps:
        ep[keys.GRIPPER_POS][:] = 0.5  # a constant dimension
        store.append_episode(ep)
    q = np.concatenate([e[keys.JOINT_POS] for e in eps]).astype(np.float64)
    norm = Normalizer.from_store(
        store, {keys.JOINT_POS: "minmax", keys.ACTION: "meanstd", keys.GRIPPER_POS: "minmax"}
    )
    y = norm.normalize(keys.JOINT_POS, q.astype(np.float32))
    np.testing.assert_allclose(y.min(0), -1, atol=1e-5)
    np.testing.assert_allclose(y.max(0), 1, atol=1e-5)
    a = np.concatenate([e[keys.ACTION] for e in eps])
    ya = norm.normalize(keys.ACTION, a)
    np.testing.assert_allclose(ya.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(ya.std(0), 1, atol=1e-3)
    np.testing.assert_allclose(
        norm.normalize(keys.GRIPPER_POS, np.full((3, 1), 0.5, np.float32)), 0, atol=1e-6
    )
    # Inverse, on torch tensors too.
    t = torch.from_numpy(y)
    np.testing.assert_allclose(norm.unnormalize(keys.JOINT_POS, t).numpy(), q, atol=1e-5)
    # Saved with the dataset and reused by a read-only open.
    assert (tmp_path / "n.zarr" / "meta" / "normalizer" / keys.JOINT_POS / "min" / "zarr.json").is_file()
    ro = EpisodeStore.open(tmp_path / "n.zarr")
    st = load_or_compute_stats(ro, [keys.JOINT_POS])[keys.JOINT_POS]
    np.testing.assert_array_equal(st.min, norm.stats[keys.JOINT_POS].min)


def test_state_dict_round_trips_through_safetensors(tmp_path):
    store = EpisodeStore.create(tmp_path / "n.zarr")
    store.append_episode(make_episode(1))
    norm = Normalizer.from_stats(compute_stats(store, [keys.ACTION, keys.JOINT_VEL]), "meanstd")
    save_file(norm.state_dict(), str(tmp_path / "norm.safetensors"))
    back = Normalizer.from_state_dict(load_file(str(tmp_path / "norm.safetensors")))
    x = make_episode(1)[keys.ACTION]
    np.testing.assert_array_equal(back.normalize(keys.ACTION, x), norm.normalize(keys.ACTION, x))
    assert set(back.keys) == {keys.ACTION, keys.JOINT_VEL}


def test_stats_are_recomputed_after_new_episodes(tmp_path):
    store = EpisodeStore.create(tmp_path / "n.zarr")
    store.append_episode(make_episode(1))
    first = load_or_compute_stats(store, [keys.REWARD])[keys.REWARD]
    ep = make_episode(2)
    ep[keys.REWARD][:] = 100.0
    store.append_episode(ep)
    again = load_or_compute_stats(store, [keys.REWARD])[keys.REWARD]
    assert again.max == 100.0 and first.max < 100.0


def test_relative_action_stats_cover_every_training_window(tmp_path):
    from robot_rl.data.normalizer import relative_action_stats
    from robot_rl.data.sequence import SequenceConfig, SequenceDataset

    store = EpisodeStore.create(tmp_path / "r.zarr")
    eps = [make_episode(i, length=12 + 3 * i) for i in range(5)]
    for i, ep in enumerate(eps):  # each episode far from the others in joint space
        ep[keys.JOINT_POS] += 5.0 * i
        ep[keys.ACTION][:, :6] += 5.0 * i
        store.append_episode(ep)
    st = relative_action_stats(store, keys.ACTION, keys.JOINT_POS, obs_horizon=2, pred_horizon=8)
    ds = SequenceDataset(
        tmp_path / "r.zarr",
        SequenceConfig(horizon=8, n_obs_steps=2, n_action_steps=4, obs_keys=(keys.JOINT_POS,), val_ratio=0.0),
        split="all",
    )
    rel = []
    for i in range(len(ds)):
        w = ds[i]
        a = np.asarray(w[keys.ACTION], np.float64).copy()
        a[:, :6] -= np.asarray(w["obs"][keys.JOINT_POS][-1], np.float64)
        rel.append(a)
    rel = np.concatenate(rel)
    assert (rel.min(0) >= st.min - 1e-6).all() and (rel.max(0) <= st.max + 1e-6).all()
    # Not just wide: the gripper (absolute) range is exactly the actions' range, and the joint
    # offsets span what a window's random walk covers (under 1 rad), not the 20 rad between episodes.
    a = np.concatenate([ep[keys.ACTION] for ep in eps])
    np.testing.assert_allclose(st.min[6], a[:, 6].min(), rtol=1e-6)
    np.testing.assert_allclose(st.max[6], a[:, 6].max(), rtol=1e-6)
    assert (st.max[:6] - st.min[:6] < 1.0).all() and (a[:, :6].max(0) - a[:, :6].min(0) > 20).all()
