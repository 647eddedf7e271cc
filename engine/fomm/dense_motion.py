"""FOMM dense motion network: sparse keypoint motions -> dense deformation + occlusion map."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.fomm.blocks import AntiAliasDownsample, Hourglass, coordinate_grid, inverse_2x2, keypoint_heatmaps


class DenseMotionNetwork(nn.Module):
    """Predicts the backward deformation (driving -> source) from keypoints.

    ``forward(source_image, kp_driving, kp_source)`` returns ``sparse_deformed``, ``mask``,
    ``deformation`` and, when enabled, ``occlusion_map`` (official semantics). The source-only
    parts are also available separately (:meth:`prepare_source`, :meth:`from_prepared`) so a
    caller can compute them once per avatar.
    """

    def __init__(self, block_expansion, num_blocks, max_features, num_kp, num_channels,
                 estimate_occlusion_map=False, scale_factor=1, kp_variance=0.01):
        super().__init__()
        self.hourglass = Hourglass(block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
                          if estimate_occlusion_map else None)
        self.num_kp = num_kp
        self.num_channels = num_channels
        self.scale_factor = float(scale_factor)
        self.kp_variance = float(kp_variance)
        self.align_corners = True  # grid_sample as in torch <= 1.2, where the checkpoints were trained
        if self.scale_factor != 1:
            self.down = AntiAliasDownsample(num_channels, self.scale_factor)

    # --- pieces ---------------------------------------------------------------------------------
    def downsample(self, source_image: torch.Tensor) -> torch.Tensor:
        return self.down(source_image) if self.scale_factor != 1 else source_image

    def sparse_motions(self, grid: torch.Tensor, kp_driving: dict, kp_source: dict) -> torch.Tensor:
        """(N, K+1, H, W, 2): identity for the background, then J_s J_d^-1 (z - d_k) + s_k."""
        n, k, _ = kp_driving["value"].shape
        h, w, _ = grid.shape
        coords = grid.view(1, 1, h * w, 2) - kp_driving["value"].view(n, k, 1, 2)
        jd = kp_driving.get("jacobian")
        if jd is not None:
            jac = torch.matmul(kp_source["jacobian"], inverse_2x2(jd))  # (N, K, 2, 2)
            coords = torch.matmul(coords, jac.transpose(-1, -2))  # row vectors: z^T J^T
        moved = coords + kp_source["value"].view(n, k, 1, 2)
        background = grid.view(1, 1, h * w, 2).expand(n, 1, h * w, 2)
        return torch.cat([background, moved], dim=1).view(n, k + 1, h, w, 2)

    def warp_source(self, source_repeat: torch.Tensor, motions: torch.Tensor) -> torch.Tensor:
        """Warp the (downsampled) source by each sparse motion -> (N, K+1, C, H, W)."""
        n, kk, h, w, _ = motions.shape
        out = F.grid_sample(source_repeat, motions.reshape(n * kk, h, w, 2), mode="bilinear",
                            padding_mode="zeros", align_corners=self.align_corners)
        return out.view(n, kk, -1, h, w)

    def heads(self, heat: torch.Tensor, deformed: torch.Tensor, motions: torch.Tensor) -> dict:
        """Hourglass + mask/occlusion heads on the heatmap difference and the warped sources."""
        n, kk, c, h, w = deformed.shape
        x = torch.cat([heat.unsqueeze(2), deformed], dim=2).view(n, kk * (c + 1), h, w)
        features = self.hourglass(x)
        mask = F.softmax(self.mask(features), dim=1)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        out = {"sparse_deformed": deformed, "mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features))
        return out

    @staticmethod
    def _heat_with_background(diff: torch.Tensor) -> torch.Tensor:
        zeros = diff.new_zeros(diff.shape[0], 1, *diff.shape[2:])
        return torch.cat([zeros, diff], dim=1)

    # --- official-style forward (recomputes everything) ------------------------------------------
    def forward(self, source_image, kp_driving, kp_source) -> dict:
        small = self.downsample(source_image)
        n, c, h, w = small.shape
        heat = self._heat_with_background(
            keypoint_heatmaps(kp_driving["value"], h, w, self.kp_variance)
            - keypoint_heatmaps(kp_source["value"], h, w, self.kp_variance))
        grid = coordinate_grid(h, w, small.dtype, small.device)
        motions = self.sparse_motions(grid, kp_driving, kp_source)
        repeat = small.unsqueeze(1).repeat(1, self.num_kp + 1, 1, 1, 1).view(-1, c, h, w)
        return self.heads(heat, self.warp_source(repeat, motions), motions)

    # --- cached path ------------------------------------------------------------------------------
    def prepare_source(self, source_image, kp_source) -> dict:
        """Everything that depends only on the source image and its keypoints."""
        small = self.downsample(source_image)
        n, c, h, w = small.shape
        return {
            "small": small,
            "repeat": small.unsqueeze(1).expand(n, self.num_kp + 1, c, h, w).reshape(-1, c, h, w),
            "grid": coordinate_grid(h, w, small.dtype, small.device),
            "heat_source": keypoint_heatmaps(kp_source["value"], h, w, self.kp_variance),
            "kp_source": {k: v for k, v in kp_source.items()},
        }

    def from_prepared(self, prepared: dict, kp_driving) -> dict:
        h, w = prepared["grid"].shape[:2]
        heat = self._heat_with_background(
            keypoint_heatmaps(kp_driving["value"], h, w, self.kp_variance) - prepared["heat_source"])
        motions = self.sparse_motions(prepared["grid"], kp_driving, prepared["kp_source"])
        return self.heads(heat, self.warp_source(prepared["repeat"], motions), motions)
