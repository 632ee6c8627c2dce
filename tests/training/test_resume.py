"""A run killed with SIGKILL and resumed ends with the same weights as an uninterrupted one."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from robot_rl.training.checkpoint import load_checkpoint

JOB = Path(__file__).with_name("resume_job.py")
STEPS = 60


def _job():
    spec = importlib.util.spec_from_file_location("resume_job", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_here(store, out):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the job process
    try:
        _job().main(str(store), str(out), STEPS)
    finally:
        torch.set_num_threads(threads)


def _final(out) -> dict[str, torch.Tensor]:
    ckpts = sorted((Path(out) / "checkpoints").glob("step_*"))
    tensors, meta = load_checkpoint(ckpts[-1], kind="training_state")
    assert meta["step"] == STEPS
    return tensors


def test_sigkill_then_resume_is_bit_exact(tiny_store, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(JOB), str(tiny_store), str(out), str(STEPS)], env=env)
    latest = out / "checkpoints" / "latest"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and int(latest.read_text().strip().split("_")[1]) >= 20:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the job finished before it could be killed"
    killed_at = int(latest.read_text().strip().split("_")[1])
    assert 20 <= killed_at < STEPS

    _run_here(tiny_store, out)  # resumes from the killed run's last checkpoint
    _run_here(tiny_store, tmp_path / "reference")  # uninterrupted

    a, b = _final(tmp_path / "reference"), _final(out)
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("algo."):
            assert torch.equal(a[k], b[k]), f"{k} differs after resume from step {killed_at}"
