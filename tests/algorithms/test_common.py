"""Shared algorithm helpers: Polyak averaging, freezing a critic, reading out scalars."""

import torch

from robot_rl.algorithms.common import frozen, scalars, soft_update
from robot_rl.models.critics import QEnsemble


def test_soft_update_moves_targets_by_tau():
    source, target = QEnsemble(3, 2, (8,), members=2), QEnsemble(3, 2, (8,), members=2)
    before = [p.detach().clone() for p in target.parameters()]
    soft_update(list(target.parameters()), list(source.parameters()), 0.25)
    for b, t, s in zip(before, target.parameters(), source.parameters()):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * s)


def test_frozen_passes_gradients_to_the_input_only_and_restores():
    q = QEnsemble(3, 2, (8,), members=2)
    params = list(q.parameters())
    action = torch.zeros(4, 2, requires_grad=True)
    with frozen(params):
        q(torch.randn(4, 3), action).sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    assert all(p.grad is None and p.requires_grad for p in params)


def test_frozen_restores_after_an_error():
    q = QEnsemble(3, 2, (8,), members=2)
    params = list(q.parameters())
    try:
        with frozen(params):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert all(p.requires_grad for p in params)


def test_scalars_reads_out_floats():
    out = scalars(a=torch.tensor(1.5), b=torch.tensor(2, dtype=torch.int64), c=torch.tensor(-3.0))
    assert out == {"a": 1.5, "b": 2.0, "c": -3.0}
    assert all(isinstance(v, float) for v in out.values())
