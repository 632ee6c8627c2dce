"""Killing the online learner mid-run and starting it again continues from its last checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from robot_rl import keys
from robot_rl.training.checkpoint import load_checkpoint
from robot_rl.training.online import STATE_KIND

REPO = Path(__file__).resolve().parents[2]
STEPS = 200


def _command(out: Path) -> list[str]:
    return [
        sys.executable, "-m", "robot_rl.cli", "train", "rlpd", "--task", "push", "--out", str(out),
        "--env-steps", str(STEPS), "--checkpoint-every", "20", "--eval-every", "0", "--utd", "1",
        "--hidden", "32,32", "--critics", "2", "--batch-size", "32", "--random-steps", "20",
        "--max-episode-steps", "20", "--no-progress",
    ]  # fmt: skip


def _latest(out: Path) -> tuple[dict, dict]:
    ckpt = out / "checkpoints"
    return load_checkpoint(ckpt / (ckpt / "latest").read_text().strip(), kind=STATE_KIND)


def test_sigkill_then_restart_continues_from_the_last_checkpoint(tmp_path):
    out = tmp_path / "rlpd"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        _command(out), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    latest = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if latest.exists() and latest.read_text().strip() >= "step_00000040":
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    tensors, meta = _latest(out)
    killed_at = meta["env_step"]
    assert 40 <= killed_at < STEPS
    replay_at_kill = len(tensors[f"replay.online.{keys.ACTION}"])
    updates_at_kill = int(tensors["algo.steps"])
    assert replay_at_kill > 0 and updates_at_kill > 0

    done = subprocess.run(_command(out), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        f"resuming from {out / 'checkpoints' / f'step_{killed_at:08d}'} at env step {killed_at}"
        in done.stdout
    )
    tensors, meta = _latest(out)
    assert meta["env_step"] == STEPS
    # The replay and the learner carried on: nothing collected before the kill was lost.
    assert len(tensors[f"replay.online.{keys.ACTION}"]) >= replay_at_kill + (STEPS - killed_at) - 20
    assert int(tensors["algo.steps"]) >= updates_at_kill + (STEPS - killed_at) - 20
    assert (out / "curve.png").stat().st_size > 0 and (out / "policy" / "model.safetensors").exists()
