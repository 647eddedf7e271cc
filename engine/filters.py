"""One-Euro filter (Casiez et al., CHI 2012): smooths jitter when still, follows fast motion.

The cutoff frequency rises with the signal's speed: ``cutoff = min_cutoff + beta * |speed|``.
Lower ``min_cutoff`` = less jitter at rest; higher ``beta`` = less lag when moving.

The low-pass itself is unit-free; only ``beta`` depends on the units the speed is measured in.
``OneEuroFilter`` measures speed in the signal's own units (``scale=1``) unless told a scale per
call, element by element unless given a ``speed`` function. ``LandmarkFilter`` is the one for faces:
it measures speed in *inter-ocular distances per second*, so the same settings smooth a 480² webcam
face and a 4K one alike (in pixels, beta's meaning would change with resolution and distance to the
camera), and it gives every landmark the speed of its face part rather than its own: see its
docstring.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroSettings:
    min_cutoff: float = 1.0  # Hz
    beta: float = 0.5  # Hz per (unit / s); for LandmarkFilter the unit is 0.01 inter-ocular distance
    d_cutoff: float = 1.0  # Hz, for the speed estimate


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of any fixed shape, element-wise, at irregular timestamps (seconds)."""

    def __init__(self, settings: OneEuroSettings = OneEuroSettings(), speed=None):
        """``speed(dx, x)``: maps the smoothed derivative and the signal (x's shape) to the speed the
        cutoff sees (any shape that broadcasts against x); default: each element's own ``|dx|``."""
        self.settings = settings
        self.speed = speed or (lambda dx, x: np.abs(dx))
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float, scale: float | np.ndarray = 1.0) -> np.ndarray:
        """Filtered ``x`` at time ``t``; the cutoff sees the speed divided by ``scale`` (broadcast)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        if t <= self._t:  # repeated or out-of-order timestamp: assume one 30 fps frame passed
            t = self._t + 1 / 30
        dt = t - self._t
        s = self.settings
        a_d = _alpha(s.d_cutoff, dt)
        self._dx = a_d * (x - self._x) / dt + (1 - a_d) * self._dx
        cutoff = s.min_cutoff + s.beta * self.speed(self._dx, x) / scale
        a = 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()


# Inter-ocular distance from the eye corners (Face Mesh indices), the face-size unit.
_EYE_CORNERS = (33, 263)
LANDMARK_UNIT = 0.01  # speed unit for beta: 1/100 of the inter-ocular distance


def _face_parts() -> np.ndarray:
    """Per Face Mesh landmark (478): which part moves on its own (0 = the rest of the face).

    Parts are what one expression moves together: each upper lid, lower lid, iris and brow, the
    upper and lower lip, the lip corners. A part's speed is its points' mean, so a part mixing a
    mover with still points (upper with lower lid) would slow the mover down."""
    from engine import face_regions as fr

    lids = [fr.RIGHT_EYE_UPPER, fr.RIGHT_EYE_LOWER, fr.LEFT_EYE_UPPER, fr.LEFT_EYE_LOWER]
    groups = [contour[1:-1] for contour in lids]
    groups += [fr.RIGHT_IRIS, fr.LEFT_IRIS, fr.RIGHT_EYEBROW, fr.LEFT_EYEBROW,
               fr.OUTER_LIPS_UPPER[1:-1] + fr.INNER_LIPS_UPPER[1:-1],
               fr.OUTER_LIPS_LOWER[1:-1] + fr.INNER_LIPS_LOWER[1:-1],
               (fr.OUTER_LIPS_UPPER[0], fr.OUTER_LIPS_UPPER[-1], fr.INNER_LIPS_UPPER[0], fr.INNER_LIPS_UPPER[-1])]
    part = np.zeros(fr.NUM_LANDMARKS, np.int64)
    for k, group in enumerate(groups, 1):
        part[list(group)] = k
    return part


_PARTS = _face_parts()
_PART_SIZES = np.bincount(_PARTS)  # constant: counted once, not per frame
_PER_COORDINATE = 1.0 / np.sqrt(2.0)


def face_speed(dx: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Speed per landmark for the cutoff: the head's motion plus its own part's expression motion.

    The landmarks' velocities are split into the best 2-D similarity velocity field (the head
    moving, turning in the image, coming closer) and what remains (expression). Every landmark sees
    the mean speed of the head's motion plus the mean expression speed of its part (``_face_parts``:
    a lid, an iris, a brow, a lip, the lip corners, the rest). Averages over many points are steady
    where one coordinate's speed is noise, a blink still opens its lid's cutoff at once, and a head
    that only moves keeps its shape.
    Shapes other than the 478-point mesh get one speed: the mean over all points.
    """
    d = np.asarray(dx, np.float64)
    if d.ndim != 2 or d.shape[1] < 2:
        return np.abs(d)
    v = d[:, :2]
    if len(d) != len(_PARTS):
        return np.full((len(d), 1), np.hypot(v[:, 0], v[:, 1]).mean() * _PER_COORDINATE)
    p = np.asarray(x, np.float64)[:, :2]
    c = p - p.mean(axis=0)
    # v ≈ t + [[s, -r], [r, s]] c, least squares in (s, r) after removing the mean velocity
    vm = v - v.mean(axis=0)
    den = max((c ** 2).sum(), 1e-12)
    s_ = (c * vm).sum() / den
    r_ = (c[:, 0] * vm[:, 1] - c[:, 1] * vm[:, 0]).sum() / den
    rigid = v.mean(axis=0) + s_ * c + r_ * np.stack([-c[:, 1], c[:, 0]], axis=1)
    head = np.hypot(rigid[:, 0], rigid[:, 1]).mean()
    residual = v - rigid
    own = np.hypot(residual[:, 0], residual[:, 1])
    per_part = np.bincount(_PARTS, weights=own) / _PART_SIZES
    # per coordinate (RMS of x and y), the unit the element-wise filter's beta was tuned in
    return ((head + per_part[_PARTS]) * _PER_COORDINATE)[:, None]


