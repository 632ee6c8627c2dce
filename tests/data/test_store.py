"""The episode store: round trip, streaming writer, torn tails, and clear errors for bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from data_synthetic import CAMERA, make_episode

from robot_rl import keys
from robot_rl.data.store import DataError, EpisodeMeta, EpisodeStore


def _store(tmp_path, n=3, **kw):
    store = EpisodeStore.create(tmp_path / "s.zarr", **kw)
    for i in range(n):
        store.append_episode(make_episode(i), EpisodeMeta(task="lift", success=i % 2 == 0, source="sim"))
    return store


def test_round_trip_layout_and_metadata(tmp_path):
    store = _store(tmp_path)
    eps = [make_episode(i) for i in range(3)]
    assert store.num_episodes == len(store) == 3
    assert list(store.episode_ends) == list(np.cumsum([len(e[keys.ACTION]) for e in eps]))
    assert set(store.keys) == set(eps[0])
    for i, ep in enumerate(eps):
        got = store.episode(i)
        for k in ep:
            np.testing.assert_array_equal(got[k], ep[k])
    assert store.episode_meta(0).success is True and store.episode_meta(1).success is False
    # The on-disk layout other tools read.
    for name in ("data/action", f"data/{CAMERA}", "meta/episode_ends", "meta/task", "meta/success"):
        assert (tmp_path / "s.zarr" / name / "zarr.json").is_file(), name
    import zarr

    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert g[f"data/{CAMERA}"].chunks[0] == 1  # images: one chunk per frame
    reopened = EpisodeStore.open(tmp_path / "s.zarr")
    assert reopened.validate() == [] and len(reopened) == 3


def test_missing_bookkeeping_keys_get_defaults(tmp_path):
    store = EpisodeStore.create(tmp_path / "d.zarr", step_dt=0.5)
    t = 4
    i = store.append_episode(
        {keys.JOINT_POS: np.zeros((t, 6)), keys.ACTION: np.ones((t, 7))},
        {"source": "intervention", "start_time": 10.0},
    )
    ep = store.episode(i)
    assert ep[keys.JOINT_POS].dtype == np.float32  # float64 input stored as float32
    np.testing.assert_array_equal(ep[keys.TIMESTAMP], [10.0, 10.5, 11.0, 11.5])
    assert ep[keys.REWARD].dtype == np.float32 and not ep[keys.REWARD].any()
    assert ep[keys.INTERVENTION].all()  # an intervention episode: every step was human
    assert not ep[keys.TERMINAL].any()
    assert EpisodeStore.open(tmp_path / "d.zarr").validate() == []  # all-zero chunks still have files


def test_streaming_writer_discard_and_exception(tmp_path):
    store = _store(tmp_path, n=1)
    ep = make_episode(7)
    w = store.begin_episode({"task": "x", "source": "teleop"})
    for k in range(len(ep[keys.ACTION])):
        w.append_step({key: v[k] for key, v in ep.items()})
    w.flush()
    w.discard()
    assert len(store) == 1 and store.array(keys.ACTION).shape[0] == store.num_steps
    with pytest.raises(ZeroDivisionError):
        with store.begin_episode() as w:
            w.append(ep)
            1 / 0  # noqa: B018
    assert len(store) == 1
    with store.begin_episode() as w:
        w.append(ep)
    np.testing.assert_array_equal(store.episode(1)[CAMERA], ep[CAMERA])


def test_torn_tail_is_trimmed_with_a_warning(tmp_path, caplog):
    store = _store(tmp_path, n=2)
    w = store.begin_episode()
    w.append(make_episode(5, length=9))
    w.flush(wait=True)  # 9 steps on disk past the last end, never committed
    with caplog.at_level(logging.WARNING, logger="robot_rl.data.store"):
        ro = EpisodeStore.open(tmp_path / "s.zarr", mode="r")
    assert len(ro) == 2
    assert any("9 step(s)" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)
    a = EpisodeStore.open(tmp_path / "s.zarr", mode="a")
    assert a.array(keys.ACTION).shape[0] == a.num_steps
    assert a.validate() == []
    frames = sorted(int(p.name) for p in (tmp_path / "s.zarr" / "data" / CAMERA / "c").iterdir())
    assert frames == list(range(a.num_steps))  # no stale frame files past the end


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda ep: ep.update({keys.ACTION: ep[keys.ACTION].astype(np.int64)}), "'action' has dtype int64"),
        (lambda ep: ep.update({CAMERA: ep[CAMERA].astype(np.float32)}), f"'{CAMERA}' has dtype float32"),
        (lambda ep: ep.pop(keys.JOINT_VEL), f"missing key '{keys.JOINT_VEL}'"),
        (lambda ep: ep.update({keys.JOINT_POS: ep[keys.JOINT_POS][:-1]}), "mismatched lengths"),
        (lambda ep: ep.update({keys.JOINT_POS: ep[keys.JOINT_POS][:, :3]}), "per-step shape"),
        (lambda ep: ep.update({"extra": np.zeros(len(ep[keys.ACTION]))}), "unknown key 'extra'"),
    ],
)
def test_bad_episodes_are_refused_by_name_and_nothing_is_lost(tmp_path, mutate, pattern):
    store = _store(tmp_path, n=2)
    ep = make_episode(9)
    mutate(ep)
    with pytest.raises(DataError, match=pattern) as info:
        store.append_episode(ep)
    assert "episode 2" in str(info.value)
    assert len(store) == 2 and store.validate() == []
    assert len(EpisodeStore.open(tmp_path / "s.zarr")) == 2


def _chunk_files(root, key):
    return sorted(p for p in (root / "data" / key / "c").rglob("*") if p.is_file())


def test_corrupt_chunk_names_array_and_episode(tmp_path):
    store = _store(tmp_path, n=3)
    root = tmp_path / "s.zarr"
    start, _ = store.episode_range(1)
    frame = root / "data" / CAMERA / "c" / str(start) / "0" / "0" / "0"
    frame.write_bytes(b"\x00garbage" * 3)
    problems = EpisodeStore.open(root).validate()
    assert len(problems) == 1 and f"data/{CAMERA}, episode 1" in problems[0]
    with pytest.raises(DataError, match=f"data/{CAMERA}, episode 1"):
        EpisodeStore.open(root).episode(1)
    np.testing.assert_array_equal(EpisodeStore.open(root).episode(0)[CAMERA], make_episode(0)[CAMERA])


def test_truncated_chunk_and_broken_metadata(tmp_path):
    _store(tmp_path, n=2)
    root = tmp_path / "s.zarr"
    chunk = _chunk_files(root, keys.JOINT_POS)[0]
    chunk.write_bytes(chunk.read_bytes()[:10])
    problems = EpisodeStore.open(root).validate()
    assert problems and all(f"data/{keys.JOINT_POS}" in p for p in problems)
    (root / "meta" / "episode_ends" / "zarr.json").write_text("{not json")
    with pytest.raises(DataError, match="meta/episode_ends"):
        EpisodeStore.open(root)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        EpisodeStore.open(tmp_path / "nope.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match="no zarr.json"):
        EpisodeStore.open(tmp_path / "plain")


def test_array_shorter_than_episode_ends_drops_uncovered_episodes(tmp_path, caplog):
    store = _store(tmp_path, n=3)
    a, _ = store.episode_range(2)
    store.array(keys.REWARD).resize((a + 1,))  # data/reward truncated inside episode 2
    with caplog.at_level(logging.WARNING, logger="robot_rl.data.store"):
        again = EpisodeStore.open(tmp_path / "s.zarr", mode="a")
    assert len(again) == 2 and again.validate() == []
    assert any("1 unfinished episode entry" in r.getMessage() for r in caplog.records)


def test_read_only_store_refuses_writes(tmp_path):
    _store(tmp_path, n=1)
    ro = EpisodeStore.open(tmp_path / "s.zarr")
    with pytest.raises(PermissionError, match="read-only"):
        ro.append_episode(make_episode(1))
    with pytest.raises(FileExistsError):
        EpisodeStore.create(tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="source must be one of"):
        EpisodeMeta(source="youtube")


def test_broken_array_metadata_and_missing_chunk_files_are_named(tmp_path):
    store = _store(tmp_path, n=3)
    root = tmp_path / "s.zarr"
    start, _ = store.episode_range(2)
    (root / "data" / CAMERA / "c" / str(start + 1) / "0" / "0" / "0").unlink()
    problems = EpisodeStore.open(root).validate(check_chunks=False)
    assert problems == [f"{root}: data/{CAMERA}, episode 2: chunk file for step {start + 1} is missing"]
    (root / "data" / keys.ACTION / "zarr.json").write_text("{broken")
    with pytest.raises(DataError, match=f"cannot open array data/{keys.ACTION}"):
        EpisodeStore.open(root)


def test_streaming_writer_copies_reused_buffers(tmp_path, monkeypatch):
    from robot_rl.data import store as store_mod

    monkeypatch.setattr(store_mod, "FLUSH_BYTES", 3000)  # several background blocks
    store = EpisodeStore.create(tmp_path / "r.zarr")
    q = np.zeros(6, np.float32)
    frame = np.zeros((16, 16, 3), np.uint8)
    with store.begin_episode() as w:
        for k in range(40):
            q[:] = k  # a recorder refilling the same arrays every step
            frame[:] = k
            w.append_step({keys.JOINT_POS: q, keys.ACTION: np.zeros(7), CAMERA: frame})
    ep = store.episode(0)
    np.testing.assert_array_equal(ep[keys.JOINT_POS][:, 0], np.arange(40))
    np.testing.assert_array_equal(ep[CAMERA][:, 0, 0, 0], np.arange(40))
    assert store.validate() == []
