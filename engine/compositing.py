"""Compositing: fit the animated portrait into the output frame (e.g. 1280x720), never stretched."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CompositorSettings:
    output_size: tuple[int, int] | None = None  # (width, height); None = the portrait's own size
    mirror: bool = False
    background: tuple[int, int, int] = (16, 16, 16)


class Compositor:
    """Letterboxes (or pillarboxes) an image into the output size, mirrored when asked."""

    def __init__(self, settings: CompositorSettings = CompositorSettings()):
        self.settings = settings

    def fit_rect(self, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(x, y, w, h) where an image of ``image_size`` lands in the output, aspect kept."""
        iw, ih = image_size
        ow, oh = self.settings.output_size or (iw, ih)
        scale = min(ow / iw, oh / ih)
        w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
        return (ow - w) // 2, (oh - h) // 2, w, h

    def compose(self, image: np.ndarray) -> np.ndarray:
        s = self.settings
        out = image
        if s.output_size is not None and (image.shape[1], image.shape[0]) != tuple(s.output_size):
            x, y, w, h = self.fit_rect((image.shape[1], image.shape[0]))
            ow, oh = s.output_size
            # INTER_AREA only where it matters (strong shrink): it costs ~8x INTER_LINEAR at 720p.
            strong_shrink = w < image.shape[1] / 2
            fitted = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if strong_shrink else cv2.INTER_LINEAR)
            # A fresh frame each call (sinks may still hold the previous one), borders in one pass.
            out = cv2.copyMakeBorder(fitted, y, oh - h - y, x, ow - w - x, cv2.BORDER_CONSTANT,
                                     value=s.background)
        if s.mirror:
            out = cv2.flip(out, 1)
        return out
