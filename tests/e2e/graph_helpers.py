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


def call(executor, client, request, timeout_s: float = 60.0, attempt_s: float = 10.0):
    """Call a service, resending every attempt_s: after a SIGKILL, discovery may still match the
    dead server for a while, and a loaded machine may take seconds to match the new one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not client.wait_for_service(timeout_sec=min(attempt_s, max(0.0, deadline - time.monotonic()))):
            continue
        future = client.call_async(request)
        if spin_until(executor, future.done, min(attempt_s, max(0.0, deadline - time.monotonic()))):
            return future.result()
        client.remove_pending_request(future)
    raise AssertionError(f"service {client.srv_name} did not answer within {timeout_s:g} s")
