"""Picking the off-screen OpenGL backend for MuJoCo: EGL with a GPU, OSMesa without.

MuJoCo reads MUJOCO_GL when `mujoco` is first imported, so `configure_gl()` must run before
that: the `sim` package and robot_rl.control.kinematics call it before importing mujoco. A
MUJOCO_GL already set by the user wins.

OSMesa and triton do not mix in one process in one order: PyOpenGL loads libOSMesa (and with
it Mesa's LLVM) with RTLD_GLOBAL, and triton, which torch imports lazily (torch._dynamo,
torchvision.ops), then segfaults while loading its own bundled LLVM. Loaded the other way
round both work, so with OSMesa `configure_gl()` imports triton first when it is installed.
"""

from __future__ import annotations

import importlib.util
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
    if os.environ["MUJOCO_GL"] == "osmesa" and importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401  (must precede libOSMesa; see the module docstring)
    return os.environ["MUJOCO_GL"]
