"""Where the package's data files live, in a source checkout and in a colcon install.

A `pip install -e .` reads them from the repository; `colcon build` installs them under
share/robot_rl (launch/, hardware_configs/, sim/assets/).
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The folder holding hardware_configs/, launch/ and sim/assets/."""
    if (_REPO / "hardware_configs").is_dir():
        return _REPO
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "share" / "robot_rl"
        if (candidate / "hardware_configs").is_dir():
            return candidate
    raise FileNotFoundError(
        "cannot find robot_rl's data files: no hardware_configs/ beside the source tree and "
        "none under share/robot_rl in AMENT_PREFIX_PATH (source your colcon install?)"
    )


def hardware_config_path(name_or_path: str | os.PathLike) -> Path:
    """`sim_ur5e` -> hardware_configs/sim_ur5e.yaml; an existing file path is returned as is."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = share_dir() / "hardware_configs" / f"{path.name.removesuffix('.yaml')}.yaml"
    if not candidate.exists():
        known = sorted(p.stem for p in (share_dir() / "hardware_configs").glob("*.yaml"))
        raise FileNotFoundError(f"no hardware config {str(name_or_path)!r}; known: {', '.join(known)}")
    return candidate


def asset_path(relative: str | os.PathLike) -> Path:
    """A MuJoCo asset, e.g. `sim/assets/ur5e/ur5e.xml`, resolved against the share dir."""
    path = Path(relative)
    return path if path.is_absolute() else share_dir() / path
