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
