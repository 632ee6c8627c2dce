"""The data-quality report flags rough, odd-length and inconsistent episodes."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl import keys
from robot_rl.cli import main
from robot_rl.data.quality import quality_report
from robot_rl.data.store import DataError, EpisodeStore


def _episode(n, rng, action_offset=0.0, noise=0.0):
    s = np.linspace(0, 1, n)
    q = np.stack([np.sin(s * 3 + k) for k in range(6)], 1) + rng.normal(scale=noise, size=(n, 6))
    a = np.concatenate([q + action_offset, np.ones((n, 1))], 1)
    return {keys.JOINT_POS: q.astype(np.float32), keys.ACTION: a.astype(np.float32)}


def test_report_flags_jerky_and_long_episodes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(tmp_path / "q.zarr", step_dt=0.1)
    for _ in range(12):
        store.append_episode(_episode(int(rng.integers(48, 53)), rng, noise=1e-4))
    jerky = store.append_episode(_episode(50, rng, noise=0.05))
    long = store.append_episode(_episode(400, rng, noise=1e-4))
    report = quality_report(store)
    assert jerky in report.outliers and any("jerk" in r for r in report.outliers[jerky])
    assert long in report.outliers and any("length" in r for r in report.outliers[long])
    assert set(report.outliers) <= {jerky, long}
    assert 0 < report.coverage <= 1
    assert main(["data", "quality", str(tmp_path / "q.zarr")]) == 0
    assert "outlier episodes:" in capsys.readouterr().out


def test_divergence_is_higher_when_demonstrators_disagree(tmp_path):
    rng = np.random.default_rng(1)
    same = EpisodeStore.create(tmp_path / "same.zarr")
    mixed = EpisodeStore.create(tmp_path / "mixed.zarr")
    for i in range(6):
        same.append_episode(_episode(60, rng, noise=1e-3))
        mixed.append_episode(_episode(60, rng, action_offset=0.5 * (i % 2), noise=1e-3))
    assert quality_report(mixed).action_divergence > 5 * quality_report(same).action_divergence
    with pytest.raises(DataError, match="no key 'ee_pos'"):
        quality_report(same, state_key=keys.EE_POS)
