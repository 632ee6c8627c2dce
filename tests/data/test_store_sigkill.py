"""SIGKILL a writer at random points, many times: every finished episode survives bit for bit."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from data_synthetic import make_episode

from robot_rl.data.store import EpisodeStore

WRITER = Path(__file__).with_name("sigkill_writer.py")


def test_sigkill_during_appends_never_loses_a_finished_episode(tmp_path, caplog):
    path = tmp_path / "kill.zarr"
    rng = np.random.default_rng(1234)
    committed = -1
    trimmed = 0
    kills = 8
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
        )
        line = proc.stdout.readline()
        assert line.startswith("ready"), line
        # Let it finish 1 or 2 episodes (so progress does not depend on machine load), then
        # kill it at a random moment of the appends that follow.
        for _ in range(int(rng.integers(1, 3))):
            line = proc.stdout.readline()
            assert line.startswith("committed"), line
            committed = max(committed, int(line.split()[1]))
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for ln in out.splitlines():
            if ln.startswith("committed"):
                committed = max(committed, int(ln.split()[1]))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="robot_rl.data.store"):
            store = EpisodeStore.open(path, mode="a")
        trimmed += any("torn tail" in r.getMessage() for r in caplog.records)
        assert len(store) >= committed + 1  # every episode reported finished is there
        assert store.validate() == []
    store = EpisodeStore.open(path, mode="r")
    assert len(store) >= kills
    for i in range(len(store)):
        expected = make_episode(i)
        got = store.episode(i)
        assert set(got) == set(expected)
        for k, v in expected.items():
            assert got[k].dtype == v.dtype and np.array_equal(got[k], v), (i, k)
        meta = store.episode_meta(i)
        assert meta.task == f"task{i}" and meta.success == bool(i % 2) and meta.start_time == 1.0 + i
    assert trimmed > 0  # some kills did land mid-episode
