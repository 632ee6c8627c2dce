"""`make demo`'s job, shrunk: collect -> train -> distill -> eval both runs end to end and resumes."""

import pytest

from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore


@pytest.mark.slow
def test_demo_end_to_end_and_rerun(tmp_path, capsys):
    out = tmp_path / "demo"
    args = [
        "demo",
        "--out",
        str(out),
        "--demos",
        "8",
        "--steps",
        "20",
        "--distill-steps",
        "10",
        "--episodes",
        "2",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    for stage in ("sim collect", "train diffusion", "distill", "eval"):
        assert f"$ robot-rl {stage}" in text
    # The closing table: both policies, their success and batch-1 latency.
    table = text[text.index("| policy | sampler |") :]
    assert "| diffusion (DDIM) | ddim-10 |" in table and "| one-step student | consistency-1 |" in table
    assert table.count(" ms |") == 2
    assert len(EpisodeStore.open(out / "push_expert.zarr")) == 8
    assert (out / "push_diffusion" / "policy").is_dir() and (out / "push_student" / "policy").is_dir()
    assert (out / "push_diffusion.mp4").stat().st_size > 0 and (out / "push_student.mp4").stat().st_size > 0
    # A rerun does not collect again and the finished training is not repeated.
    assert main(args) == 0
    assert "already holds 8 episodes, skipped" in capsys.readouterr().out
    assert len(EpisodeStore.open(out / "push_expert.zarr")) == 8
