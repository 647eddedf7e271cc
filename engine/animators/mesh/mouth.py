"""The mouth: its interior, and a lower face that opens without folding.

- **Interior.** When the target mouth opens wider than the portrait's, draw a cavity with a hint of
  teeth instead of the stretched lip line (which reads as a closed mouth, to people and to the
  tracker alike). A portrait that shows its own teeth (a smile) keeps them: the upper half of its
  opening rides with the upper lip, the lower half with the lower lip (``split_own_opening``), and
  the cavity is drawn only in the gap that opens between them, with no drawn teeth (drawn over,
  her real teeth turned into grey blocks on the astronaut).
- **No folds.** Relative motion moves each landmark by the driver's own displacement. Face Mesh's
  lower lip rolls in 3-D as the jaw drops (on d18's yawn its outer edge ends up *below* the chin
  crease under it), and on a portrait whose lower lip sits closer to that crease the transferred
  points cross: the 2-D warp folds the lip over the chin, a doubled lip with a jagged edge.
  ``unfold_lower_face`` keeps every column of the lower face (inner lip, lip, chin crease, chin,
  jaw line) in order: rows may close up a little, never cross; where the driver's close up more
  (a shout), the chin drops instead.
- **An opening in proportion.** Relative motion opens the portrait's jaw by the driver's opening in
  face units, so a portrait whose mouth is narrower for its face than the driver's (most painted
  ones) opens rounder than the driver's mouth, one with a wider mouth flatter. ``open_in_proportion``
  scales the opening the motion adds by the two mouths' widths (the driver's as the motion maps it
  onto the portrait's face), so the portrait's mouth opens to the driver's shape: gap over width.
  The driver's width is its width at rest (``RestingWidth``), not at the calibration frame: people
  calibrate smiling or with their lips pressed wide. A portrait's own parted lips narrow with its
  mouth: kept whole, they read as an opening when the driver purses closed lips.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from engine.animators.mesh.eyes import LUMA, clamp_pairs, down_normal, pair_gaps, smoothstep
from engine.face_regions import (INNER_LIPS_LOWER, INNER_LIPS_UPPER, LIPS, LOWER_LIP_SEMI_INNER,
                                 LOWER_LIP_SEMI_OUTER, OUTER_LIPS_LOWER)
from engine.metrics import inter_ocular

UPPER = np.array(INNER_LIPS_UPPER)
LOWER = np.array(INNER_LIPS_LOWER)
MIDDLE = slice(3, 8)  # the inner-lip pairs that measure the opening

# Below each outer lower-lip point: the chin crease, then straight down the chin to the jaw line
# (the tesselation's most downward edges, the same on every frontal portrait here). Under 181 and 405
# the way down forks; those columns join their inner neighbour's below the crease.
_BELOW_LIP = {146: (43, 204, 211, 170, 149), 91: (106, 194, 32, 140, 176), 181: (182, 201, 208, 171, 148),
              84: (83, 201, 208, 171, 148), 17: (18, 200, 199, 175, 152), 314: (313, 421, 428, 396, 377),
              405: (406, 421, 428, 396, 377), 321: (335, 418, 262, 369, 400), 375: (273, 424, 431, 395, 378)}
# The lower face as columns, top to bottom, one per inner lower-lip point between the corners (in
# INNER_LIPS_LOWER order): the jaw moves each column as one piece.
LOWER_FACE_COLUMNS = tuple(
    (inner, semi_inner, semi_outer, outer) + _BELOW_LIP[outer]
    for inner, semi_inner, semi_outer, outer in zip(INNER_LIPS_LOWER, LOWER_LIP_SEMI_INNER, LOWER_LIP_SEMI_OUTER,
                                                    OUTER_LIPS_LOWER)
    if outer in _BELOW_LIP)
_COLUMNS = np.array(LOWER_FACE_COLUMNS)  # (9 columns, 9 rows)
# How far a row of the lower face may close up on the next one: this fraction of their spacing on
# the portrait. Face Mesh reads a shouting driver's lower face squeezed to half its height (d18: inner
# lip to chin 0.48 -> 0.25 inter-ocular distances) as it rolls the lip in 3-D; passed on to a 2-D warp
# at 0.35 that squeezed s2's lower lip to a thin grey rim, and people and the tracker read the shout
# as a closed mouth (mouth r 0.69). At 0.8 the lip keeps its body and the chin drops with the jaw.
MIN_ROW_SPACING = 0.8
UNFOLD_PASSES = 3  # two columns share their chin with a neighbour: a few passes settle both
# The portrait's own parted lips narrow with its mouth down to this share of their gap; a mouth wider
# than painted (a smile) keeps the painted gap: a widening gap showed more teeth in closed-lip smiles
# and raised s10 x d3's mouth amplitude 1.28 -> 1.37.
OWN_GAP_WIDTH_RANGE = (0.6, 1.0)

# Mouth interior shading: the cavity's brightness (x the palette's) at the lips and deep inside; the
# tongue's colour (x the lips') and half-axes (of the half-width, of the opening). Kept dark and
# small on purpose: a brighter cavity edge, a lip-coloured tongue against the lower lip, or hiding
# the lower teeth made the opening read smaller (MediaPipe on s12 x d10: mouth r 0.92 -> 0.73,
# amplitude 0.78 -> 0.65); with these it reads as the flat cavity did (0.92 / 0.82).
CAVITY_EDGE, CAVITY_DEEP = 1.2, 0.7
TONGUE_SHADE, TONGUE_SIZE = 0.45, (0.5, 0.3)
EDGE_SOFTNESS = 0.012  # of the mouth's width: the lips' shadow over the cavity
# Teeth, seen from the front: faint gaps between them at these positions across the mouth (0 the
# middle, 1 a corner: central incisors 8.5 mm, laterals 6.5, canines seen edge-on, on a 50 mm mouth).
# A band with no gaps read as a mouthguard. (Teeth shortening towards the corners looked right too,
# but MediaPipe then read the opening smaller: s9 x d9 mouth amplitude 0.92 -> 0.85.)
UPPER_TOOTH_GAPS = (0.0, 0.34, 0.6, 0.78)
LOWER_TOOTH_GAPS = (0.0, 0.2, 0.4, 0.58)
# Seen from the front the teeth turn away before the corners, where the cheeks' shadow shows (the
# buccal corridor): teeth whole up to the first |u| (0 the middle, 1 a corner), gone by the second. A
# band filling the narrowing corners drew a fang on each side (s0 x d12 at the live size). MediaPipe
# reads the opening as before (mouth r / amplitude within 0.03 on six pairs).
# Gone by 0.9, not 0.92, since the interior covers a wide-open mouth's own opening whole: at 0.92 the
# teeth near a corner were back at 31 % of their brightness.
CORRIDOR = (0.72, 0.9)
TOOTH_GAP_SHADE = 0.3  # how much darker a gap is than the teeth beside it, at the biting edge
# A portrait shows its own teeth where its parted lips' opening (its upper half) is this much
# brighter than its lips (the astronaut: 1.30; s42, s10, s1, s2 show a dark opening: 0.24-0.97; a
# closed mouth has none).
TEETH_BRIGHTER = 1.15
# Lips parted less than this share of the mouth's width show no teeth to keep (closed mouths here:
# 0.003 at most, so a bright lip line on a large portrait is not taken for teeth; the astronaut 0.175).
MIN_OWN_OPENING = 0.04


@dataclass(frozen=True)
class MouthPalette:
    cavity: np.ndarray  # RGB float
    teeth: np.ndarray
    tongue: np.ndarray


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
    # teeth take half the skin's tint (the portrait's light and varnish): plain off-white read as
    # blue-grey against warm skin and lips (s4, s12), and as chalk on the Mona Lisa's yellowed face
    tint = 1.0 + 0.5 * (skin / max(brightness, 1.0) - 1.0)
    teeth = 223.0 * tint * np.clip(0.45 + brightness / 255.0, 0.5, 1.0)
    tongue = TONGUE_SHADE * lip + np.array([8.0, 0.0, 0.0]) * (lip.std() > 4)  # a touch redder, not on grey
    return MouthPalette(cavity=cavity, teeth=teeth, tongue=tongue)


def opening(pts: np.ndarray) -> float:
    """Mean inner-lip gap (pixels) over the middle of the mouth."""
    return float(np.linalg.norm(pts[LOWER[MIDDLE]] - pts[UPPER[MIDDLE]], axis=1).mean())


@lru_cache(maxsize=8)
def _catmull_rom(n: int, per_segment: int) -> np.ndarray:
    """The matrix that maps n points, continued straight by one at each end, to their curve."""
    s = np.arange(per_segment) / per_segment
    basis = 0.5 * np.stack([-s ** 3 + 2 * s ** 2 - s, 3 * s ** 3 - 5 * s ** 2 + 2,
                            -3 * s ** 3 + 4 * s ** 2 + s, s ** 3 - s ** 2], axis=1)
    m = np.zeros(((n - 1) * per_segment + 1, n + 2))
    for i in range(n - 1):
        m[i * per_segment:(i + 1) * per_segment, i:i + 4] = basis
    m[-1, n] = 1.0
    return m


def smooth_curve(points: np.ndarray, per_segment: int = 6) -> np.ndarray:
    """A Catmull-Rom curve through ``points`` (n, 2) in order, ``per_segment`` samples per segment:
    point j of ``points`` is sample ``j * per_segment``, the last sample is the last point.

    Drawn straight, the inner-lip landmarks' polygon shows its corners on a large open mouth (s2 at
    full size: segments of 30-40 px, a faceted cavity and teeth). Uniform knots: on the mouths here
    the curve is within 0.5 px of the centripetal one (which cannot loop where points bunch up) and
    costs one product instead of 0.13 ms."""
    p = np.asarray(points, np.float64)
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])  # ends continued straight
    return _catmull_rom(len(p), per_segment) @ ext


def draw_interior(out: np.ndarray, pts: np.ndarray, source_gap: float, palette: MouthPalette,
                  own_teeth: np.ndarray | None = None) -> None:
    """In place on ``out``: cavity, tongue and teeth inside the target inner lips (``smooth_curve``).

    Shaded like a real open mouth lit from the front: the cavity darkest deep inside and a little
    lighter towards the lips, a tongue behind the lower teeth once the mouth is wide open, teeth that
    darken towards the corners with faint gaps between them and end before the corners, and a soft
    edge (the lips' shadow) instead of a cut-out outline.

    ``own_teeth``: for a portrait that shows its teeth, its inner-lip pairs' own gaps (9, target px),
    which ``split_own_opening`` kept whole, half on each lip: the cavity is drawn between those
    halves only, and no teeth are drawn."""
    if own_teeth is not None:
        n = down_normal(pts, INNER_LIPS_UPPER[0], INNER_LIPS_UPPER[-1])
        half = np.concatenate([[0.0], 0.5 * np.asarray(own_teeth, np.float64), [0.0]])
        upper_edge, lower_edge = pts[UPPER] + half[:, None] * n, pts[LOWER] - half[:, None] * n
        closed = ((lower_edge - upper_edge) @ n) < 0  # the lips closer than the portrait's: no gap
        middle = 0.5 * (upper_edge[closed] + lower_edge[closed])
        upper_edge[closed], lower_edge[closed] = middle, middle
        pts = pts.copy()
        pts[UPPER], pts[LOWER] = upper_edge, lower_edge
        source_gap = 0.0  # all of the gap between the halves is new
    gap = opening(pts)
    if gap < 1.0:
        return
    # The portrait's own opening (teeth behind parted lips) is stretched with the lips; drawn over
    # in proportion to how far it is stretched, gone at twice its height. Faded out by the share of
    # the opening that is new instead, half of it still showed at twice its height: grey fog over
    # the cavity while talking and its stretched teeth as vertical streaks on a yawn (s42).
    alpha = float(np.clip((gap - source_gap) / max(source_gap, 1.0), 0.0, 1.0))
    if alpha < 0.02:
        return
    k = 6  # curve samples per landmark segment: landmark j of a lip is sample j * k
    upper, lower = smooth_curve(pts[UPPER], k), smooth_curve(pts[LOWER], k)
    poly = np.concatenate([upper, lower[::-1][1:-1]])
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
    d = pts[UPPER[-1]] - pts[UPPER[0]]
    width = np.hypot(*d)
    tangent = d / max(width, 1e-6)
    normal = np.array([-tangent[1], tangent[0]])
    if normal[1] < 0:
        normal = -normal
    # mouth coordinates of every pixel: u across (-1 at a corner, +1 at the other), v down the opening
    # (0 at the upper inner lip's middle, 1 at the lower's)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    top = pts[UPPER[MIDDLE]].mean(axis=0)
    rel_x, rel_y = xx - top[0], yy - top[1]
    centre_u = (0.5 * (pts[UPPER[0]] + pts[UPPER[-1]]) - top) @ tangent
    u = (rel_x * tangent[0] + rel_y * tangent[1] - centre_u) / max(0.5 * width, 1e-6)
    v = (rel_x * normal[0] + rel_y * normal[1]) / gap
    # upper teeth: a band under the upper lip, lower teeth: a thinner, shaded band over the lower lip
    t_up = min(0.38 * gap, 0.11 * width)
    upper_middle = upper[k:len(upper) - k]  # UPPER[1:-1]
    band_up = np.concatenate([upper_middle, (upper_middle + t_up * normal)[::-1]])
    t_lo = min(0.22 * gap, 0.06 * width)
    lower_middle = lower[2 * k:len(lower) - 2 * k]  # LOWER[2:-2]
    band_lo = np.concatenate([lower_middle, (lower_middle - t_lo * normal)[::-1]])
    corridor = smoothstep((CORRIDOR[1] - np.abs(u)) / (CORRIDOR[1] - CORRIDOR[0]))
    teeth_up = fill(band_up, size) * mask * corridor
    teeth_lo = fill(band_lo, size) * mask * 0.8 * corridor
    # the cavity: darkest deep inside, lighter where the lips' inner faces catch the light
    depth = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, 3) / max(0.5 * gap, 1.0)
    interior = palette.cavity * (CAVITY_EDGE - (CAVITY_EDGE - CAVITY_DEEP) * smoothstep(depth))[..., None]
    # the tongue: once the mouth is wide open, a rounded lighter shape behind the lower teeth
    wide = float(smoothstep((gap / max(width, 1e-6) - 0.15) / 0.25))  # 0: talking .. 1: wide open
    if wide > 0:
        tongue = np.clip(1.0 - (u / TONGUE_SIZE[0]) ** 2 - ((v - 1.0) / TONGUE_SIZE[1]) ** 2, 0.0, 1.0)
        tongue = smoothstep(tongue / 0.25) * wide
        tongue_col = palette.tongue * (0.55 + 0.45 * np.clip(v, 0.0, 1.0))[..., None]
        interior = interior * (1 - tongue[..., None]) + tongue_col * tongue[..., None]
    t = np.clip(teeth_up + teeth_lo, 0, 1)[..., None] * (own_teeth is None)  # its own teeth show instead
    # teeth turn away into shadow at the sides; the upper lip shades the upper teeth's roots
    receding = 1.0 - 0.35 * np.clip(np.abs(u), 0.0, 1.0) ** 2
    lip_shadow = 0.8 + 0.2 * smoothstep(v * gap / max(t_up, 1e-6))
    gap_width = max(0.6, 0.006 * width) / max(0.5 * width, 1e-6)  # about a pixel at the live size
    # the gaps show at the biting edge and fade towards the gums, under the lips
    upper_gaps = _tooth_gaps(u, UPPER_TOOTH_GAPS, gap_width, smoothstep(v * gap / max(t_up, 1e-6)))
    lower_gaps = _tooth_gaps(u, LOWER_TOOTH_GAPS, gap_width, smoothstep((1.0 - v) * gap / max(t_lo, 1e-6)))
    shade = receding * np.where(teeth_up >= teeth_lo, lip_shadow * upper_gaps, 0.75 * lower_gaps)
    interior = interior * (1 - t) + palette.teeth * (shade[..., None] * t)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.6, EDGE_SOFTNESS * width)) * mask
    a = (mask * alpha)[..., None]
    crop = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(crop * (1 - a) + interior * a + 0.5, 0, 255).astype(np.uint8)


def _tooth_gaps(u: np.ndarray, positions, gap_width: float, strength: np.ndarray) -> np.ndarray:
    """Shade (1 on a tooth, darker in a gap) of the gaps at ``positions`` and their mirror images."""
    nearest = np.min([np.abs(np.abs(u) - g) for g in positions], axis=0)
    return 1.0 - TOOTH_GAP_SHADE * strength * np.exp(-(nearest / gap_width) ** 2)


@dataclass(frozen=True)
class InnerLips:
    """The inner lips as lines across the mouth: depth along the mouth's normal (px) at each position
    from corner to corner (0..1), for ``split_own_opening``."""

    origin: np.ndarray  # the first corner
    tangent: np.ndarray  # unit, corner to corner
    normal: np.ndarray  # unit, down the mouth
    width: float  # corner to corner, px
    upper: tuple[np.ndarray, np.ndarray]  # (positions, depths), by position
    lower: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, pts: np.ndarray) -> "InnerLips":
        origin = pts[UPPER[0]]
        d = pts[UPPER[-1]] - origin
        width = max(float(np.hypot(*d)), 1e-9)
        tangent, normal = d / width, down_normal(pts, INNER_LIPS_UPPER[0], INNER_LIPS_UPPER[-1])

        def line(idx):
            u, v = (pts[idx] - origin) @ tangent / width, (pts[idx] - origin) @ normal
            order = np.argsort(u)
            return u[order], v[order]
        return cls(origin, tangent, normal, width, line(UPPER), line(LOWER))

    def gap(self, u: np.ndarray) -> np.ndarray:
        """The lips' gap (px) at positions ``u`` across the mouth."""
        return np.interp(u, *self.lower) - np.interp(u, *self.upper)


def split_own_opening(pos: np.ndarray, own: InnerLips, target: InnerLips, scale: float) -> np.ndarray:
    """(K, 2): how far to move the portrait positions ``pos`` (K, 2) that the mouth's interior
    samples, so that a portrait's own opening opens as a mouth does: its upper half stays under the
    upper lip, its lower half over the lower lip, at their painted heights, instead of both
    stretching with the gap. Between the halves the samples stay on the opening's middle line (the
    cavity is drawn over it: ``draw_interior``). Where the target opening is no wider than the
    portrait's (``own``: the portrait's lips; ``target`` in output pixels, ``scale`` of them per
    portrait pixel) nothing moves. A warp-map function for ``WarpMap.shift``'s ``by``."""
    rel = pos - own.origin
    u = rel @ own.tangent / own.width
    depth = rel @ own.normal - np.interp(u, *own.upper)
    painted = own.gap(u)
    wanted = target.gap(u) / max(scale, 1e-9)
    inside = (painted > 0.5) & (wanted > painted) & (depth >= 0) & (depth <= painted)
    drawn_at = depth / np.maximum(painted, 1e-9) * wanted  # where the stretch alone draws this sample
    half = 0.5 * painted
    kept = np.where(drawn_at <= half, drawn_at,
                    np.where(drawn_at >= wanted - half, painted - (wanted - drawn_at), half))
    return np.where(inside, kept - depth, 0.0)[:, None] * own.normal[None, :]


def mouth_width(pts: np.ndarray) -> float:
    """The inner lips' corner-to-corner distance (pixels)."""
    return float(np.hypot(*(pts[INNER_LIPS_UPPER[-1]] - pts[INNER_LIPS_UPPER[0]])))


def relative_width(pts: np.ndarray) -> float:
    """``mouth_width`` in the face's own inter-ocular distances (the same however near the camera)."""
    return mouth_width(pts) / max(inter_ocular(pts), 1e-9)


class RestingWidth:
    """The driver's mouth width at rest, in the portrait's inter-ocular distances as the calibration
    maps the driver's face onto the portrait: the median ``relative_width`` over the frames since
    calibration with the lips together (the calibration frame's until there is one), times the
    driver's eye distance at calibration.

    Taken at the calibration frame alone, a calibration made with the lips pressed wide set how far
    the portrait's mouth opened for the whole session (d18 calibrates at 0.58 inter-ocular distances
    and rests at 0.49), and so would one made smiling. The median over the lips-together frames is the
    usual width: a smile or a press for part of the time does not move it. Measured in the driver's
    own eye distances it is the same when the driver later leans in or back.
    """

    CLOSED = 0.05  # inner-lip gap over width below which the lips count as together (drivers: 0.00-0.01)
    WINDOW = 900  # lips-together frames remembered: 30 s at 30 fps

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._at_calibration: float | None = None
        self._eyes = 1.0  # the driver's eye distance at calibration, in the portrait's
        self._closed: deque[float] = deque(maxlen=self.WINDOW)

    def calibrate(self, pts: np.ndarray, portrait_eyes: float) -> None:
        """``pts``: the driver's face at calibration, mapped onto the portrait, whose eye distance
        (``inter_ocular``) is ``portrait_eyes``."""
        self._at_calibration = relative_width(pts)
        self._eyes = inter_ocular(pts) / max(portrait_eyes, 1e-9)

    def update(self, pts: np.ndarray) -> None:
        if opening(pts) < self.CLOSED * mouth_width(pts):
            self._closed.append(relative_width(pts))

    @property
    def value(self) -> float | None:
        if self._at_calibration is None:
            return None
        usual = float(np.median(self._closed)) if self._closed else self._at_calibration
        return usual * self._eyes


@dataclass(frozen=True)
class PortraitMouth:
    """The portrait's own mouth, worked out once per portrait (``of``), for the per-frame steps."""

    own_gaps: np.ndarray  # (9,) its inner-lip pairs' gaps along the mouth's normal, px (0 where they touch)
    opening: float  # ``opening``: mean gap over the middle, px
    relative_width: float  # ``relative_width``
    inter_ocular: float  # px
    row_spacing: np.ndarray  # (9, 8) each lower-face column's rows' spacing along the face's vertical, px
    shows_teeth: bool = False  # its parted lips show its teeth (``shows_teeth``)
    lips: InnerLips | None = None  # its inner lips across the mouth, where it shows its teeth

    @classmethod
    def of(cls, src: np.ndarray, image: np.ndarray | None = None) -> "PortraitMouth":
        n = down_normal(src, INNER_LIPS_UPPER[0], INNER_LIPS_UPPER[-1])
        teeth = image is not None and shows_teeth(image, src)
        return cls(own_gaps=np.maximum((src[LOWER[1:-1]] - src[UPPER[1:-1]]) @ n, 0.0), opening=opening(src),
                   relative_width=relative_width(src), inter_ocular=inter_ocular(src),
                   row_spacing=np.diff(src[_COLUMNS] @ down_normal(src, 33, 263), axis=1),
                   shows_teeth=teeth, lips=InnerLips.of(src) if teeth else None)

    def scale(self, pts: np.ndarray) -> float:
        """How much larger the face ``pts`` is than the portrait's (their eyes' outer corners' distance)."""
        return inter_ocular(pts) / max(self.inter_ocular, 1e-9)


def shows_teeth(image: np.ndarray, pts: np.ndarray) -> bool:
    """Whether the portrait's parted lips show its teeth: the opening's upper half (the middle
    pairs, from 10 % to 45 % of their gap; a smile shows its upper teeth, the lower lip often hides
    the lower ones) is ``TEETH_BRIGHTER`` than its lips on average."""
    n = down_normal(pts, INNER_LIPS_UPPER[0], INNER_LIPS_UPPER[-1])
    up, lo = pts[UPPER[MIDDLE]], pts[LOWER[MIDDLE]]
    gap = (lo - up) @ n
    if gap.mean() < MIN_OWN_OPENING * mouth_width(pts):
        return False
    q = (up[None] + np.linspace(0.1, 0.45, 8)[:, None, None] * gap[None, :, None] * n).reshape(-1, 2)
    luma = np.asarray(image, np.float32) @ LUMA
    h, w = luma.shape
    inside = cv2.remap(luma, q[:, 0].astype(np.float32)[None], q[:, 1].astype(np.float32)[None], cv2.INTER_LINEAR)
    lips = np.clip(np.round(pts[list(LIPS)]).astype(int), [0, 0], [w - 1, h - 1])
    return bool(inside.mean() > TEETH_BRIGHTER * luma[lips[:, 1], lips[:, 0]].mean())


def open_in_proportion(pts: np.ndarray, portrait: PortraitMouth, ratio: float) -> None:
    """In place: the opening the motion adds to the portrait's own, times ``ratio`` (the portrait's
    ``mouth_width`` over the driver's, mapped onto the portrait's face), the jaw doing it: each inner
    lower-lip point moves along the mouth's normal, and the rest of its lower-face column with it,
    as in ``close_inner_lips``. The portrait's own opening (parted lips) narrows with the mouth's
    width (``OWN_GAP_WIDTH_RANGE``: pursed lips close their gap in proportion) and stays as painted
    when the mouth widens; the upper lip stays. A mouth the motion presses shut is left to
    ``clamp_inner_lips``."""
    if not np.isfinite(ratio):
        return
    n, _, _, gap, _ = pair_gaps(pts, pts, INNER_LIPS_UPPER, INNER_LIPS_LOWER)
    own = portrait.own_gaps * portrait.scale(pts)
    width = float(np.clip(relative_width(pts) / max(portrait.relative_width, 1e-9), *OWN_GAP_WIDTH_RANGE))
    added = gap - own
    wanted = own * width + np.where(added > 0, ratio * added, added)
    drop_by_pair = wanted - gap
    if not np.any(np.abs(drop_by_pair) > 1e-6):
        return
    drop, columns = np.zeros(len(pts)), np.zeros(len(pts))
    for column, d in zip(LOWER_FACE_COLUMNS, drop_by_pair):
        drop[list(column)] += d
        columns[list(column)] += 1
    jaw = columns > 0  # a chin point two columns share moves by their mean
    pts[jaw] += np.outer(drop[jaw] / columns[jaw], n)


def clamp_inner_lips(pts: np.ndarray, src: np.ndarray) -> None:
    clamp_pairs(pts, src, INNER_LIPS_UPPER, INNER_LIPS_LOWER)


def close_inner_lips(pts: np.ndarray) -> None:
    """In place: a closed-mouth version of these landmarks, the jaw doing the closing.

    Each inner lower-lip point moves up onto its upper partner (along the mouth's normal), and the
    rest of its lower-face column (lip, chin, jaw line) with it, so the lip keeps its thickness and
    the chin comes up with the jaw. The upper lip stays. Lips that already touch or press together
    are left as they are."""
    n, _, _, gap, _ = pair_gaps(pts, pts, INNER_LIPS_UPPER, INNER_LIPS_LOWER)
    close = np.maximum(gap, 0.0)
    if not np.any(close > 0):
        return
    lift, columns = np.zeros(len(pts)), np.zeros(len(pts))
    for column, c in zip(LOWER_FACE_COLUMNS, close):
        lift[list(column)] += c
        columns[list(column)] += 1
    jaw = columns > 0  # a chin point two columns share comes up by their mean
    pts[jaw] -= np.outer(lift[jaw] / columns[jaw], n)


def unfold_lower_face(pts: np.ndarray, portrait: PortraitMouth) -> None:
    """In place: put each lower-face column back in order where the motion made its rows cross or
    close up.

    Along the face's vertical (perpendicular to the eye corners' line), each row must stay at least
    ``MIN_ROW_SPACING`` of its portrait spacing below the row above (rows the portrait itself has
    out of order keep their own overlap). Where a column breaks that, its points move the least
    they can (least squares) to keep it, the inner lip (it sets the mouth's opening) staying put:
    rows pushed down push the chin and the jaw line down with them, as a dropping jaw does. An
    unfolded column is left exactly as it is."""
    n = down_normal(pts, 33, 263)
    on_portrait = portrait.scale(pts) * portrait.row_spacing
    spacing = np.where(on_portrait > 0, MIN_ROW_SPACING * on_portrait, on_portrait)  # or its own overlap
    offset = np.concatenate([np.zeros((len(_COLUMNS), 1)), np.cumsum(spacing, axis=1)], axis=1)
    weight = np.ones(_COLUMNS.shape[1])
    weight[0] = 1e6  # the inner lip stays
    for _ in range(UNFOLD_PASSES):
        y = pts[_COLUMNS] @ n
        folded = np.nonzero(np.any(np.diff(y, axis=1) < spacing - 1e-9, axis=1))[0]
        if folded.size == 0:
            return
        for k in folded:
            y_k = pts[_COLUMNS[k]] @ n  # fresh: a shared point may have moved with an earlier column
            y_new = _non_decreasing(y_k - offset[k], weight) + offset[k]
            pts[_COLUMNS[k]] += np.outer(y_new - y_k, n)


def _non_decreasing(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-decreasing fit of ``values`` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weight):
        blocks.append([float(v), float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.repeat([b[0] for b in blocks], [b[2] for b in blocks])
