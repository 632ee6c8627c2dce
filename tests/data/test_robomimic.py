"""robomimic HDF5 both ways: robomimic's own SequenceDataset reads our export; a file we did not write converts in."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from data_synthetic import CAMERA, make_episode

from robot_rl import keys
from robot_rl.data.converters.robomimic import export_robomimic, import_robomimic
from robot_rl.data.store import DataError, EpisodeMeta, EpisodeStore


def test_export_is_read_by_robomimic_and_round_trips(tmp_path):
    import robomimic.utils.obs_utils as ObsUtils
    from robomimic.utils.dataset import SequenceDataset as RobomimicSequenceDataset

    store = EpisodeStore.create(tmp_path / "s.zarr")
    for i in range(4):
        store.append_episode(make_episode(i), EpisodeMeta(task="lift", success=bool(i % 2), operator="ann"))
    h5 = export_robomimic(store, tmp_path / "out.hdf5", progress=False)
    lowdim = [keys.JOINT_POS, keys.GRIPPER_POS]
    ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": lowdim, "rgb": [CAMERA]}})
    ds = RobomimicSequenceDataset(
        hdf5_path=str(h5),
        obs_keys=(*lowdim, CAMERA),
        dataset_keys=("actions", "rewards", "dones"),
        frame_stack=2,
        seq_length=5,
        hdf5_cache_mode="low_dim",
        hdf5_use_swmr=False,
        load_next_obs=False,
    )
    assert len(ds) == store.num_steps
    ep0 = make_episode(0)
    item = ds[3]  # demo_0, step 3: obs and actions over steps 2..7 (frame stack 2 + 5 - 1)
    np.testing.assert_allclose(item["obs"][keys.JOINT_POS], ep0[keys.JOINT_POS][2:8])
    np.testing.assert_allclose(item["actions"], ep0[keys.ACTION][2:8])
    np.testing.assert_array_equal(item["obs"][CAMERA], ep0[CAMERA][2:8])  # raw HWC uint8 (processed later)

    back = import_robomimic(h5, tmp_path / "back.zarr", progress=False)
    assert len(back) == 4
    for i in range(4):
        want, got = store.episode(i), back.episode(i)
        assert set(got) == set(want)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        assert back.episode_meta(i) == store.episode_meta(i)


def _robosuite_file(path, n_demos=3):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = '{"env_name": "Lift", "type": 1, "env_kwargs": {}}'
        for i in [2, 0, 1][:n_demos]:  # written out of order, demo_10 sorts after demo_2
            t = 5 + i
            g = data.create_group(f"demo_{i * 5}")
            g.attrs["num_samples"] = t
            g.create_dataset("obs/robot0_eef_pos", data=rng.normal(size=(t, 3)))
            g.create_dataset("obs/robot0_eef_quat", data=np.tile([0.1, 0.2, 0.3, 0.9], (t, 1)))
            g.create_dataset("obs/object", data=rng.normal(size=(t, 10)))
            g.create_dataset("obs/agentview_image", data=rng.integers(0, 255, (t, 8, 8, 3), dtype=np.uint8))
            g.create_dataset("actions", data=np.full((t, 7), i, np.float64))
            g.create_dataset("rewards", data=np.zeros(t))
            g.create_dataset("dones", data=(np.arange(t) == t - 1).astype(np.int64))


def test_robomimic_layout_written_by_h5py_converts_in(tmp_path):
    _robosuite_file(tmp_path / "lift.hdf5")
    store = import_robomimic(tmp_path / "lift.hdf5", tmp_path / "lift.zarr", progress=False)
    assert len(store) == 3
    assert [int(store.episode(i)[keys.ACTION][0, 0]) for i in range(3)] == [
        0,
        1,
        2,
    ]  # demo_0, demo_5, demo_10
    ep = store.episode(0)
    np.testing.assert_allclose(ep[keys.EE_QUAT][0], [0.9, 0.1, 0.2, 0.3])  # x y z w -> w x y z
    assert ep[keys.image_key("agentview")].dtype == np.uint8 and ep["object"].shape == (5, 10)
    assert ep[keys.TERMINAL][-1] and not ep[keys.TERMINAL][0]
    assert store.episode_meta(0).task == "Lift" and store.validate() == []


def test_bad_robomimic_files(tmp_path):
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("nodata")
    with pytest.raises(DataError, match="no 'data' group"):
        import_robomimic(tmp_path / "empty.hdf5", tmp_path / "a.zarr", progress=False)
    (tmp_path / "text.hdf5").write_text("hello")
    with pytest.raises(DataError, match="not an HDF5 file"):
        import_robomimic(tmp_path / "text.hdf5", tmp_path / "b.zarr", progress=False)
    with h5py.File(tmp_path / "short.hdf5", "w") as f:
        g = f.create_group("data/demo_0")
        g.create_dataset("obs/robot0_eef_pos", data=np.zeros((4, 3)))
        g.create_dataset("actions", data=np.zeros((5, 7)))
    with pytest.raises(DataError, match=r"data/demo_0: .*mismatched lengths"):
        import_robomimic(tmp_path / "short.hdf5", tmp_path / "c.zarr", progress=False)
