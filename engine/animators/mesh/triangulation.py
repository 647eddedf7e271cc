"""The mesh the warp moves: MediaPipe's face tesselation, eye/mouth hole fills and anchor rings.

Topology comes from Face Mesh's own tesselation (so triangles never cross an eyelid or a lip line,
whatever the portrait's pose), not from a Delaunay of the source points. The eye openings and the
inner mouth are holes in that mesh; they are filled with strips between the upper and lower contour,
so a blink or an opening mouth is a strip collapsing or widening, never a fold. The irises are not
part of the mesh: their landmarks do not follow the lids, and gaze is handled separately (eyes.py).

Around the face oval, three rings of anchors (oval scaled about the face centre) carry hair, ears
and neck: the inner rings follow the head's similarity transform with falling weights, the outermost
is fixed, so the background beyond it never moves and there is no seam at the face boundary.
The rings spread out when the head moves far (``AnchorRings``), so that the hair between them is
never squeezed or stretched past ``MAX_STRAIN``; where they run off the image, what the head takes
towards the border leaves the picture.
"""
from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.face_regions import (INNER_LIPS_LOWER, INNER_LIPS_UPPER, LEFT_EYE_LOWER, LEFT_EYE_UPPER, REGIONS,
                                 RIGHT_EYE_LOWER, RIGHT_EYE_UPPER)

NUM_MESH_POINTS = 468  # Face Mesh points without the 10 iris points

EYES = ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, 468), (LEFT_EYE_UPPER, LEFT_EYE_LOWER, 473))

# Scale of each anchor ring about the face centre at rest, and how much of the head's motion it follows.
RING_SCALES = (1.25, 1.6, 2.0)
RING_WEIGHTS = (0.9, 0.45, 0.0)
# How much the head's motion may stretch, squeeze or shear what lies between two rings (hair, neck),
# per unit of length. Neighbouring rings whose weights differ by dw, a gap g apart, differ in motion by
# dw * shift: at rest the rings absorb a shift of 0.39 of the face's radius (dw / g = 0.45 / 0.35
# between the inner two), less when the head also turns. Beyond, they spread (up to MAX_SPREAD times
# their resting gaps; ``AnchorRings.spread``) instead of folding the hair over itself, shearing it
# sideways, or pushing the face past the fixed ring, where it was cut off (d12 on s10: the head shifts
# by up to half the face's width, past the fixed ring in 23 of 183 frames).
MAX_STRAIN = 0.5
MAX_SPREAD = 3.0
# The weight profile along a ray from the face's centre: the oval (scale 1) follows the head fully,
# then each ring by its weight, at its resting scale.
_PROFILE_SCALES = np.array((1.0,) + RING_SCALES)
_PROFILE_WEIGHTS = np.array((1.0,) + RING_WEIGHTS)
# Anchors that would lie off the image stay on its border. There they may move out, past it (hair
# a head takes towards the border leaves the picture instead of piling up against it: d12 on s42),
# never in (the border would then show what lies off the picture). Within this fraction of the face's
# width of a border, motion away from it already fades out, so an anchor reaching it never jumps.
BORDER_FADE = 0.05

# Triangle kinds
FACE, EYE_INTERIOR, MOUTH_INTERIOR, RING = 0, 1, 2, 3


@lru_cache(maxsize=1)
def face_triangles() -> np.ndarray:
    """Triangles of the Face Mesh tesselation (its edges' 3-cliques, minus the 2 that are not faces)."""
    adj = collections.defaultdict(set)
    for a, b in REGIONS["tesselation"]:
        adj[a].add(b)
        adj[b].add(a)
    tris = set()
    for a, b in REGIONS["tesselation"]:
        for c in adj[a] & adj[b]:
            tris.add(tuple(sorted((a, b, c))))
    use = collections.Counter(e for t in tris for e in itertools.combinations(t, 2))
    # A 3-clique whose every edge is shared by 3 cliques is a spurious "triangle" across a real one.
    faces = [t for t in tris if not all(use[e] == 3 for e in itertools.combinations(t, 2))]
    return np.array(sorted(faces), dtype=np.int32)


