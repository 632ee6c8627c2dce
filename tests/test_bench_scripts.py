"""Every bench script starts: it imports what it needs and parses `--help`.

The benchmarks themselves take minutes and are not part of `make test`; this catches the cheap
breakage (a renamed helper one script imports from another) before someone tries to rerun a
number in the README.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


def test_there_are_bench_scripts():
    assert "serving.py" in SCRIPTS and len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_parses_help(script):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"bench/{script} --help failed:\n{out.stderr[-2000:]}"
    assert "usage:" in out.stdout


def test_rl_sample_efficiency_runs_rlpd_on_push_from_a_real_store(tmp_path):
    """Beyond --help: the push RLPD path reads its demos through the training CLI's helpers,
    whose arguments have changed under it before (a reward offset it did not pass)."""
    from types import SimpleNamespace

    from bench.rl_sample_efficiency import ours_push
    from robot_rl.cli import main

    store = tmp_path / "poor.zarr"
    argv = ["sim", "collect", "--task", "push", "--quality", "poor", "--episodes", "2", "--out", str(store)]
    assert main(argv) == 0
    args = SimpleNamespace(data=str(store), utd=1, budget=12, eval_every=12, eval_episodes=1)
    curve = ours_push("rlpd", args, seed=0, out=tmp_path)
    assert [step for step, _ in curve] == [0, 12] and all(0.0 <= rate <= 1.0 for _, rate in curve)


def test_sim_throughput_runs_at_another_physics_rate_and_refuses_one_the_env_would():
    """The physics rate reaches the env (the header says how many physics steps an env step
    is); a rate that is not a whole multiple of the policy rate is refused by its flag."""
    run = [sys.executable, str(ROOT / "bench" / "sim_throughput.py"), "--tasks", "insertion", "--rounds", "1"]
    run += ["--steps", "20", "--camera-steps", "2"]
    out = subprocess.run([*run, "--physics-rate-hz", "250"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "our physics 250 Hz (25 steps per env step)" in out.stdout
    assert "| insertion |" in out.stdout
    bad = subprocess.run([*run, "--physics-rate-hz", "333"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "--physics-rate-hz" in bad.stderr and "whole number" in bad.stderr
