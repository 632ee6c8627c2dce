"""Fixtures for tests/control."""

import pytest

from robot_rl.config.hardware import load_hardware_config


@pytest.fixture(scope="session")
def hw():
    return load_hardware_config("sim_ur5e")
