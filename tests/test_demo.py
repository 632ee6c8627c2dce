"""`make demo`'s job, shrunk: collect -> train -> eval runs end to end and resumes."""

import pytest

from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore


@pytest.mark.slow
def test_demo_end_to_end_and_rerun(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--demos", "8", "--steps", "20", "--episodes", "2"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "$ robot-rl sim collect" in text and "$ robot-rl eval" in text
    assert "success" in text.lower()
    assert len(EpisodeStore.open(out / "push_expert.zarr")) == 8
    assert (out / "push_diffusion" / "policy").is_dir()
    assert (out / "push_eval.mp4").stat().st_size > 0
    # A rerun does not collect again and the finished training is not repeated.
    assert main(args) == 0
    assert "already holds 8 episodes, skipped" in capsys.readouterr().out
    assert len(EpisodeStore.open(out / "push_expert.zarr")) == 8
