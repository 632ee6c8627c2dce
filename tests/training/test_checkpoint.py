import pytest
import torch

from robot_rl.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_optimizer_tensors,
    optimizer_tensors,
    save_checkpoint,
)


def test_round_trip_and_atomic_replace(tmp_path):
    path = tmp_path / "ckpt"
    save_checkpoint(path, {"w": torch.ones(3)}, {"step": 1}, kind="k")
    save_checkpoint(path, {"w": torch.zeros(3)}, {"step": 2}, kind="k")
    tensors, meta = load_checkpoint(path, kind="k")
    assert meta["step"] == 2 and torch.equal(tensors["w"], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"], "temporary directories left behind"
    with pytest.raises(CheckpointError, match="expected 'other'"):
        load_checkpoint(path, kind="other")


def test_optimizer_state_round_trips_through_tensors():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, betas=(0.9, 0.95))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 4)).pow(2).sum().backward()
        opt.step()
    flat = optimizer_tensors(opt, "optim")
    assert all(isinstance(v, torch.Tensor) for v in flat.values())
    clone = torch.nn.Linear(4, 2)
    clone.load_state_dict(net.state_dict())
    opt2 = torch.optim.AdamW(clone.parameters(), lr=1.0)
    load_optimizer_tensors(opt2, flat, "optim")
    assert opt2.param_groups[0]["lr"] == pytest.approx(3e-4)
    assert opt2.param_groups[0]["betas"] == pytest.approx((0.9, 0.95))
    x = torch.randn(8, 4)
    for o, n in ((opt, net), (opt2, clone)):
        o.zero_grad()
        n(x).pow(2).sum().backward()
        o.step()
    for a, b in zip(net.parameters(), clone.parameters()):
        assert torch.equal(a, b)
