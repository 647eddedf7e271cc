"""Fast piecewise-affine warp: per-triangle affine maps rasterised on a coarse grid, then cv2.remap.

Per frame, for the triangles that move, every coarse grid cell inside a *target* triangle gets the
source position given by that triangle's affine map (vectorised over bounding-box candidates, no
Python loop per triangle). Triangles are drawn far-to-near (by the portrait's landmark depth) so a
nose turning over a cheek covers it; triangles flipped by the motion are back faces, drawn first of
all (under everything else: hidden where anything covers them, a fill where nothing does). The
coarse map is upsampled linearly (exact for affine pieces) to one source position per pixel of the
region that moves (``dense_map``), which the caller resamples; the rest of the portrait is untouched.

Where the map jumps at a fold (the chin over the neck, a turned cheek over the background), linear
upsampling would smear the jump over a cell and draw the edge as a staircase of cells (7 px steps on a
2048 px portrait); so it does where the map bends sharply (a band squeezed next to one that is not:
the upper lip risen under the nose on a yawn). There, and only there, the map is rasterised again at
one pixel per cell (``sharpen_folds``), on grids of 3 px cells or more.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MAX_GRID_CELLS = 20_000  # coarse grid size cap: the step grows with the region that moves
# Cells where the map's second difference (along a row or a column) exceeds this many cells of source
# pixels are looked at as closely as folds: 0 where the map is affine, about a cell where a band is
# squeezed to half next to one that is not. At 2 a sharp bend's staircase is gone (pixels more than
# 40 levels off the per-pixel warp: 50-70 % fewer on s42 x d12, s1 x d11, s2 x d18, the worst frame's
# 3-4x fewer) for +1 to 1.5 ms a frame on grids of 3 px cells or more (portraits at full size; live
# at 720p, those fitted down to it have 2 px cells, a 512 px one keeps 4).
BEND_CELLS = 2.0
JUMP_PX = 2.0  # neighbouring cells whose maps disagree by more than this (source pixels) are a fold
SHARPEN_MIN_STEP = 3  # grid cells (px) from which a fold's staircase shows: 720p live is mostly 2


@dataclass
class WarpMap:
    """A coarse backward map over ``roi`` (x0, y0, x1, y1; exclusive ends) of the output."""

    roi: tuple[int, int, int, int]
    step: int
    map_xy: np.ndarray  # (gh, gw, 2) float32 source positions of cell centres
    tri_id: np.ndarray  # (gh, gw) int32 triangle covering each cell, -1 = none (identity)
    # For folds (``sharpen_folds``): the mesh as drawn (source points, target points, triangles in
    # draw order, their source orientation), each triangle's grid (x, y, 1) -> source map, how many
    # triangles cover each cell (2+: a fold), and the gaze shifts applied since.
    mesh: tuple | None = None
    to_source: np.ndarray | None = None  # (M, 2, 3)
    layers: np.ndarray | None = None  # (gh, gw)
    shifts: list = field(default_factory=list)

    def shift(self, triangles: np.ndarray, offset: np.ndarray, by=None) -> None:
        """Move the source positions drawn by the ``triangles`` (a bool mask) by ``offset``: the
        eye's interior for gaze. ``by``: a function of the source positions (K, 2) giving each its
        own move (K, 2) instead (``eyes.eyeball_turn``, ``mouth.split_own_opening``); folds refined
        per pixel still take ``offset``. Only the cells in the triangles' bounding box are looked at
        (an eye is ~1 % of the grid: 0.06 ms instead of 0.15 ms a call on s42 at 720p)."""
        if self.mesh is None or not np.any(triangles):
            return  # nothing was drawn
        _, dst_pts, drawn_order, _ = self.mesh
        off = np.array(cell_centres(self.roi, self.step, 0, 0))
        corners = (dst_pts[drawn_order[triangles]].reshape(-1, 2) - off) / self.step
        gh, gw = self.tri_id.shape
        c0, r0 = np.clip(np.ceil(corners.min(axis=0)).astype(int), 0, [gw, gh])
        c1, r1 = np.clip(np.floor(corners.max(axis=0)).astype(int) + 1, 0, [gw, gh])
        window = self.map_xy[r0:r1, c0:c1]  # a view: the cells whose centres the triangles can cover
        cells = np.append(triangles, False)[self.tri_id[r0:r1, c0:c1]]
        move = offset if by is None else by(window[cells].astype(np.float64))
        window[cells] += np.asarray(move, np.float32)
        self.to_source[triangles, :, 2] += offset
        self.shifts.append((triangles, offset))


def choose_step(roi_w: int, roi_h: int, min_step: int = 2) -> int:
    step = min_step
    while (roi_w / step) * (roi_h / step) > MAX_GRID_CELLS:
        step += 1
    return step


def triangle_maps(src_tri: np.ndarray, dst_tri: np.ndarray, eps: float = 1e-9):
    """Per triangle: the 2x3 affine map from target (x, y, 1) to source (x, y), whether the target
    triangle has an area (|det| > eps), and the target's signed double area ``det``. Written out
    element by element: numpy's batched 2x2 products cost more than the arithmetic."""
    d0, s0 = dst_tri[:, 0], src_tri[:, 0]
    ax, ay = dst_tri[:, 1, 0] - d0[:, 0], dst_tri[:, 1, 1] - d0[:, 1]  # target edges e1, e2
    bx, by = dst_tri[:, 2, 0] - d0[:, 0], dst_tri[:, 2, 1] - d0[:, 1]
    det = ax * by - ay * bx
    ok = np.abs(det) > eps
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    fx, fy = src_tri[:, 1, 0] - s0[:, 0], src_tri[:, 1, 1] - s0[:, 1]  # source edges f1, f2
    gx, gy = src_tri[:, 2, 0] - s0[:, 0], src_tri[:, 2, 1] - s0[:, 1]
    # M = [f1 g1] [e1 e2]^-1, then the offset that sends d0 to s0
    m = np.empty((len(det), 2, 3))
    m[:, 0, 0] = (fx * by - gx * ay) * inv
    m[:, 0, 1] = (gx * ax - fx * bx) * inv
    m[:, 1, 0] = (fy * by - gy * ay) * inv
    m[:, 1, 1] = (gy * ax - fy * bx) * inv
    m[:, 0, 2] = s0[:, 0] - m[:, 0, 0] * d0[:, 0] - m[:, 0, 1] * d0[:, 1]
    m[:, 1, 2] = s0[:, 1] - m[:, 1, 0] * d0[:, 0] - m[:, 1, 1] * d0[:, 1]
    return m, ok, det


