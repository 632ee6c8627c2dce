"""Typed configs. Plain YAML files in, frozen dataclasses out, unknown keys refused."""

from robot_rl.config.hardware import HardwareConfig, load_hardware_config
from robot_rl.config.loader import ConfigError, from_dict, load_yaml, to_dict

__all__ = ["ConfigError", "HardwareConfig", "from_dict", "load_hardware_config", "load_yaml", "to_dict"]
