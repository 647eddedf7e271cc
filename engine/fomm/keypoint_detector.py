"""FOMM keypoint detector: heatmap-softmax keypoints and local affine Jacobians."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.fomm.blocks import AntiAliasDownsample, Hourglass, coordinate_grid


class KPDetector(nn.Module):
    """``kp_detector(image) -> {"value": (N, K, 2), "jacobian": (N, K, 2, 2)}``.

    Keypoints are the softmax expectation of each heatmap over a [-1, 1] grid spanning the
    heatmap itself (the 7x7 head has no padding, so that grid is the cropped map, not the image).
    """

    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks, temperature,
                 estimate_jacobian=False, scale_factor=1, single_jacobian_map=False, pad=0):
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels,
                                   max_features=max_features, num_blocks=num_blocks)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        self.num_kp = num_kp
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps,
                                      kernel_size=(7, 7), padding=pad)
            with torch.no_grad():  # start at the identity transform, as upstream does
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        else:
            self.num_jacobian_maps = 0
            self.jacobian = None
        self.temperature = float(temperature)
        self.scale_factor = float(scale_factor)
        if self.scale_factor != 1:
            self.down = AntiAliasDownsample(num_channels, self.scale_factor)

    def forward(self, image: torch.Tensor) -> dict:
        x = self.down(image) if self.scale_factor != 1 else image
        features = self.predictor(x)
        logits = self.kp(features)
        n, k, h, w = logits.shape
        heat = F.softmax(logits.view(n, k, h * w) / self.temperature, dim=2)
        grid = coordinate_grid(h, w, heat.dtype, heat.device).view(1, 1, h * w, 2)
        out = {"value": (heat.unsqueeze(-1) * grid).sum(dim=2)}
        if self.jacobian is not None:
            jmap = self.jacobian(features).view(n, self.num_jacobian_maps, 4, h * w)
            jac = (heat.view(n, k, 1, h * w) * jmap).sum(dim=-1)
            out["jacobian"] = jac.view(n, k, 2, 2)
        return out
