"""FOMM occlusion-aware generator, with a per-source cached path.

``generator(source_image, kp_driving=..., kp_source=...)`` is the official computation (it
recomputes the source encoder every call). For live use, :meth:`OcclusionAwareGenerator.encode_source`
computes everything that depends only on the source once, and :meth:`OcclusionAwareGenerator.animate`
does the per-frame rest.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.fomm.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from engine.fomm.dense_motion import DenseMotionNetwork


@dataclass
class SourceFeatures:
    """Per-avatar cache: the source image, its encoder output, keypoints and dense-motion inputs."""

    source_image: torch.Tensor
    encoded: torch.Tensor
    kp_source: dict
    dense: dict | None


class OcclusionAwareGenerator(nn.Module):
    def __init__(self, num_channels, num_kp, block_expansion, max_features, num_down_blocks,
                 num_bottleneck_blocks, estimate_occlusion_map=False, dense_motion_params=None,
                 estimate_jacobian=False):
        super().__init__()
        if dense_motion_params is not None:
            params = dense_motion_params if isinstance(dense_motion_params, dict) else vars(dense_motion_params)
            self.dense_motion_network = DenseMotionNetwork(
                num_kp=num_kp, num_channels=num_channels, estimate_occlusion_map=estimate_occlusion_map,
                **params)
        else:
            self.dense_motion_network = None

        def feats(i):
            return min(max_features, block_expansion * (2**i))

        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        self.down_blocks = nn.ModuleList(
            DownBlock2d(feats(i), feats(i + 1), kernel_size=(3, 3), padding=(1, 1))
            for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(
            UpBlock2d(feats(num_down_blocks - i), feats(num_down_blocks - i - 1), kernel_size=(3, 3),
                      padding=(1, 1))
            for i in range(num_down_blocks))
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(feats(num_down_blocks), kernel_size=(3, 3),
                                                           padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels
        self.num_kp = num_kp

    # --- settings ---------------------------------------------------------------------------------
    @property
    def align_corners(self) -> bool:
        return self._align_corners if hasattr(self, "_align_corners") else True

    def set_align_corners(self, value: bool) -> "OcclusionAwareGenerator":
        """grid_sample convention: True as in torch <= 1.2 (training), False as modern default."""
        self._align_corners = bool(value)
        if self.dense_motion_network is not None:
            self.dense_motion_network.align_corners = bool(value)
        return self

    # --- pieces -----------------------------------------------------------------------------------
    def encode(self, source_image: torch.Tensor) -> torch.Tensor:
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def warp(self, inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Backward-warp ``inp`` by a (N, h, w, 2) deformation, resized bilinearly if needed."""
        if deformation.shape[1:3] != inp.shape[2:]:
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=inp.shape[2:],
                                        mode="bilinear").permute(0, 2, 3, 1)
        return F.grid_sample(inp, deformation, mode="bilinear", padding_mode="zeros",
                             align_corners=self.align_corners)

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def _finish(self, source_image, encoded, motion: dict | None, with_deformed: bool) -> dict:
        result = {}
        out = encoded
        if motion is not None:
            result["mask"] = motion["mask"]
            result["sparse_deformed"] = motion["sparse_deformed"]
            result["deformation"] = motion["deformation"]
            out = self.warp(out, motion["deformation"])
            occlusion = motion.get("occlusion_map")
            if occlusion is not None:
                result["occlusion_map"] = occlusion
                if occlusion.shape[2:] != out.shape[2:]:
                    occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear")
                out = out * occlusion
            if with_deformed:
                result["deformed"] = self.warp(source_image, motion["deformation"])
        result["prediction"] = self.decode(out)
        return result

    # --- official-style forward -------------------------------------------------------------------
    def forward(self, source_image, kp_driving, kp_source) -> dict:
        encoded = self.encode(source_image)
        motion = None
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(source_image=source_image, kp_driving=kp_driving,
                                               kp_source=kp_source)
        return self._finish(source_image, encoded, motion, with_deformed=True)

    # --- cached path ------------------------------------------------------------------------------
    def encode_source(self, source_image: torch.Tensor, kp_source: dict) -> SourceFeatures:
        """Source-only work, once per avatar."""
        dense = (self.dense_motion_network.prepare_source(source_image, kp_source)
                 if self.dense_motion_network is not None else None)
        return SourceFeatures(source_image=source_image, encoded=self.encode(source_image),
                              kp_source=dict(kp_source), dense=dense)

    def animate(self, features: SourceFeatures, kp_driving: dict, with_deformed: bool = False) -> dict:
        """Per-frame work given cached :class:`SourceFeatures` (same outputs as ``forward``)."""
        motion = (self.dense_motion_network.from_prepared(features.dense, kp_driving)
                  if features.dense is not None else None)
        return self._finish(features.source_image, features.encoded, motion, with_deformed)
