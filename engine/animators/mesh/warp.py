"""Fast piecewise-affine warp: per-triangle affine maps rasterised on a coarse grid, then cv2.remap.

Per frame, for the triangles that move, every coarse grid cell inside a *target* triangle gets the
source position given by that triangle's affine map (vectorised over bounding-box candidates, no
Python loop per triangle). Triangles are drawn far-to-near (by the portrait's landmark depth) so a
nose turning over a cheek covers it; triangles flipped by the motion are back faces and skipped. The
coarse map is upsampled linearly (exact for affine pieces) and ``cv2.remap`` resamples only the region
that moves; the rest of the portrait is copied untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_GRID_CELLS = 48_000  # coarse grid size cap: the step grows with the region that moves


@dataclass
class WarpMap:
    """A coarse backward map over ``roi`` (x0, y0, x1, y1; exclusive ends) of the output."""

    roi: tuple[int, int, int, int]
    step: int
    map_xy: np.ndarray  # (gh, gw, 2) float32 source positions of cell centres
    tri_id: np.ndarray  # (gh, gw) int32 triangle covering each cell, -1 = none (identity)


def choose_step(roi_w: int, roi_h: int, min_step: int = 2) -> int:
    step = min_step
    while (roi_w / step) * (roi_h / step) > MAX_GRID_CELLS:
        step += 1
    return step


def triangle_affines(src_tri: np.ndarray, dst_tri: np.ndarray, eps: float = 1e-9):
    """Per triangle: 2x3 map from target (x, y, 1) to barycentric (l1, l2), and validity (area)."""
    d0 = dst_tri[:, 0]
    e1 = dst_tri[:, 1] - d0
    e2 = dst_tri[:, 2] - d0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > eps
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # [l1, l2] = inv(D) @ (p - d0), D = [e1 e2] as columns
    a = np.empty((len(det), 2, 3))
    a[:, 0, 0] = e2[:, 1] * inv
    a[:, 0, 1] = -e2[:, 0] * inv
    a[:, 1, 0] = -e1[:, 1] * inv
    a[:, 1, 1] = e1[:, 0] * inv
    a[:, :, 2] = -np.einsum("mij,mj->mi", a[:, :, :2], d0)
    return a, ok, det


def rasterize(src_pts: np.ndarray, dst_pts: np.ndarray, triangles: np.ndarray, src_sign: np.ndarray,
              roi: tuple[int, int, int, int], step: int) -> WarpMap:
    """Coarse backward map for ``triangles`` (already in draw order) moved from src_pts to dst_pts."""
    x0, y0, x1, y1 = roi
    # One spare cell on each side: the upsampling clamps at the grid's edge, the ROI must not see it.
    x0, y0 = x0 - step, y0 - step
    gw = -(-(x1 - x0) // step) + 1
    gh = -(-(y1 - y0) // step) + 1
    # Cell centre j sits at pixel x0 - 0.5 + step * (j + 0.5): cv2.resize(INTER_LINEAR) by `step`
    # then puts every full-resolution pixel exactly where it belongs.
    off = np.array([x0 - 0.5 + 0.5 * step, y0 - 0.5 + 0.5 * step])
    gy, gx = np.mgrid[0:gh, 0:gw]
    map_xy = np.empty((gh, gw, 2), np.float32)
    map_xy[..., 0] = off[0] + step * gx
    map_xy[..., 1] = off[1] + step * gy
    tri_id = np.full((gh, gw), -1, np.int32)

    dst_g = (dst_pts[triangles] - off) / step  # (M, 3, 2) in grid units
    src_t = src_pts[triangles]
    aff, ok, det = triangle_affines(src_t, dst_g)
    ok &= np.isnan(src_sign) | (np.sign(det) == src_sign)  # back faces (flipped by the motion) are hidden
    lo = np.ceil(dst_g.min(axis=1) - 1e-6).astype(np.int64)
    hi = np.floor(dst_g.max(axis=1) + 1e-6).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi[:, 0] = np.minimum(hi[:, 0], gw - 1)
    hi[:, 1] = np.minimum(hi[:, 1], gh - 1)
    bw = hi[:, 0] - lo[:, 0] + 1
    bh = hi[:, 1] - lo[:, 1] + 1
    ok &= (bw > 0) & (bh > 0)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return WarpMap(roi, step, map_xy, tri_id)
    n = (bw[idx] * bh[idx])
    total = int(n.sum())
    t = np.repeat(idx, n)
    start = np.repeat(np.cumsum(n) - n, n)
    k = np.arange(total) - start
    w_t = bw[t]
    px = lo[t, 0] + k % w_t
    py = lo[t, 1] + k // w_t
    a = aff[t]
    l1 = a[:, 0, 0] * px + a[:, 0, 1] * py + a[:, 0, 2]
    l2 = a[:, 1, 0] * px + a[:, 1, 1] * py + a[:, 1, 2]
    eps = 1e-4
    inside = (l1 >= -eps) & (l2 >= -eps) & (l1 + l2 <= 1 + eps)
    t, px, py, l1, l2 = t[inside], px[inside], py[inside], l1[inside], l2[inside]
    s = src_t[t]
    sx = s[:, 0, 0] + l1 * (s[:, 1, 0] - s[:, 0, 0]) + l2 * (s[:, 2, 0] - s[:, 0, 0])
    sy = s[:, 0, 1] + l1 * (s[:, 1, 1] - s[:, 0, 1]) + l2 * (s[:, 2, 1] - s[:, 0, 1])
    # Later triangles (nearer) overwrite earlier ones: numpy assigns repeated indices in order.
    map_xy[py, px, 0] = sx
    map_xy[py, px, 1] = sy
    tri_id[py, px] = t
    return WarpMap(roi, step, map_xy, tri_id)


def remap_roi(image: np.ndarray, warp: WarpMap, out: np.ndarray) -> None:
    """Resample ``image`` into ``out`` over the warp's ROI (everything else of ``out`` untouched)."""
    x0, y0, x1, y1 = warp.roi
    gh, gw = warp.map_xy.shape[:2]
    full = cv2.resize(warp.map_xy, (gw * warp.step, gh * warp.step), interpolation=cv2.INTER_LINEAR)
    s = warp.step
    full = full[s: s + y1 - y0, s: s + x1 - x0]
    out[y0:y1, x0:x1] = cv2.remap(image, full, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
