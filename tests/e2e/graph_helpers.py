"""Helpers for whole-graph tests: run `robot-rl bringup` as a subprocess and talk to it over ROS."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class BringupProcess:
    """`robot-rl bringup ...` in its own process; its node pids parsed from its output."""

    def __init__(self, args: list[str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "robot_rl.cli", "bringup", *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def pids(self) -> dict[str, int]:
        return {m[0]: int(m[1]) for m in re.findall(r"started (\w+) \(pid (\d+)\)", self.log())}

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


def spin_until(executor, predicate, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=step_s)
        if predicate():
            return True
    return predicate()


def call(executor, client, request, timeout_s: float = 20.0):
    assert client.wait_for_service(timeout_sec=timeout_s), f"service {client.srv_name} never appeared"
    future = client.call_async(request)
    assert spin_until(executor, future.done, timeout_s), f"service {client.srv_name} did not answer"
    return future.result()
