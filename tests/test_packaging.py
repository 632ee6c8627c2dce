"""The tree builds as a ROS 2 package with colcon (from PyPI) and installs its data files."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_copy(dst: Path) -> Path:
    """Copy what git would check out (tracked plus untracked-but-not-ignored files)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    pkg = dst / "src" / "robot_rl"
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            (pkg / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, pkg / name.decode())
    return pkg


@pytest.mark.slow
def test_colcon_build_installs_share(tmp_path):
    colcon = Path(sys.executable).parent / "colcon"
    assert colcon.exists(), "colcon is not installed in the venv (dev extra)"
    _tracked_copy(tmp_path)
    env = dict(os.environ, COLCON_HOME=str(tmp_path / ".colcon"))
    result = subprocess.run(
        [str(colcon), "build", "--packages-select", "robot_rl", "--event-handlers", "console_direct-"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    share = tmp_path / "install" / "robot_rl" / "share" / "robot_rl"
    assert (share / "package.xml").is_file()
    assert any((share / "launch").glob("*.launch.py")), "launch files missing from share/robot_rl/launch"
    assert (share / "hardware_configs" / "sim_ur5e.yaml").is_file()
    assert (
        tmp_path
        / "install"
        / "robot_rl"
        / "share"
        / "ament_index"
        / "resource_index"
        / "packages"
        / "robot_rl"
    ).exists()
    # The library itself is installed and importable from the install space.
    site = list((tmp_path / "install" / "robot_rl" / "lib").glob("python3*/site-packages"))
    assert site and (site[0] / "robot_rl" / "keys.py").is_file(), (
        "robot_rl not installed into the install space"
    )
    # From the install space alone (no source tree), the library finds its data under share/robot_rl.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from robot_rl.config import load_hardware_config as f; print(f('sim_ur5e').source)",
        ],
        cwd=tmp_path,
        env=dict(env, PYTHONPATH=str(site[0]), AMENT_PREFIX_PATH=str(tmp_path / "install" / "robot_rl")),
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(share)), probe.stdout


def test_ci_runs_make_test():
    text = (ROOT / ".ci" / "run").read_text()
    assert "make test" in text
