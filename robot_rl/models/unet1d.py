"""A 1-D temporal U-Net conditioned by FiLM on the observation and the diffusion step.

The noise-prediction network of diffusion policy (Chi et al., 2023): a pure nn.Module
mapping a noisy action sequence (B, Tp, A), a diffusion timestep (B,) and a global
condition vector (B, C) (the encoded observation window) to a tensor of the same shape
as the actions (predicted noise, or the clean sequence, depending on how it is trained).

    x (B, Tp, A) ──► down: [ResBlock, ResBlock, Downsample] per level ──► mid ──►
                     up:   [concat skip, ResBlock, ResBlock, Upsample] ──► conv ──► (B, Tp, A)
    cond = [step embedding ; global condition] ──► FiLM (scale, bias) in every ResBlock

Tp must be divisible by 2 ** (len(down_dims) - 1) so that the skips line up.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.arange(half) * -(math.log(10000.0) / (half - 1)))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # In float32 whatever the module's dtype: bf16 would round t * freq for large t.
        arg = t.float()[:, None] * self.freqs.float()[None, :]
        return torch.cat((arg.sin(), arg.cos()), dim=-1).to(self.freqs.dtype)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_ch),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks; the condition sets a per-channel scale and bias (FiLM) between them."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                Conv1dBlock(in_ch, out_ch, kernel_size, n_groups),
                Conv1dBlock(out_ch, out_ch, kernel_size, n_groups),
            ]
        )
        self.out_ch = out_ch
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, out_ch * 2))
        self.residual_conv = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.blocks[0](x)
        scale, bias = self.cond_encoder(cond).unsqueeze(-1).chunk(2, dim=1)
        out = scale * out + bias
        out = self.blocks[1](out)
        return out + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    """Noise-prediction U-Net over the action sequence.

    Args:
        action_dim: A, channels of the sequence.
        global_cond_dim: size of the flattened observation features.
        step_embed_dim: size of the diffusion-step embedding.
        down_dims: channels per U-Net level; the sequence halves at each level but the last.
        kernel_size, n_groups: conv kernel and GroupNorm groups.
    """

    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        step_embed_dim: int = 128,
        down_dims: tuple[int, ...] = (256, 512, 1024),
        kernel_size: int = 5,
        n_groups: int = 8,
    ):
        super().__init__()
        self.down_factor = 2 ** (len(down_dims) - 1)
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(step_embed_dim),
            nn.Linear(step_embed_dim, step_embed_dim * 4),
            nn.Mish(),
            nn.Linear(step_embed_dim * 4, step_embed_dim),
        )
        cond_dim = step_embed_dim + global_cond_dim
        dims = (action_dim, *down_dims)
        levels = list(zip(dims[:-1], dims[1:]))

        def res(i: int, o: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(i, o, cond_dim, kernel_size, n_groups)

        self.down = nn.ModuleList()
        for idx, (d_in, d_out) in enumerate(levels):
            last = idx == len(levels) - 1
            down = nn.Conv1d(d_out, d_out, 3, stride=2, padding=1) if not last else nn.Identity()
            self.down.append(nn.ModuleList([res(d_in, d_out), res(d_out, d_out), down]))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([res(mid, mid), res(mid, mid)])
        self.up = nn.ModuleList()
        for d_in, d_out in reversed(levels[1:]):
            up = nn.ConvTranspose1d(d_in, d_in, 4, stride=2, padding=1)
            self.up.append(nn.ModuleList([res(d_out * 2, d_in), res(d_in, d_in), up]))
        self.final = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        """sample (B, Tp, A), timestep (B,) int or float, global_cond (B, C) -> (B, Tp, A)."""
        if sample.shape[1] % self.down_factor:
            raise ValueError(f"sequence length {sample.shape[1]} is not divisible by {self.down_factor}")
        cond = torch.cat([self.step_encoder(timestep), global_cond], dim=-1)
        x = sample.transpose(1, 2)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for block in self.mid:
            x = block(x, cond)
        for res1, res2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, cond), cond))
        return self.final(x).transpose(1, 2)
