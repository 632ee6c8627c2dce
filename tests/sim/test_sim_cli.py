"""`robot-rl sim view` and `robot-rl sim collect` end to end, in-process."""

import imageio.v3 as iio
import numpy as np

from robot_rl import keys
from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore


def test_view_writes_three_views(tmp_path):
    out = tmp_path / "view.png"
    assert main(["sim", "view", "--task", "lift", "--out", str(out), "--size", "48", "--fast"]) == 0
    image = iio.imread(out)
    assert image.shape == (48, 3 * 48, 3)
    for k in range(3):
        assert image[:, 48 * k : 48 * (k + 1)].std() > 5


def test_collect_appends_expert_episodes_to_a_store(tmp_path):
    out = tmp_path / "demos.zarr"
    args = ["sim", "collect", "--task", "reach", "--episodes", "2", "--out", str(out), "--cameras", "wrist"]
    assert main([*args, "--image-size", "16"]) == 0
    assert main([*args, "--image-size", "16", "--seed", "5"]) == 0  # appends
    store = EpisodeStore.open(out)
    assert store.num_episodes == 4
    ep = store.episode(0)
    assert ep[keys.image_key("wrist")].shape[1:] == (16, 16, 3)
    assert ep[keys.ACTION].shape[1] == 7 and ep[keys.JOINT_POS].dtype == np.float32
    meta = store.episode_meta(0)
    assert meta.task == "reach" and meta.source == "sim" and meta.success is True


def test_bad_arguments_fail_cleanly(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["sim", "collect", "--task", "reach", "--out", str(tmp_path / "x.zarr"), "--cameras", "top"])
    assert "unknown 'top'" in capsys.readouterr().err


def test_negative_execution_noise_is_refused(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(
            [
                "sim",
                "collect",
                "--task",
                "reach",
                "--out",
                str(tmp_path / "x.zarr"),
                "--execution-noise",
                "-1",
            ]
        )
    assert "--execution-noise" in capsys.readouterr().err and not (tmp_path / "x.zarr").exists()


def test_steps_after_success_are_recorded(tmp_path):
    out = tmp_path / "push.zarr"
    args = ["sim", "collect", "--task", "push", "--episodes", "1", "--out", str(out)]
    assert main(args) == 0
    assert main([*args[:-1], str(tmp_path / "after.zarr"), "--steps-after-success", "5"]) == 0
    plain, after = EpisodeStore.open(out), EpisodeStore.open(tmp_path / "after.zarr")
    assert after.num_steps == plain.num_steps + 5 and after.episode_meta(0).success is True


def test_negative_steps_after_success_are_refused(tmp_path, capsys):
    import pytest

    out = tmp_path / "x.zarr"
    with pytest.raises(SystemExit):
        main(["sim", "collect", "--task", "push", "--out", str(out), "--steps-after-success", "-2"])
    assert "--steps-after-success" in capsys.readouterr().err and not out.exists()


def test_experts_at_another_physics_rate_and_a_rate_the_env_refuses(capsys):
    argv = ["sim", "experts", "--tasks", "reach", "--qualities", "expert", "--episodes", "2"]
    assert main([*argv, "--physics-rate-hz", "250"]) == 0
    out = capsys.readouterr().out
    assert "physics 250 Hz" in out and "| reach | 100% |" in out
    assert main([*argv, "--physics-rate-hz", "333"]) == 2
    assert "whole number" in capsys.readouterr().err
