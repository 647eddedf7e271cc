"""Building blocks of the FOMM networks (own implementation; state_dict names follow upstream).

Every block here is a plain ``torch.nn.Module`` whose parameter and buffer names are the ones the
released checkpoints use (``conv``, ``norm``, ``conv1``/``norm1``..., ``down.weight``), so an
official ``state_dict`` loads strictly. BatchNorm is ``nn.BatchNorm2d``: in eval mode it is what
upstream's SynchronizedBatchNorm2d computes (running statistics, eps 1e-5), with the same keys.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(H, W, 2) grid spanning [-1, 1] in both axes; last axis is (x = column, y = row)."""
    xs = torch.arange(width, dtype=dtype, device=device)
    ys = torch.arange(height, dtype=dtype, device=device)
    # Same rounding as upstream: 2 * (i / (n - 1)) - 1, computed in the tensor's dtype.
    xs = 2 * (xs / (width - 1)) - 1
    ys = 2 * (ys / (height - 1)) - 1
    gx = xs.view(1, width).expand(height, width)
    gy = ys.view(height, 1).expand(height, width)
    return torch.stack([gx, gy], dim=-1)


def keypoint_heatmaps(value: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """Unnormalised Gaussians exp(-|z - kp|^2 / (2 var)) for keypoints (N, K, 2) -> (N, K, H, W)."""
    grid = coordinate_grid(height, width, value.dtype, value.device)
    diff = grid.view(1, 1, height, width, 2) - value.view(*value.shape[:-1], 1, 1, 2)
    return torch.exp(-0.5 * (diff * diff).sum(-1) / variance)


def inverse_2x2(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of a batch of 2x2 matrices (..., 2, 2); exportable to ONNX."""
    a, b = m[..., 0, 0], m[..., 0, 1]
    c, d = m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    row0 = torch.stack([d, -b], dim=-1)
    row1 = torch.stack([-c, a], dim=-1)
    return torch.stack([row0, row1], dim=-2) / det[..., None, None]


class AntiAliasDownsample(nn.Module):
    """Gaussian blur (sigma = (1/scale - 1) / 2) then nearest subsampling by ``scale``.

    The depthwise kernel is a persistent buffer named ``weight`` (it is in the checkpoints).
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.scale = float(scale)
        self.groups = channels
        sigma = (1.0 / scale - 1.0) / 2.0
        size = 2 * round(sigma * 4) + 1
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before
        centre = (size - 1) / 2
        coords = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((coords - centre) ** 2) / (2 * sigma**2))
        kernel = g.view(size, 1) * g.view(1, size)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1))

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        p, q = self.pad_before, self.pad_after
        return F.conv2d(F.pad(x, (p, q, p, q)), self.weight, groups=self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        out = self.blur(x)
        step = 1.0 / self.scale
        if step == int(step):  # same pixels nearest interpolation picks: index = floor(i / scale)
            s = int(step)
            h_out, w_out = math.floor(out.shape[2] * self.scale), math.floor(out.shape[3] * self.scale)
            return out[:, :, : h_out * s : s, : w_out * s : s]
        return F.interpolate(out, scale_factor=(self.scale, self.scale))


class SameBlock2d(nn.Module):
    """conv -> BN -> ReLU at the same resolution."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding,
                              groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(SameBlock2d):
    """conv -> BN -> ReLU -> 2x2 average pool."""

    def forward(self, x):
        return F.avg_pool2d(super().forward(x), kernel_size=2)


class UpBlock2d(SameBlock2d):
    """nearest x2 upsampling -> conv -> BN -> ReLU."""

    def forward(self, x):
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(bn2(conv1(relu(bn1(x))))))."""

    def __init__(self, in_features, kernel_size=3, padding=1):
        super().__init__()
        # Registration order fixes the state_dict order: conv1, conv2, norm1, norm2 (as upstream).
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


def _features(block_expansion: int, max_features: int, level: int) -> int:
    return min(max_features, block_expansion * (2**level))


class Encoder(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(in_features if i == 0 else _features(block_expansion, max_features, i),
                        _features(block_expansion, max_features, i + 1))
            for i in range(num_blocks)
        )

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            mult = 1 if i == num_blocks - 1 else 2  # every level but the deepest gets a skip concat
            blocks.append(UpBlock2d(mult * _features(block_expansion, max_features, i + 1),
                                    _features(block_expansion, max_features, i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, skips):
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net style encoder/decoder; output has ``block_expansion + in_features`` channels."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))
