"""Install hooks shared by `pip install -e .` and `colcon build` (ament_python).

Metadata and dependencies live in pyproject.toml. This file adds what a ROS 2 package
needs on top: the ament index marker, package.xml, launch files, hardware configs and
the MuJoCo assets under share/robot_rl.
"""

from pathlib import Path

from setuptools import setup

PACKAGE = "robot_rl"
ROOT = Path(__file__).resolve().parent


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """(install dir, files) pairs that mirror `folder` under share/robot_rl."""
    entries: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(ROOT)
            entries.setdefault(f"share/{PACKAGE}/{rel.parent.as_posix()}", []).append(rel.as_posix())
    return list(entries.items())


setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("hardware_configs"),
        *tree("sim/assets"),
    ],
)
