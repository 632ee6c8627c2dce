"""Critics for the RL algorithms: a fused Q ensemble and a state-value network.

Both take already-normalised flat observations (B, obs_dim) and actions scaled to [-1, 1]
(B, act_dim). The Q ensemble returns (N, B): one row per member, computed in one batched
matmul per layer (see `EnsembleMLP`).
"""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.models.mlp import EnsembleMLP, mlp


class QEnsemble(nn.Module):
    """N independent Q(s, a) networks. RLPD uses N=10 with LayerNorm; IQL/Cal-QL use N=2."""

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], members: int = 2, layer_norm: bool = False
    ):
        super().__init__()
        self.members = members
        self.net = EnsembleMLP(members, obs_dim + act_dim, hidden, 1, layer_norm=layer_norm)

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, obs_dim), (B, act_dim) -> (N, B), or (k, B) for the `members` subset (k,).
        Leading sample axes are flattened through."""
        x = torch.cat([obs, action], dim=-1)
        lead = x.shape[:-1]
        n = self.members if members is None else len(members)
        return self.net(x.reshape(-1, x.shape[-1]), members).view(n, *lead)


class ValueNet(nn.Module):
    """V(s) for IQL's expectile regression: (B, obs_dim) -> (B,)."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...], layer_norm: bool = False):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 1, layer_norm=layer_norm)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