def cell_centres(roi: tuple[int, int, int, int], step: int, gx, gy):
    """Pixel positions (x, y) of grid coordinates (gx, gy): cell j's centre is at grid coordinate j,
    and the grid starts one spare cell before the ROI."""
    return roi[0] - step - 0.5 + step * (gx + 0.5), roi[1] - step - 0.5 + step * (gy + 0.5)


def identity_grid(roi: tuple[int, int, int, int], step: int) -> np.ndarray:
    """The coarse grid's own cell centres (the map where nothing moves): (gh, gw, 2) float32."""
    x0, y0, x1, y1 = roi
    x0, y0 = x0 - step, y0 - step
    gw = -(-(x1 - x0) // step) + 1
    gh = -(-(y1 - y0) // step) + 1
    gy, gx = np.mgrid[0:gh, 0:gw]
    grid = np.empty((gh, gw, 2), np.float32)
    grid[..., 0], grid[..., 1] = cell_centres(roi, step, gx, gy)
    return grid


def rasterize(src_pts: np.ndarray, dst_pts: np.ndarray, triangles: np.ndarray, src_sign: np.ndarray,
              roi: tuple[int, int, int, int], step: int, base: np.ndarray | None = None,
              row_spans: np.ndarray | None = None) -> WarpMap:
    """Coarse backward map for ``triangles`` (already in draw order) moved from src_pts to dst_pts.

    ``row_spans`` (gh, 2), optional: per grid row, the first and last cell worth filling (the rest
    stays identity); ``sharpen_folds`` fills only the cells around a fold's edge."""
    x0, y0, x1, y1 = roi
    # One spare cell on each side: the upsampling clamps at the grid's edge, the ROI must not see it.
    x0, y0 = x0 - step, y0 - step
    gw = -(-(x1 - x0) // step) + 1
    gh = -(-(y1 - y0) // step) + 1
    # Cell centre j sits at pixel x0 - 0.5 + step * (j + 0.5): cv2.resize(INTER_LINEAR) by `step`
    # then puts every full-resolution pixel exactly where it belongs.
    off = np.array(cell_centres(roi, step, 0, 0))
    map_xy = base.copy() if base is not None else identity_grid(roi, step)
    tri_id = np.full((gh, gw), -1, np.int32)

    dst_g = (dst_pts[triangles] - off) / step  # (M, 3, 2) in grid units
    m, ok, det = triangle_maps(src_pts[triangles], dst_g)  # grid (x, y, 1) -> source
    front = np.isnan(src_sign) | (np.sign(det) == src_sign)
    # Back faces (flipped by the motion) go underneath everything else: where a nearer triangle
    # covers them (nose over cheek) they are hidden; where nothing does (the far cheek at the
    # silhouette of a turned head) they still fill the hole instead of tearing it open.
    idx = np.concatenate([np.nonzero(ok & ~front)[0], np.nonzero(ok & front)[0]])
    if idx.size == 0:
        return WarpMap(roi, step, map_xy, tri_id)
    tri = dst_g[idx]
    # vertices sorted by y per triangle: top a, middle b, bottom c; a row crosses the long edge a-c
    # and one short edge (a-b above b, b-c below)
    order = np.argsort(tri[:, :, 1], axis=1, kind="stable")
    a, b, c = np.moveaxis(tri.reshape(-1, 2)[order + 3 * np.arange(idx.size)[:, None]], 1, 0)
    ylo = np.maximum(np.ceil(a[:, 1] - 1e-6), 0).astype(np.int64)
    yhi = np.minimum(np.floor(c[:, 1] + 1e-6), gh - 1).astype(np.int64)
    nrows = np.maximum(yhi - ylo + 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        long_slope = (c[:, 0] - a[:, 0]) / (c[:, 1] - a[:, 1])
        upper_slope = (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        lower_slope = (c[:, 0] - b[:, 0]) / (c[:, 1] - b[:, 1])
    # one entry per (triangle, grid row): the row's span inside the triangle. What a row needs of
    # its triangle is repeated out in one go (np.repeat: cheaper than gathering by index).
    r_t = np.repeat(np.arange(idx.size), nrows)
    r_y = (np.arange(r_t.size) + np.repeat(ylo - (np.cumsum(nrows) - nrows), nrows)).astype(np.float64)
    ax_, ay_, bx_, by_, cy_, s_long, s_upper, s_lower = np.repeat(
        np.stack([a[:, 0], a[:, 1], b[:, 0], b[:, 1], c[:, 1], long_slope, upper_slope, lower_slope]), nrows, axis=1)
    upper = (r_y < by_) | (cy_ == by_)  # a flat bottom: the upper edge reaches it
    with np.errstate(invalid="ignore"):  # a zero-height edge's slope is nan; its rows are not used
        x_long = ax_ + (r_y - ay_) * s_long
        x_short = np.where(upper, ax_ + (r_y - ay_) * s_upper, bx_ + (r_y - by_) * s_lower)
    # rows only a rounding off the triangle, and zero-height triangles, have no span
    inside = (r_y >= ay_ - 1e-9) & (r_y <= cy_ + 1e-9) & (cy_ > ay_)
    xl = np.where(inside, np.minimum(x_long, x_short), np.inf)
    xr = np.where(inside, np.maximum(x_long, x_short), -np.inf)
    x_lo = np.maximum(np.ceil(xl - 1e-4), 0)
    x_hi = np.minimum(np.floor(xr + 1e-4), gw - 1)
    if row_spans is not None:
        rows = r_y.astype(np.int64)
        x_lo = np.maximum(x_lo, row_spans[rows, 0])
        x_hi = np.minimum(x_hi, row_spans[rows, 1])
    good = np.isfinite(x_lo) & np.isfinite(x_hi) & (x_hi >= x_lo)
    r_t, r_y, x_lo, x_hi = r_t[good], r_y[good].astype(np.int64), x_lo[good].astype(np.int64), x_hi[good].astype(np.int64)
    # per row: the triangle's affine map (grid -> source) with the row's y folded into the offset
    mr = m[idx[r_t]]
    ax, bx = mr[:, 0, 0], mr[:, 0, 1] * r_y + mr[:, 0, 2]
    ay, by = mr[:, 1, 0], mr[:, 1, 1] * r_y + mr[:, 1, 2]
    # one entry per cell of a row's span, its row's values repeated out
    n = x_hi - x_lo + 1
    px = np.arange(n.sum()) + np.repeat(x_lo - (np.cumsum(n) - n), n)
    flat = px + np.repeat(r_y * gw, n)
    pxf = px.astype(np.float64)
    sx = np.repeat(ax, n) * pxf + np.repeat(bx, n)
    sy = np.repeat(ay, n) * pxf + np.repeat(by, n)
    t = np.repeat(idx[r_t], n)
    # Later triangles (nearer) overwrite earlier ones: numpy assigns repeated indices in order.
    map_xy.reshape(-1, 2)[flat, 0] = sx
    map_xy.reshape(-1, 2)[flat, 1] = sy
    tri_id.reshape(-1)[flat] = t
    layers = np.bincount(flat, minlength=gh * gw).reshape(gh, gw)
    to_source = np.zeros((len(triangles), 2, 3))
    to_source[idx] = m[idx]
    return WarpMap(roi, step, map_xy, tri_id, (src_pts, dst_pts, triangles, src_sign), to_source, layers)


def _source_at(warp: WarpMap, tri: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Source positions (N, 2) of grid points under triangles ``tri`` (-1: the identity)."""
    g = np.stack([gx, gy, np.ones_like(gx)], axis=1)
    src = np.einsum("nij,nj->ni", warp.to_source[np.maximum(tri, 0)], g)
    identity = np.stack(cell_centres(warp.roi, warp.step, gx, gy), axis=1)
    return np.where((tri < 0)[:, None], identity, src)


def fold_edges(warp: WarpMap) -> np.ndarray:
    """(gh, gw) bool: the cells on either side of an edge the coarse map cannot interpolate:
    4-neighbours drawn by different triangles whose maps disagree by more than ``JUMP_PX`` half-way
    between the two cells. That happens at a fold (one of them over another layer), and at a sharp
    bend of a continuous mesh: a band squeezed several times next to one that is not (on a wide
    yawn the upper lip rises under the nose: on s2 x d18, 7 px cells, neighbours 35 source px apart),
    where linear upsampling draws the lip's edge as a staircase of cells. Elsewhere two triangles of
    a continuous mesh agree to within the curvature of half a cell."""
    tid = warp.tri_id
    gh, gw = tid.shape
    marked = np.zeros(tid.shape, bool)
    if warp.layers is None:
        return marked
    # candidates, usually a handful of cells: those over another layer, and those where the map
    # bends (``BEND_CELLS``)
    candidate = warp.layers >= 2
    m = warp.map_xy
    bend = BEND_CELLS * warp.step
    for second, cells in ((m[:, 2:] + m[:, :-2] - 2 * m[:, 1:-1], candidate[:, 1:-1]),
                          (m[2:] + m[:-2] - 2 * m[1:-1], candidate[1:-1])):
        np.abs(second, out=second)
        cells |= (second[..., 0] > bend) | (second[..., 1] > bend)  # (x and y apart: a max over
        # an axis of 2 costs numpy 5x more)
    if warp.shifts:
        # not the interiors moved after rasterising (``shift``: the eyes' for gaze, a smile's mouth
        # for its teeth), and around them: the shift's edge at the lids,
        # blended over a cell, is part of how an eye reads (drawn exactly, MediaPipe read s1 x d0's
        # blinks with r 0.81 instead of 0.92, and s42 x d0 shook 1.11x the driver instead of 1.00x)
        shifted = np.zeros(len(warp.to_source) + 1, bool)  # per triangle; the last for "none"
        for moved, _ in warp.shifts:
            shifted[:-1] |= moved
        near_eyes = cv2.dilate(shifted[tid].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        candidate &= ~near_eyes | (warp.layers >= 2)
    oi, oj = np.nonzero(candidate)
    if oi.size == 0:
        return marked
    # every pair (cell, its right or lower neighbour) with a candidate cell on either side, both
    # directions at once: flat index of the first cell, and how far on the second one is
    first, to_second = [], []
    for dy, dx in ((0, 1), (1, 0)):
        ii, jj = np.concatenate([oi, oi - dy]), np.concatenate([oj, oj - dx])
        ok = (ii >= 0) & (jj >= 0) & (ii + dy < gh) & (jj + dx < gw)
        flat = np.unique(ii[ok] * gw + jj[ok])
        first.append(flat)
        to_second.append(np.full(flat.size, dy * gw + dx))
    a = np.concatenate(first)
    b = a + np.concatenate(to_second)
    ta, tb = tid.reshape(-1)[a], tid.reshape(-1)[b]
    differ = ta != tb
    if not differ.any():
        return marked
    a, b, ta, tb = a[differ], b[differ], ta[differ], tb[differ]
    (ia, ja), (ib, jb) = np.divmod(a, gw), np.divmod(b, gw)
    mx, my = 0.5 * (ja + jb), 0.5 * (ia + ib)  # half-way between the two cells
    src = _source_at(warp, np.concatenate([ta, tb]), np.tile(mx, 2), np.tile(my, 2))  # both sides at once
    jump = np.abs(src[:a.size] - src[a.size:]).max(axis=1)
    fold = jump > JUMP_PX
    marked.reshape(-1)[a[fold]] = True
    marked.reshape(-1)[b[fold]] = True
    return marked


def sharpen_folds(warp: WarpMap, full: np.ndarray) -> None:
    """In place on ``full`` (the upsampled map, grid-aligned: cell j covers pixels step*j ..
    step*(j+1)-1): around every fold's edge, the exact map, rasterised again at one pixel per cell
    from the triangles that can show there."""
    if warp.step < SHARPEN_MIN_STEP:
        return  # a 1-2 px step is within the edge's own antialiasing: not worth ~2 ms a frame
    marked = fold_edges(warp)
    if not marked.any():
        return
    # a pixel's linear upsampling mixes the 2x2 cell centres around it: take the neighbours too
    marked = cv2.dilate(marked.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    s = warp.step
    gh, gw = marked.shape
    x0, y0 = warp.roi[0] - s, warp.roi[1] - s  # pixel of full[0, 0]
    _, dst_pts, triangles, _ = warp.mesh
    # every triangle whose bounding box reaches a marked cell: one that covers a pixel there but no
    # cell centre (a sliver, or a near triangle just beside one) would otherwise leave that pixel to a
    # farther one beneath it (dark specks of hair on a turned cheek: s42 x d12)
    d = dst_pts[triangles]
    corner, last = np.array([x0, y0]), np.array([gw - 1, gh - 1])
    # (elementwise over the 3 vertices, then clamped: 4x faster than .min(axis=1) and np.clip)
    lo = np.minimum(np.maximum(np.floor((np.minimum(np.minimum(d[:, 0], d[:, 1]), d[:, 2]) - corner) / s)
                               .astype(np.int64), 0), last)
    hi = np.minimum(np.maximum(np.floor((np.maximum(np.maximum(d[:, 0], d[:, 1]), d[:, 2]) - corner) / s)
                               .astype(np.int64), 0), last)
    # each patch of marked cells on its own: one box around a cheek and a lip far apart would
    # rasterise everything between them
    n, labels = cv2.connectedComponents(marked.astype(np.uint8), connectivity=8)
    for k in range(1, n):
        patch = labels == k
        count = cv2.integral(patch.astype(np.uint8))  # (gh + 1, gw + 1): marked cells above-left
        near = (count[hi[:, 1] + 1, hi[:, 0] + 1] - count[lo[:, 1], hi[:, 0] + 1]
                - count[hi[:, 1] + 1, lo[:, 0]] + count[lo[:, 1], lo[:, 0]]) > 0
        _rasterize_exactly(warp, full, patch, np.nonzero(near)[0])  # (triangles still in draw order)


def _rasterize_exactly(warp: WarpMap, full: np.ndarray, marked: np.ndarray, sub: np.ndarray) -> None:
    """In place on ``full``: the ``marked`` cells' pixels from the exact map of triangles ``sub``."""
    s = warp.step
    x0, y0 = warp.roi[0] - s, warp.roi[1] - s  # pixel of full[0, 0]
    src_pts, dst_pts, triangles, sign = warp.mesh
    ci, cj = np.nonzero(marked)
    box = (x0 + int(cj.min()) * s, y0 + int(ci.min()) * s, x0 + (int(cj.max()) + 1) * s, y0 + (int(ci.max()) + 1) * s)
    # per pixel row of the box, only from the first marked pixel to the last
    fine = marked[ci.min():ci.max() + 1, cj.min():cj.max() + 1].repeat(s, axis=0).repeat(s, axis=1)
    fine = np.pad(fine, 1)  # the exact map's spare cell on each side
    any_row = fine.any(axis=1)
    spans = np.stack([np.where(any_row, fine.argmax(axis=1), 1),
                      np.where(any_row, fine.shape[1] - 1 - fine[:, ::-1].argmax(axis=1), 0)], axis=1)
    exact = rasterize(src_pts, dst_pts, triangles[sub], sign[sub], box, 1, row_spans=spans)
    for moved, offset in warp.shifts:  # gaze, as on the coarse map
        exact.map_xy[np.append(moved[sub], False)[exact.tri_id]] += offset.astype(np.float32)
    oy, ox = np.divmod(np.arange(s * s), s)
    py = (ci[:, None] * s + oy[None]).ravel()
    px = (cj[:, None] * s + ox[None]).ravel()
    r, c = py + y0 - box[1] + 1, px + x0 - box[0] + 1  # the exact map has one spare cell per side
    # covered: the exact map; uncovered where the coarse map has nothing either: identity (also
    # exact); uncovered but covered coarsely (cannot happen unless a triangle was missed): the blend
    use = (exact.tri_id[r, c] >= 0) | (warp.layers[py // s, px // s] == 0)
    full[py[use], px[use]] = exact.map_xy[r[use], c[use]]


def dense_map(warp: WarpMap) -> np.ndarray:
    """The warp at one entry per output pixel of its ROI: (h, w, 2) float32 source (x, y), folds'
    edges exact, everything else upsampled linearly (exact for affine pieces)."""
    x0, y0, x1, y1 = warp.roi
    gh, gw = warp.map_xy.shape[:2]
    full = cv2.resize(warp.map_xy, (gw * warp.step, gh * warp.step), interpolation=cv2.INTER_LINEAR)
    sharpen_folds(warp, full)
    s = warp.step
    return full[s: s + y1 - y0, s: s + x1 - x0]
