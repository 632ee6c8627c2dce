"""Sequence windows: edge padding, the episode split, batches through DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_synthetic import CAMERA, make_episode

from robot_rl import keys
from robot_rl.data.sequence import SequenceConfig, SequenceDataset, split_episodes
from robot_rl.data.store import DataError, EpisodeStore

LENGTHS = [9, 14, 6, 20, 11, 8, 17, 10]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("seq") / "s.zarr"
    store = EpisodeStore.create(path)
    for i, n in enumerate(LENGTHS):
        ep = make_episode(i, length=n)
        ep[keys.ACTION][:, 0] = 1000 * i + np.arange(n)  # action[0] encodes (episode, step)
        store.append_episode(ep)
    return path


def test_windows_are_edge_padded_like_diffusion_policy(store_path):
    cfg = SequenceConfig(
        horizon=8, n_obs_steps=2, n_action_steps=4, obs_keys=(keys.JOINT_POS, CAMERA), val_ratio=0
    )
    ds = SequenceDataset(store_path, cfg, split="all")
    # per episode: starts from -(To-1) to n - horizon + (Ta-1)
    assert len(ds) == sum(max(n - 8 + 3, 0) + 1 + 1 for n in LENGTHS)
    first = ds[0]
    a = first[keys.ACTION][:, 0].numpy()
    np.testing.assert_array_equal(a, [0, 0, 1, 2, 3, 4, 5, 6])  # step -1 repeats step 0
    ep0 = make_episode(0, length=LENGTHS[0])
    np.testing.assert_array_equal(first["obs"][CAMERA].numpy(), ep0[CAMERA][[0, 0]])
    np.testing.assert_array_equal(first["obs"][keys.JOINT_POS].numpy(), ep0[keys.JOINT_POS][[0, 0]])
    assert first["obs"][CAMERA].dtype == torch.uint8 and first["obs"][keys.JOINT_POS].dtype == torch.float32
    # The last window of episode 0 (n=9): starts at 9 - 8 + 3 = 4, ends padded with step 8.
    n_windows0 = 9 - 8 + 3 + 1 + 1
    last = ds[n_windows0 - 1][keys.ACTION][:, 0].numpy()
    np.testing.assert_array_equal(last, [4, 5, 6, 7, 8, 8, 8, 8])
    # No window ever mixes episodes.
    batch = ds.get_batch(np.arange(len(ds)))
    ep_of = batch[keys.ACTION][:, :, 0].numpy() // 1000
    assert np.all(ep_of == ep_of[:, :1])


def test_split_is_by_episode_and_seeded(store_path):
    train, val = split_episodes(8, 0.25, seed=3)
    assert len(val) == 2 and not set(train) & set(val) and set(train) | set(val) == set(range(8))
    assert np.array_equal(split_episodes(8, 0.25, seed=3)[1], val)
    cfg = SequenceConfig(horizon=4, n_obs_steps=1, n_action_steps=1, val_ratio=0.25, seed=3)
    tr, va = SequenceDataset(store_path, cfg), SequenceDataset(store_path, cfg).validation()
    eps = lambda ds: set(np.unique(ds.get_batch(np.arange(len(ds)))[keys.ACTION][:, :, 0].numpy() // 1000))  # noqa: E731
    assert eps(tr) == set(train) and eps(va) == set(val)


def test_dataloader_with_two_workers_matches_in_process(store_path):
    cfg = SequenceConfig(
        horizon=6, n_obs_steps=2, n_action_steps=3, obs_keys=(keys.JOINT_POS, CAMERA), val_ratio=0
    )
    ds = SequenceDataset(store_path, cfg, split="all")
    ref = ds.get_batch(np.arange(len(ds)))
    seen = []
    for batch in ds.loader(batch_size=16, num_workers=2, shuffle=False):
        assert batch["obs"][CAMERA].shape[1:] == (2, 16, 16, 3)
        seen.append(batch)
    got = torch.cat([b["obs"][CAMERA] for b in seen])
    assert torch.equal(got, ref["obs"][CAMERA])
    assert torch.equal(torch.cat([b[keys.ACTION] for b in seen]), ref[keys.ACTION])


def test_bad_sequence_configs_and_keys(store_path):
    with pytest.raises(ValueError, match="n_obs_steps"):
        SequenceConfig(horizon=4, n_obs_steps=5)
    with pytest.raises(ValueError, match="n_action_steps"):
        SequenceConfig(horizon=4, n_obs_steps=2, n_action_steps=4)
    with pytest.raises(DataError, match="no key 'image_wrist'"):
        SequenceDataset(store_path, SequenceConfig(obs_keys=(keys.image_key("wrist"),)))


def test_plain_dataloader_with_collate_gives_tensors(store_path):
    from torch.utils.data import DataLoader

    cfg = SequenceConfig(horizon=4, n_obs_steps=1, n_action_steps=2, obs_keys=(keys.JOINT_POS,), val_ratio=0)
    ds = SequenceDataset(store_path, cfg, split="all")
    batch = next(iter(DataLoader(ds, batch_size=8, collate_fn=ds.collate)))
    assert isinstance(batch[keys.ACTION], torch.Tensor) and batch[keys.ACTION].shape == (8, 4, 7)
    assert batch["obs"][keys.JOINT_POS].shape == (8, 1, 6)
