"""Image encoder for camera observations: ResNet-18 with GroupNorm and random-crop augmentation.

BatchNorm is a poor fit for diffusion-policy training (small, highly correlated batches, and an
EMA copy of the weights whose running statistics would lag), so every BatchNorm is replaced by
GroupNorm with 16 channels per group, as diffusion_policy does. Weights start random: nothing is
downloaded.

    uint8 (N, H, W, 3) ──► float in [-1, 1], (N, 3, H, W)
        ──► crop (random while training, centre in eval) to crop_shape
        ──► ResNet-18 trunk ──► global average pool ──► (N, 512) ──► Linear ──► (N, feature_dim)
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


class RandomCrop(nn.Module):
    """Random crop per sample in training mode, centre crop in eval mode. (N, C, H, W) in and out."""

    def __init__(self, crop_shape: tuple[int, int]):
        super().__init__()
        self.crop_h, self.crop_w = crop_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.crop_h > h or self.crop_w > w:
            raise ValueError(f"crop {self.crop_h}x{self.crop_w} is larger than the image {h}x{w}")
        if not self.training:
            top, left = (h - self.crop_h) // 2, (w - self.crop_w) // 2
            return x[:, :, top : top + self.crop_h, left : left + self.crop_w]
        tops = torch.randint(0, h - self.crop_h + 1, (n,), device=x.device)
        lefts = torch.randint(0, w - self.crop_w + 1, (n,), device=x.device)
        rows = tops[:, None] + torch.arange(self.crop_h, device=x.device)[None, :]  # (N, ch)
        cols = lefts[:, None] + torch.arange(self.crop_w, device=x.device)[None, :]  # (N, cw)
        idx_n = torch.arange(n, device=x.device)[:, None, None]
        cropped = x.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (N, ch, cw, C)
        return cropped.permute(0, 3, 1, 2)


class ResNet18Encoder(nn.Module):
    """One camera's encoder: uint8 images (N, H, W, 3) -> features (N, feature_dim)."""

    def __init__(self, crop_shape: tuple[int, int], feature_dim: int = 64):
        super().__init__()
        trunk = torchvision.models.resnet18(weights=None, norm_layer=_group_norm)
        trunk.fc = nn.Identity()
        self.crop = RandomCrop(crop_shape)
        self.trunk = trunk
        self.proj = nn.Linear(512, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
        x = images.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        return self.proj(self.trunk(self.crop(x)))
