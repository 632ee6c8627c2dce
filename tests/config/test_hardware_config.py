import textwrap

import numpy as np
import pytest
import yaml

from robot_rl.config import ConfigError, load_hardware_config
from robot_rl.paths import share_dir


def _write(tmp_path, mutate):
    data = yaml.safe_load((share_dir() / "hardware_configs" / "sim_ur5e.yaml").read_text())
    mutate(data)
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_config_loads():
    configs = sorted((share_dir() / "hardware_configs").glob("*.yaml"))
    assert configs
    for path in configs:
        hw = load_hardware_config(path)
        assert hw.num_joints == len(hw.joint_names) > 0
        assert np.all(hw.position_lower < hw.position_upper)


def test_sim_ur5e_by_name():
    hw = load_hardware_config("sim_ur5e")
    assert hw.joint_names[0] == "shoulder_pan_joint"
    assert hw.action_dim == hw.num_joints + 1
    assert hw.control_rate_hz == 500.0


def test_unknown_key_names_file_and_key(tmp_path):
    path = _write(tmp_path, lambda d: d["safety"].update(max_speed=3))
    with pytest.raises(ConfigError, match=r"robot\.yaml.*safety\.max_speed"):
        load_hardware_config(path)


def test_missing_key_named(tmp_path):
    path = _write(tmp_path, lambda d: d.pop("control_rate_hz"))
    with pytest.raises(ConfigError, match="missing required key 'control_rate_hz'"):
        load_hardware_config(path)


def test_wrong_type_named(tmp_path):
    path = _write(tmp_path, lambda d: d["joints"][2].update(velocity_limit="fast"))
    with pytest.raises(ConfigError, match=r"joints\[2\]\.velocity_limit must be a number"):
        load_hardware_config(path)


def test_inverted_limits_refused(tmp_path):
    path = _write(tmp_path, lambda d: d["joints"][0].update(position_limits=[1.0, -1.0]))
    with pytest.raises(ConfigError, match="shoulder_pan_joint: position_limits"):
        load_hardware_config(path)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("joints: [\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_hardware_config(bad)
    with pytest.raises(ConfigError, match="no hardware config 'nope'"):
        load_hardware_config("nope")


def test_cli_check_config(capsys):
    from robot_rl.cli import main

    assert main(["check-config", "sim_ur5e"]) == 0
    assert "shoulder_pan_joint" in capsys.readouterr().out
    assert main(["check-config", "does_not_exist"]) == 2
    assert "no hardware config" in capsys.readouterr().err