def strip(upper, lower) -> list[tuple[int, int, int]]:
    """Triangles filling the area between two contours of equal length (shared ends allowed)."""
    out = []
    for i in range(len(upper) - 1):
        for tri in ((upper[i], upper[i + 1], lower[i]), (upper[i + 1], lower[i + 1], lower[i])):
            if len(set(tri)) == 3:
                out.append(tri)
    return out


@lru_cache(maxsize=1)
def oval_order() -> tuple[int, ...]:
    """The face oval's landmarks in order around the contour."""
    adj = collections.defaultdict(list)
    for a, b in REGIONS["face_oval_edges"]:
        adj[a].append(b)
        adj[b].append(a)
    start = 10
    order, prev, cur = [start], None, start
    while True:
        nxt = [n for n in adj[cur] if n != prev][0]
        if nxt == start:
            break
        order.append(nxt)
        prev, cur = cur, nxt
    return tuple(order)


@dataclass(frozen=True)
class MeshTopology:
    triangles: np.ndarray  # (M, 3) indices into the point array: 468 face points, then ring points
    kinds: np.ndarray  # (M,) FACE / EYE_INTERIOR / MOUTH_INTERIOR / RING
    num_ring_points: int


@lru_cache(maxsize=1)
def topology() -> MeshTopology:
    tris = [tuple(t) for t in face_triangles()]
    kinds = [FACE] * len(tris)
    for upper, lower, _ in EYES:
        s = strip(upper, lower)
        tris += s
        kinds += [EYE_INTERIOR] * len(s)
    s = strip(INNER_LIPS_UPPER, INNER_LIPS_LOWER)
    tris += s
    kinds += [MOUTH_INTERIOR] * len(s)
    oval = list(oval_order())
    n = len(oval)
    rings = [oval] + [[NUM_MESH_POINTS + r * n + i for i in range(n)] for r in range(len(RING_SCALES))]
    for inner, outer in zip(rings[:-1], rings[1:]):
        for i in range(n):
            j = (i + 1) % n
            tris += [(inner[i], inner[j], outer[i]), (inner[j], outer[j], outer[i])]
            kinds += [RING, RING]
    return MeshTopology(np.array(tris, np.int32), np.array(kinds, np.int8), n * len(RING_SCALES))


