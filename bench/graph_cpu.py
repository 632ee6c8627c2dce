"""CPU taken by each process of the running sim graph with a policy (where the cores go).

    .venv/bin/python bench/graph_cpu.py [--policy CKPT] [--seconds 20] [--warmup 25]

Starts `robot-rl serve` with the policy (default: an untrained DDIM-10 push policy of the
default architecture, bench/e2e_latency.py's) and `robot-rl bringup --policy push` (sim node,
controller, policy node), waits `--warmup` seconds, then reads each process's user + system
CPU time from /proc/<pid>/stat at the start and the end of `--seconds`:

    CPU% = (utime + stime at the end - at the start) / seconds    (100% = one core)

Printed: a row per process, the total (200% = both cores of a 2-core machine) and the load
average. On a 2-core machine a graph that takes most of both cores makes inference late and
joint states stale: the policy then does worse over ROS than in plain sim (README "ROS 2
graph"). To compare two versions of the code, run this script from each checkout.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.e2e_latency import untrained_policy, wait_for_server  # noqa: E402
from bench.online_ros import free_endpoint, stop  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15 of stat)


def node_pids(bringup_log: Path) -> dict[str, int]:
    import re

    return {m[0]: int(m[1]) for m in re.findall(r"started (\w+) \(pid (\d+)\)", bringup_log.read_text())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", help="push policy checkpoint (default: untrained DDIM-10)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time")
    parser.add_argument("--warmup", type=float, default=25.0, help="start-up time before measuring")
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="bench_graph_cpu_") as tmp:
        tmp = Path(tmp)
        policy = Path(args.policy) if args.policy else untrained_policy(tmp / "ddim", "ddim", 10)
        endpoint = free_endpoint()
        procs: dict[str, subprocess.Popen] = {}
        with open(tmp / "server.log", "w") as server_log, open(tmp / "bringup.log", "w") as bringup_log:
            try:
                procs["serve"] = subprocess.Popen(
                    [sys.executable, "-m", "robot_rl.cli", "serve", "--bind", endpoint, "--insecure-loopback"]
                    + ["--device", "cpu", "--policy", f"push={policy}"],
                    cwd=ROOT,
                    env=env,
                    stdout=server_log,
                    stderr=subprocess.STDOUT,
                )
                wait_for_server(endpoint, ["push"], procs["serve"], tmp / "server.log")
                procs["bringup"] = subprocess.Popen(
                    [sys.executable, "-m", "robot_rl.cli", "bringup", "--policy", "push"]
                    + ["--server", endpoint, "--task", "push"],
                    cwd=ROOT,
                    env=env,
                    stdout=bringup_log,
                    stderr=subprocess.STDOUT,
                )
                print(f"graph starting; measuring {args.seconds:g} s after {args.warmup:g} s...", flush=True)
                time.sleep(args.warmup)
                pids = {"robot-rl serve": procs["serve"].pid, **node_pids(tmp / "bringup.log")}
                if len(pids) < 4:
                    raise RuntimeError(
                        "the graph did not start:\n" + (tmp / "bringup.log").read_text()[-3000:]
                    )
                start = {name: cpu_seconds(pid) for name, pid in pids.items()}
                time.sleep(args.seconds)
                used = {name: (cpu_seconds(pid) - start[name]) / args.seconds for name, pid in pids.items()}
                load = os.getloadavg()
            finally:
                stop([procs.get("bringup"), procs.get("serve")])
    print(f"\n{'process':16s} {'CPU (100% = one core)':>22s}")
    for name, share in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"{name:16s} {share * 100:21.0f}%")
    print(f"{'total':16s} {sum(used.values()) * 100:21.0f}%   of {os.cpu_count() * 100}%")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
