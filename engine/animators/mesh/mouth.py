"""The mouth interior: when the target mouth opens wider than the portrait's, draw a cavity with a
hint of teeth instead of the stretched lip line (which reads as a closed mouth, to people and to the
tracker alike)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.face_regions import INNER_LIPS_LOWER, INNER_LIPS_UPPER, LIPS, OUTER_LIPS_LOWER

UPPER = np.array(INNER_LIPS_UPPER)
LOWER = np.array(INNER_LIPS_LOWER)
MIDDLE = slice(3, 8)  # the inner-lip pairs that measure the opening


@dataclass(frozen=True)
class MouthPalette:
    cavity: np.ndarray  # RGB float
    teeth: np.ndarray


def palette_from(image: np.ndarray, pts: np.ndarray) -> MouthPalette:
    """Colours that fit the portrait: a cavity darker than its lips, teeth no brighter than its skin."""
    h, w = image.shape[:2]
    lips = np.clip(pts[list(LIPS)], [0, 0], [w - 1, h - 1]).astype(int)
    lip = image[lips[:, 1], lips[:, 0]].reshape(-1, 3).astype(np.float64).mean(axis=0)
    # skin: a few cheek / forehead points
    skin_idx = [50, 280, 151, 9, 101, 330]
    sk = np.clip(pts[skin_idx], [0, 0], [w - 1, h - 1]).astype(int)
    skin = image[sk[:, 1], sk[:, 0]].reshape(-1, 3).astype(np.float64).mean(axis=0)
    cavity = 0.22 * lip + np.array([6.0, 2.0, 2.0])
    brightness = float(skin.mean())
    teeth = np.array([232.0, 226.0, 212.0]) * np.clip(0.45 + brightness / 255.0, 0.5, 1.0)
    return MouthPalette(cavity=cavity, teeth=teeth)


def opening(pts: np.ndarray) -> float:
    """Mean inner-lip gap (pixels) over the middle of the mouth."""
    return float(np.linalg.norm(pts[LOWER[MIDDLE]] - pts[UPPER[MIDDLE]], axis=1).mean())


def draw_interior(out: np.ndarray, pts: np.ndarray, source_gap: float, palette: MouthPalette) -> None:
    """In place on ``out``: cavity and teeth inside the target inner-lip polygon."""
    gap = opening(pts)
    if gap < 1.0:
        return
    alpha = float(np.clip((gap - source_gap) / gap, 0.0, 1.0))
    if alpha < 0.02:
        return
    poly = np.concatenate([pts[UPPER], pts[LOWER[::-1][1:-1]]])
    h, w = out.shape[:2]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    shift = 4  # sub-pixel polygon precision
    org = np.array([x0, y0])

    def fill(poly_pts, size):
        m = np.zeros(size, np.uint8)
        cv2.fillPoly(m, [np.round((poly_pts - org) * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
        return m.astype(np.float32) / 255.0

    size = (y1 - y0, x1 - x0)
    mask = fill(poly, size)
    width = np.hypot(*(pts[UPPER[-1]] - pts[UPPER[0]]))
    d = pts[UPPER[-1]] - pts[UPPER[0]]
    normal = np.array([-d[1], d[0]]) / max(width, 1e-6)
    if normal[1] < 0:
        normal = -normal
    # upper teeth: a band under the upper lip, lower teeth: a thinner, shaded band over the lower lip
    t_up = min(0.38 * gap, 0.11 * width)
    band_up = np.concatenate([pts[UPPER[1:-1]], (pts[UPPER[1:-1]] + t_up * normal)[::-1]])
    t_lo = min(0.22 * gap, 0.06 * width)
    band_lo = np.concatenate([pts[LOWER[2:-2]], (pts[LOWER[2:-2]] - t_lo * normal)[::-1]])
    teeth_up = fill(band_up, size) * mask
    teeth_lo = fill(band_lo, size) * mask * 0.8
    # darker towards the mouth's centre line, like a real cavity
    interior = np.empty(size + (3,), np.float32)
    interior[:] = palette.cavity
    t = np.clip(teeth_up + teeth_lo, 0, 1)[..., None]
    teeth_col = palette.teeth * (0.75 + 0.25 * (teeth_up[..., None] > teeth_lo[..., None]))
    interior = interior * (1 - t) + teeth_col * t
    a = (mask * alpha)[..., None]
    crop = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(crop * (1 - a) + interior * a + 0.5, 0, 255).astype(np.uint8)


def clamp_inner_lips(pts: np.ndarray, src: np.ndarray) -> None:
    from engine.animators.mesh.eyes import clamp_pairs

    clamp_pairs(pts, src, INNER_LIPS_UPPER, INNER_LIPS_LOWER)


def close_inner_lips(pts: np.ndarray) -> None:
    """In place: a closed-mouth version of these landmarks, the jaw doing the closing.

    Each inner lower-lip point moves up onto its upper partner (along the mouth's normal); the outer
    lower lip follows by the mean, so the lip keeps its thickness. The upper lip stays. Lips that
    already touch or press together are left as they are."""
    from engine.animators.mesh.eyes import pair_gaps

    n, _, lo, gap, _ = pair_gaps(pts, pts, INNER_LIPS_UPPER, INNER_LIPS_LOWER)
    close = np.maximum(gap, 0.0)
    if not np.any(close > 0):
        return
    pts[lo] -= np.outer(close, n)
    pts[list(OUTER_LIPS_LOWER[1:-1])] -= close.mean() * n
