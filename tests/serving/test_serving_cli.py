"""`robot-rl serve` as a process: loads a real checkpoint, serves it, shuts down on Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time

from serving_helpers import tiny_policy, valid_obs

from robot_rl.serving.client import InferenceClient, ZmqTransport


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_serves_a_saved_checkpoint(tmp_path):
    ckpt = tiny_policy(seed=5).save(tmp_path / "pick")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robot_rl.cli",
            "serve",
            "--policy",
            f"pick={ckpt}",
            "--bind",
            f"tcp://127.0.0.1:{port}",
            "--insecure-loopback",
            "--device",
            "cpu",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        lines = []
        while not any(f"serving pick on tcp://127.0.0.1:{port}" in x for x in lines):
            line = proc.stdout.readline()
            assert line, f"server exited: {lines}"
            lines.append(line)
        with InferenceClient(ZmqTransport(f"tcp://127.0.0.1:{port}"), timeout_s=10.0) as c:
            chunk = c.infer("pick", valid_obs(), stamp=3.5)
            assert chunk.start_time == 3.5 and chunk.actions.shape == (4, 7)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_command_names_a_missing_checkpoint(tmp_path):
    t0 = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_rl.cli",
            "serve",
            "--policy",
            f"pick={tmp_path}/nothing",
            "--insecure-loopback",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "nothing" in out.stderr
    assert time.monotonic() - t0 < 120
