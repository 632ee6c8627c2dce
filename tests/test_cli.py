"""`robot-rl --help` and every command's --help work (argparse help strings are %-formatted)."""

import pytest

from robot_rl.cli import COMMANDS, main


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: robot-rl")


@pytest.mark.parametrize(
    "argv, named",
    [
        (["distill", "--method", "direct", "--teacher-steps", "-3"], "--teacher-steps"),
        (["distill", "--grid-steps", "0"], "--grid-steps"),
        (["distill", "--target-decay", "1.5"], "--target-decay"),
        (["distill", "--steps", "0"], "--steps"),
        (["train", "diffusion", "--action-horizon", "0"], "--action-horizon"),
        (["train", "diffusion", "--lr", "nan"], "--lr"),
        (["train", "diffusion", "--batch-size", "ten"], "--batch-size"),
        (["train", "iql", "--eval-every", "-1"], "--eval-every"),
    ],
)
def test_bad_numbers_are_refused_while_parsing_before_anything_is_read(argv, named, tmp_path, capsys):
    """The teacher and the data below do not exist: the number is refused before either is read,
    and nothing is created under --out."""
    teacher = ["--teacher", str(tmp_path / "no_teacher")] if argv[0] == "distill" else []
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main([*argv, *teacher, "--data", str(tmp_path / "none.zarr"), "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "no_teacher" not in err and "none.zarr" not in err
    assert not out.exists()
