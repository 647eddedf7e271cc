"""Eyes: lids that close without folding, and gaze carried by the irises.

Blinks come through the lid landmarks of the relative motion (source gap + scaled driver change). A
driver whose eyes are large relative to the portrait's would push the upper lid *past* the lower one;
``clamp_lids`` stops each lid pair at closed. Gaze: the irises are not in the warp mesh; the eye's
interior is shifted by how far the target iris moves relative to its eye (``gaze_offsets``).
"""
from __future__ import annotations

import numpy as np

from engine.animators.mesh.triangulation import EYES


def _axis(pts: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    d = pts[b] - pts[a]
    n = np.hypot(*d)
    t = d / n if n > 1e-9 else np.array([1.0, 0.0])
    return t, np.array([-t[1], t[0]])  # tangent, normal (image y-down: normal points "down" for t=+x)


def clamp_pairs(pts: np.ndarray, src: np.ndarray, upper, lower) -> None:
    """In place: each (upper[i], lower[i]) pair may close but not cross (beyond the source's own gap)."""
    t, n = _axis(pts, upper[0], upper[-1])
    if n[1] < 0:
        n = -n
    up = np.array(upper[1:-1])
    lo = np.array(lower[1:-1])
    gap = (pts[lo] - pts[up]) @ n
    ts, ns = _axis(src, upper[0], upper[-1])
    if ns[1] < 0:
        ns = -ns
    floor = np.minimum(0.0, (src[lo] - src[up]) @ ns)
    bad = gap < floor
    if np.any(bad):
        mid = 0.5 * (pts[up[bad]] + pts[lo[bad]])
        # keep each point's tangential position, meet in the middle along the normal
        pts[up[bad]] += np.outer((mid - pts[up[bad]]) @ n - 0.5 * floor[bad], n)
        pts[lo[bad]] += np.outer((mid - pts[lo[bad]]) @ n + 0.5 * floor[bad], n)


def clamp_lids(pts: np.ndarray, src: np.ndarray) -> None:
    for upper, lower, _ in EYES:
        clamp_pairs(pts, src, upper, lower)


def eye_openness(pts: np.ndarray) -> np.ndarray:
    """Per eye: mean lid gap over eye width."""
    out = []
    for upper, lower, _ in EYES:
        width = np.hypot(*(pts[upper[-1]] - pts[upper[0]]))
        gap = np.linalg.norm(pts[list(lower[2:-2])] - pts[list(upper[2:-2])], axis=1).mean()
        out.append(gap / max(width, 1e-6))
    return np.array(out)


def gaze_offsets(pts: np.ndarray, src: np.ndarray, max_fraction: float = 0.18) -> np.ndarray:
    """(2, 2): per eye, how far the target iris moved relative to its own eye contour (target px)."""
    out = np.zeros((2, 2))
    if pts.shape[0] < 478:
        return out
    for k, (upper, lower, iris) in enumerate(EYES):
        contour = list(upper) + list(lower[1:-1])
        o = (pts[iris] - src[iris]) - (pts[contour] - src[contour]).mean(axis=0)
        width = np.hypot(*(pts[upper[-1]] - pts[upper[0]]))
        limit = max_fraction * width
        mag = np.hypot(*o)
        if mag > limit:
            o *= limit / mag
        out[k] = o
    return out