class AnchorRings:
    """The anchor rings around one portrait's face oval. Ring ``i`` lies along each ray from the face
    centre through an oval point, at ``1 + (RING_SCALES[i] - 1) * spread`` times the oval point's
    distance; ``spread`` is 1 at rest and grows, per ray, with the head's motion (``spread``)."""

    def __init__(self, face_xy: np.ndarray, image_size: tuple[int, int]):
        self.oval = face_xy[list(oval_order())].astype(np.float64)
        self.centre = self.oval.mean(axis=0)
        self.rays = self.oval - self.centre  # (N, 2): centre to each oval point
        self.radius = np.maximum(np.linalg.norm(self.rays, axis=1), 1e-6)
        self.image_size = image_size
        self.fade = max(BORDER_FADE * np.ptp(self.oval[:, 0]), 1.0)
        w, h = image_size
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(self.rays > 0, (np.array([w - 1, h - 1]) - self.centre) / self.rays,
                            np.where(self.rays < 0, -self.centre / self.rays, np.inf))
        self._leaves = room.min(axis=1)  # the scale at which each ray leaves the image
        self._rest = None  # points() at spread 1, worked out once
        self._rest = self.points(1.0)

    def spread(self, a: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Per ray: the least spread (1 to ``MAX_SPREAD``) at which the head's similarity ``x -> a x +
        t`` (its shift, turn and scale) strains the hair between neighbouring rings no more than
        ``MAX_STRAIN``.

        Along ray u (face centre c to an oval point), ring i sits at c + s_i u with s_i = 1 + (S_i - 1) k
        (S_i: its scale at rest, k: the spread; the oval itself: s = 1, weight 1) and moves by
        w_i (T + s_i M u), where M = a - I and T = M c + t is the centre's shift. Neighbours i, i + 1
        then differ in motion by p + k q, with p = dw (T + M u) and q = (w_{i+1} (S_{i+1} - 1) -
        w_i (S_i - 1)) M u, over a gap k dS |u|. The strain is at most g where
        (g^2 dS^2 |u|^2 - |q|^2) k^2 - 2 (p.q) k - |p|^2 >= 0: from the larger root on. A turn whose
        strain stays above g however far the rings spread (|q| >= g dS |u|) takes ``MAX_SPREAD``."""
        m = a - np.eye(2)
        shift = self.centre @ a.T + t - self.centre
        mu = self.rays @ m.T
        scales, weights = _PROFILE_SCALES, _PROFILE_WEIGHTS
        need = np.ones(len(self.rays))
        for i in range(len(RING_SCALES)):
            dw = weights[i + 1] - weights[i]
            beta = weights[i + 1] * (scales[i + 1] - 1) - weights[i] * (scales[i] - 1)
            p = dw * (shift + mu)
            q = beta * mu
            gap = (scales[i + 1] - scales[i]) * self.radius
            qa = (MAX_STRAIN * gap) ** 2 - (q ** 2).sum(axis=1)
            pq, pp = (p * q).sum(axis=1), (p ** 2).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                root = (pq + np.sqrt(pq ** 2 + qa * pp)) / qa
            need = np.maximum(need, np.where(qa > 0, root, MAX_SPREAD))
        return np.clip(np.nan_to_num(need, nan=MAX_SPREAD), 1.0, MAX_SPREAD)

    def points(self, spread: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """At ``spread`` (scalar or per ray): the points on the image (3 * N, 2) ring by ring, the
        same before they were put on it, and how much of the head's motion each follows (3 * N,):
        its ring's weight, or where the ray leaves the image before reaching it, the weight there
        (all of a ray beyond the border moves as one: a fixed ring put on the border under a moving
        one would fold what lies between)."""
        spread = np.broadcast_to(np.asarray(spread, np.float64), self.radius.shape)
        if self._rest is not None and np.all(spread == 1.0):
            return self._rest  # most frames: the head has not moved far
        w, h = self.image_size
        scale = 1.0 + (np.array(RING_SCALES)[:, None] - 1.0) * spread[None]  # (3, N)
        # the weight profile along each ray: 1 on the oval, each ring's weight at its scale, linear in
        # between, read at the ring's scale or, beyond the border, where the ray leaves the image
        knots = np.concatenate([np.ones((1, len(spread))), scale])  # (4, N)
        values = _PROFILE_WEIGHTS
        at = np.clip(np.minimum(scale, self._leaves), 1.0, None)  # (3, N)
        weights = np.zeros_like(scale)
        for k in range(len(RING_SCALES)):  # segment k of the profile, between knots k and k + 1
            lo, hi = knots[k], knots[k + 1]
            on = (at >= lo) & (at <= hi)
            frac = (at - lo) / np.maximum(hi - lo, 1e-9)
            weights = np.where(on, values[k] + frac * (values[k + 1] - values[k]), weights)
        unclipped = (self.centre + scale[..., None] * self.rays).reshape(-1, 2)
        clipped = np.stack([np.clip(unclipped[:, 0], 0, w - 1), np.clip(unclipped[:, 1], 0, h - 1)], axis=1)
        return clipped, unclipped, weights.reshape(-1)

    def for_motion(self, a: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source points, target points) of the rings for the head's similarity ``x -> a x + t``:
        each ring follows it by its weight, spread as far as the head's motion needs, and never moves
        in from the image's border (``BORDER_FADE``)."""
        src, unclipped, weights = self.points(self.spread(a, t))
        move = weights[:, None] * (src @ a.T + t - src)
        w, h = self.image_size
        # how far each anchor lies from the border its motion leads away from (< 0: beyond it)
        behind = np.where(move > 0, unclipped, np.array([w - 1, h - 1]) - unclipped)
        return src, src + move * np.clip(behind / self.fade, 0.0, 1.0)
