"""`robot-rl data ...` through the real entry point."""

from __future__ import annotations

import numpy as np
from data_synthetic import CAMERA, make_episode

from robot_rl.cli import main
from robot_rl.data.store import EpisodeMeta, EpisodeStore


def _store(path, n, first=0):
    store = EpisodeStore.create(path)
    for i in range(first, first + n):
        store.append_episode(make_episode(i), EpisodeMeta(task="lift", success=i % 2 == 0))
    return store


def test_info_validate_merge_split(tmp_path, capsys):
    _store(tmp_path / "a.zarr", 3)
    _store(tmp_path / "b.zarr", 2, first=3)
    assert main(["data", "info", str(tmp_path / "a.zarr")]) == 0
    out = capsys.readouterr().out
    assert "3 episodes" in out and "success rate: 0.667" in out and f"data/{CAMERA}" in out
    assert main(["data", "validate", str(tmp_path / "a.zarr")]) == 0
    assert (
        main(["data", "merge", str(tmp_path / "m.zarr"), str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")])
        == 0
    )
    merged = EpisodeStore.open(tmp_path / "m.zarr")
    assert len(merged) == 5
    np.testing.assert_array_equal(merged.episode(4)[CAMERA], make_episode(4)[CAMERA])
    assert main(["data", "merge", str(tmp_path / "m.zarr"), str(tmp_path / "a.zarr")]) == 2  # exists: refused
    args = ["data", "split", str(tmp_path / "m.zarr"), str(tmp_path / "tr.zarr"), str(tmp_path / "va.zarr")]
    assert main([*args, "--val-ratio", "0.4"]) == 0
    assert (
        len(EpisodeStore.open(tmp_path / "tr.zarr")) == 3
        and len(EpisodeStore.open(tmp_path / "va.zarr")) == 2
    )


def test_validate_fails_with_a_message_on_a_corrupt_store(tmp_path, capsys):
    store = _store(tmp_path / "a.zarr", 2)
    start, _ = store.episode_range(1)
    (tmp_path / "a.zarr" / "data" / CAMERA / "c" / str(start) / "0" / "0" / "0").write_bytes(b"bad")
    assert main(["data", "validate", str(tmp_path / "a.zarr")]) == 1
    err = capsys.readouterr().err
    assert f"data/{CAMERA}, episode 1" in err and "INVALID" in err
    assert main(["data", "info", str(tmp_path / "missing.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_video_and_plot_files(tmp_path):
    _store(tmp_path / "a.zarr", 1)
    assert (
        main(["data", "export-video", str(tmp_path / "a.zarr"), str(tmp_path / "v.mp4"), "--camera", "front"])
        == 0
    )
    import imageio.v3 as iio

    frames = iio.imread(tmp_path / "v.mp4")
    assert frames.shape[0] == len(make_episode(0)[CAMERA])
    assert main(["data", "plot", str(tmp_path / "a.zarr"), str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        main(["data", "export-video", str(tmp_path / "a.zarr"), str(tmp_path / "w.mp4"), "--camera", "wrist"])
        == 2
    )
