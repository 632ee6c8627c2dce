"""Multi-layer perceptrons, single and as a fused ensemble.

`EnsembleMLP` evaluates N independent networks in one batched matmul per layer
(`torch.baddbmm` over a leading member axis), so a 10-critic ensemble costs about what one
wide layer costs, with no Python loop over members. Inputs are either shared by every member,
shape (B, in), or per member, shape (N, B, in); outputs are always (N, B, out), contiguous.

ReLUs work in place: on CPU these nets are bound by memory traffic as much as by matmuls
(Cal-QL's penalty runs 7936 rows x 2 members x 256 = 16 MB per activation), and an in-place
ReLU saves one activation-sized allocation and write per layer. It is safe for autograd because
nothing before it (Linear, baddbmm, LayerNorm) needs its own output for the backward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, layer_norm: bool = False) -> nn.Sequential:
    """Linear -> [LayerNorm] -> ReLU for each hidden width, then a linear head."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if layer_norm:
            layers.append(nn.LayerNorm(h))
        layers.append(nn.ReLU(inplace=True))
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """N independent linear layers applied as one batched matmul: (N, B, in) -> (N, B, out)."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        self.members, self.in_dim, self.out_dim = members, in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim))
        # The same initialisation nn.Linear uses, member by member.
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """`members` (k,) evaluates only those members (k, B, out): RLPD's random target pair."""
        weight = self.weight if members is None else self.weight[members]
        bias = self.bias if members is None else self.bias[members]
        if x.dim() == 2:
            # Shared input, broadcast over members without a copy (stride 0); the output comes
            # out member-major and contiguous, the layout the next layer's baddbmm wants.
            x = x.expand(weight.shape[0], *x.shape)
        return torch.baddbmm(bias, x, weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the feature axis with separate affine parameters per member."""

    def __init__(self, members: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))
        self.dim = dim

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        weight = self.weight if members is None else self.weight[members]
        bias = self.bias if members is None else self.bias[members]
        return torch.nn.functional.layer_norm(x, (self.dim,)) * weight + bias


class EnsembleMLP(nn.Module):
    """N MLPs of identical shape evaluated together: (B, in) or (N, B, in) -> (N, B, out)."""

    def __init__(
        self, members: int, in_dim: int, hidden: tuple[int, ...], out_dim: int, layer_norm: bool = False
    ):
        super().__init__()
        self.members = members
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers.append(EnsembleLinear(members, width, h))
            if layer_norm:
                layers.append(EnsembleLayerNorm(members, h))
            layers.append(nn.ReLU(inplace=True))
            width = h
        layers.append(EnsembleLinear(members, width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """All members (N, B, out), or only `members` (k, B, out) without computing the rest."""
        if members is None:
            return self.net(x)
        for layer in self.net:
            x = layer(x, members) if isinstance(layer, EnsembleLinear | EnsembleLayerNorm) else layer(x)
        return x