class LandmarkFilter:
    """One-Euro filtering of face landmarks (N, 2+) in pixels, scale-free, one cutoff per face part.

    Speed is measured in 1/100 inter-ocular distances (IOD) per second, so ``beta`` means the same
    at any resolution. x and y are filtered; other columns (Face Mesh's z, in x's pixel scale) too.
    The IOD is taken per call from the *filtered* points of the previous frame (smooth, no noise of
    its own), falling back to the current frame's.

    The cutoff's speed is per face part, not per coordinate (``face_speed``): the head's motion
    plus the part's own expression motion. With a cutoff per coordinate (the textbook filter applied
    element-wise) each coordinate's noisy speed estimate switches its own cutoff up and down, so a
    moving face changes shape from frame to frame: on a real driver that moves a lot (d11) the
    filtered landmarks shook 1.3x *more* than the raw ones (second difference 0.0267 vs 0.0205 IOD).
    One speed for the whole face fixed that (0.0207) but smoothed blinks away (a blink moves a few
    points of a still face: eye correlation fell on 13 of 108 quality pairs), hence the parts (d11:
    0.0199, blinks as element-wise). Under a pure 2-D similarity motion every part has the same
    speed, so the output stays an exact similarity of the input shape.
    """

    def __init__(self, settings: OneEuroSettings = OneEuroSettings()):
        self.settings = settings
        self._filter = OneEuroFilter(settings, speed=face_speed)
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self._filter.reset()
        self._last = None

    @staticmethod
    def unit(points: np.ndarray) -> float:
        """The speed unit in pixels for these landmarks (LANDMARK_UNIT × inter-ocular distance)."""
        p = np.asarray(points, np.float64)
        if p.ndim == 2 and p.shape[0] > max(_EYE_CORNERS) and p.shape[1] >= 2:
            iod = float(np.hypot(*(p[_EYE_CORNERS[1], :2] - p[_EYE_CORNERS[0], :2])))
        else:  # not a face mesh: the points' own extent
            flat = p.reshape(-1, p.shape[-1] if p.ndim > 1 else 1)
            iod = float(np.ptp(flat, axis=0).max()) / 2.5 if flat.size else 0.0
        return max(iod, 1e-6) * LANDMARK_UNIT

    def __call__(self, points: np.ndarray, t: float) -> np.ndarray:
        points = np.asarray(points, np.float64)
        ref = self._last if self._last is not None and self._last.shape == points.shape else points
        unit = self.unit(ref)
        if not np.isfinite(unit):
            unit = self.unit(points)
        out = self._filter(points, t, scale=unit)
        self._last = out
        return out
