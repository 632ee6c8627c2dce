"""Off-screen camera images from a MuJoCo model, one mujoco.Renderer per image size.

Fast by default (what training wants): shadows, reflections, skybox and multisampling off.
`pretty=True` turns them on for images people look at (about 10x slower on a CPU).
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
from mujoco import gl_context


def _check_backend() -> None:
    wanted = os.environ.get("MUJOCO_GL", "").lower()
    loaded = gl_context._MUJOCO_GL
    if wanted != loaded:
        raise RuntimeError(
            f"mujoco was imported with MUJOCO_GL={loaded or '<unset>'} but MUJOCO_GL is now {wanted!r}: "
            "import sim (or set MUJOCO_GL=osmesa / egl) before anything imports mujoco"
        )


class CameraRenderer:
    def __init__(self, model: mujoco.MjModel, width: int, height: int, pretty: bool = False):
        _check_backend()
        model.vis.quality.offsamples = 4 if pretty else 0
        if pretty:  # MuJoCo's default tessellation; the scenes ship a coarser one for speed
            model.vis.quality.numslices, model.vis.quality.numstacks, model.vis.quality.numquads = 28, 16, 4
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        flags = self._renderer.scene.flags
        for flag in (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        ):
            flags[flag] = 1 if pretty else 0
        self._option = mujoco.MjvOption()  # default groups 0-2: visual geoms, not collision (3)

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """(height, width, 3) uint8 image from the named camera."""
        self._renderer.update_scene(data, camera=camera, scene_option=self._option)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
