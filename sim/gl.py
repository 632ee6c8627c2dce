"""Picking the off-screen OpenGL backend for MuJoCo: EGL with a GPU, OSMesa without.

MuJoCo reads MUJOCO_GL when `mujoco` is first imported, so `configure_gl()` must run before
that; sim.make_env and the sim CLI call it. A MUJOCO_GL already set by the user wins.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def _has_nvidia_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def configure_gl() -> str:
    """Set MUJOCO_GL (and PYOPENGL_PLATFORM) if unset; return the backend in use."""
    if "MUJOCO_GL" not in os.environ:
        os.environ["MUJOCO_GL"] = "egl" if _has_nvidia_gpu() else "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    return os.environ["MUJOCO_GL"]
