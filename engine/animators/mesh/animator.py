"""MeshAnimator: the embedded default engine. Warps the full-resolution portrait along Face Mesh.

Keypoints are the 478 landmarks' xy (no Jacobians: each triangle's affine map *is* the local
first-order motion). Per portrait (``set_source``): the mesh, anchor rings, draw order, back-face
signs, the warp grid's step, the person and the still background behind it
(``background.PersonLayers``), mouth and eyelid colours. Per frame (``render``): lid closing and
lip clamping, ring motion from the head's similarity transform (the rings spread out when the head
moves far), the region that moves, a coarse piecewise-affine map, gaze shift, a smile's own teeth kept
with their lips (``mouth.split_own_opening``), the person warped over the still background, closed-eye
lid skin and lash line, mouth interior.
``driving_keypoints`` also follows how shut each of the driver's own eyes is (``eyes.BlinkState``),
so a blink closes the portrait's eye whatever the two eyes' sizes, and the driver's mouth width at
rest (``mouth.RestingWidth``), so the portrait's mouth opens to the driver's shape.

Driving keypoints: the driver's landmarks mapped into the *portrait's* frame by one similarity
(fitted on rigid points, on the first driving face after ``set_source``; ``forget_driver()`` refits). In
absolute mode the target is therefore the driver's face shape and head motion placed where the
portrait's face is; in relative mode only the motion counts, expressed along the portrait's own
face axes (a driver tilted at calibration still nods along the portrait's nose line).

Order of motion: the warp is first order by construction (each triangle's affine map is the local
Jacobian of the motion, taken from the landmarks themselves). ``MotionSettings.first_order=False``
only drops keypoint Jacobians, which this engine does not produce, so it renders the same.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from engine.animators.base import Animator
from engine.animators.mesh import eyes, mouth
from engine.animators.mesh.triangulation import (
    EYE_INTERIOR, EYES, FACE, MOUTH_INTERIOR, NUM_MESH_POINTS, RING, AnchorRings, oval_order, topology)
from engine.animators.mesh.background import PersonLayers
from engine.animators.mesh.similarity import fit_similarity
from engine.animators.mesh.warp import choose_step, dense_map, identity_grid, rasterize
from engine.face_regions import RIGID
from engine.motion import Keypoints
from engine.portrait import Portrait
from engine.segmentation import person_mask
from engine.tracking import FaceLandmarks

RIGID_IDX = np.array(RIGID)


def _finite(points: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(points)
    if np.any(bad):
        points = points.copy()
        points[bad] = fallback[bad]
    return points


class MeshAnimator(Animator):
    name = "mesh"
    needs_driving_image = False

    def __init__(self, draw_mouth: bool = True, gaze: bool = True, min_step: int = 2):
        self.draw_mouth = draw_mouth
        self.gaze = gaze
        self.min_step = min_step
        self._image: np.ndarray | None = None
        self._align: tuple[np.ndarray, np.ndarray] | None = None
        self._blink = eyes.BlinkState()
        self._closure: np.ndarray | None = None  # per eye, from the driver's own eyes (None: no driver)
        self._driver_eye_widths: np.ndarray | None = None  # per eye, in the portrait's pixels
        self._driver_mouth = mouth.RestingWidth()

    # -- per portrait --------------------------------------------------------------------------
    def set_source(self, portrait: Portrait) -> Keypoints:
        image = np.ascontiguousarray(portrait.image)
        h, w = image.shape[:2]
        pts3 = np.nan_to_num(np.asarray(portrait.landmarks.points, np.float64))
        xy = pts3[:, :2].copy()
        self._image = image
        self._src = xy
        self._rings = AnchorRings(xy, (w, h))
        rings = self._rings.points()[0]  # at rest: where the triangles' orientation is read
        src_all = np.concatenate([xy[:NUM_MESH_POINTS], rings])

        topo = topology()
        tris, kinds = topo.triangles, topo.kinds
        z = np.concatenate([pts3[:NUM_MESH_POINTS, 2], np.full(len(rings), np.inf)])
        depth = z[tris].mean(axis=1)  # Face Mesh z: smaller = nearer the camera
        depth = np.where(kinds == RING, np.inf, depth)
        order = np.argsort(-depth, kind="stable")  # far first, near last (rings first of all)
        self._tris = np.ascontiguousarray(tris[order])
        kinds = kinds[order]
        st = src_all[self._tris]
        det = ((st[:, 1, 0] - st[:, 0, 0]) * (st[:, 2, 1] - st[:, 0, 1])
               - (st[:, 1, 1] - st[:, 0, 1]) * (st[:, 2, 0] - st[:, 0, 0]))
        sign = np.sign(det)
        # Only real face triangles are culled when flipped; hole fills and rings may be slivers.
        cull = (kinds == FACE) & (np.abs(det) > 1e-3)
        self._sign = np.where(cull, sign, np.nan)
        self._mouth_interior = kinds == MOUTH_INTERIOR
        self._eye_of = np.full(len(self._tris), -1, np.int8)  # which eye's interior each triangle is
        eye_tris = np.nonzero(kinds == EYE_INTERIOR)[0]
        for k, (upper, lower, _) in enumerate(EYES):
            members = set(upper) | set(lower)
            for i in eye_tris:
                if set(self._tris[i].tolist()) <= members:
                    self._eye_of[i] = k

        # the grid's step is set by the region that moves at rest (bounded by the fixed ring), and kept
        # when the rings spread: a step changing from frame to frame would show
        x0, y0, x1, y1 = self._moving_region(src_all, 1)
        self._step = choose_step(x1 - x0, y1 - y0, self.min_step)
        self._roi = self._moving_region(src_all, self._step)
        self._grid = identity_grid(self._roi, self._step)
        self._layers = PersonLayers.split(image, person_mask(image), xy[list(oval_order())])
        self._palette = mouth.palette_from(image, xy)
        self._mouth = mouth.PortraitMouth.of(xy, image)
        self._eye_colours = eyes.colours_from(image, xy)
        self._align = None
        self._blink.reset()
        self._closure = self._driver_eye_widths = None
        return Keypoints(value=xy.astype(np.float32))

    def _moving_region(self, dst_all: np.ndarray, step: int) -> tuple[int, int, int, int]:
        """The output region a frame's warp can change: the target mesh's bounding box (the fixed
        ring encloses the rest), on the image, its corner on the grid's lattice (so that the grid's
        cells sit on the same pixels whatever the region)."""
        h, w = self._image.shape[:2]
        x0, y0 = np.floor(dst_all.min(axis=0)).astype(int)
        x1, y1 = np.ceil(dst_all.max(axis=0)).astype(int) + 1
        x0, y0 = max(0, x0) // step * step, max(0, y0) // step * step
        return x0, y0, min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))

    def forget_driver(self) -> None:
        """On calibration: refit the driver-to-portrait similarity and relearn the driver's usual
        eye openness on the next driving face (it may be someone else now)."""
        self._align = None
        self._blink.reset()
        self._driver_mouth.reset()

    # -- per frame -----------------------------------------------------------------------------
    def driving_keypoints(self, image: np.ndarray | None, face: FaceLandmarks) -> Keypoints:
        xy = np.asarray(face.points, np.float64)[:, :2]
        if self._image is None:
            return Keypoints(value=xy.astype(np.float32))
        xy = _finite(xy, self._src)
        self._closure = self._blink.update(xy).copy()
        self._driver_mouth.update(xy)
        if self._align is None:
            self._align = fit_similarity(xy[RIGID_IDX], self._src[RIGID_IDX])
        a, t = self._align
        aligned = xy @ a.T + t
        self._driver_eye_widths = eyes.eye_widths(aligned)
        return Keypoints(value=aligned.astype(np.float32))

    def reference_keypoints(self, driving: Keypoints) -> Keypoints:
        """The calibration frame with the driver's mouth closed: the portrait's mouth then opens by
        the driver's whole opening, also when the driver calibrated mid-word (d3 starts mid-word:
        s4 x d3 mouth r 0.77 -> 0.95, amplitude 0.65 -> 0.89). Drivers read ~0 with the lips together,
        so a closed-mouth calibration is unchanged. The driver's mouth width here (over its face) sets
        how far the portrait's mouth opens for the driver's opening until the driver's lips have been
        together (``mouth.RestingWidth``, ``mouth.open_in_proportion``)."""
        pts = np.asarray(driving.value, np.float64).reshape(-1, 2).copy()
        if len(pts) >= NUM_MESH_POINTS and np.all(np.isfinite(pts)):
            if self._image is not None:
                self._driver_mouth.calibrate(pts, self._mouth.inter_ocular)
            mouth.close_inner_lips(pts)
        return Keypoints(value=pts.astype(np.float32), jacobian=driving.jacobian)

    def target_points(self, target: Keypoints) -> np.ndarray:
        """The target landmarks after lid and lip clamping and lower-face unfolding (478, 2) float64.

        Lids: a driver eye narrowed against its usual openness (``eyes.BlinkState``, from the last
        driving face given to ``driving_keypoints``) narrows the portrait's at least in proportion,
        and one nearly shut closes it fully, upper lid onto lower. Mouth: the opening the motion adds
        is scaled by the two mouths' widths (``mouth.open_in_proportion``), then lips that would cross
        meet and the lower face is kept from folding.
        """
        pts = _finite(np.asarray(target.value, np.float64).reshape(-1, 2), self._src)
        if self._blink.usual is not None and self._driver_eye_widths is not None:
            eyes.limit_opening(pts, self._src, self._blink.openness, self._blink.usual, self._driver_eye_widths)
        eyes.close_lids(pts, self._src, self._closure)
        driver_width = self._driver_mouth.value
        if driver_width:
            # clipped: a misread mouth (a hand over it, a profile) must not scale the opening wildly
            ratio = self._mouth.relative_width / driver_width
            mouth.open_in_proportion(pts, self._mouth, float(np.clip(ratio, 0.5, 2.0)))
        mouth.clamp_inner_lips(pts, self._src)
        mouth.unfold_lower_face(pts, self._mouth)
        return pts

    def posed_landmarks(self, target: Keypoints) -> np.ndarray:
        return self.target_points(target)

    def render(self, target: Keypoints) -> np.ndarray:
        if self._image is None:
            raise RuntimeError("MeshAnimator.render called before set_source")
        pts = self.target_points(target)
        a, t = fit_similarity(self._src[RIGID_IDX], pts[RIGID_IDX])
        ring_src, ring_dst = self._rings.for_motion(a, t)
        src_all = np.concatenate([self._src[:NUM_MESH_POINTS], ring_src])
        dst_all = np.concatenate([pts[:NUM_MESH_POINTS], ring_dst])
        roi = self._moving_region(dst_all, self._step)
        if roi != self._roi:
            self._roi, self._grid = roi, identity_grid(roi, self._step)

        warp = rasterize(src_all, dst_all, self._tris, self._sign, roi, self._step, self._grid)
        scale = np.sqrt(abs(np.linalg.det(a)))  # output pixels per portrait pixel
        keep_teeth = self.draw_mouth and self._mouth.shows_teeth
        if keep_teeth:
            split = partial(mouth.split_own_opening, own=self._mouth.lips, target=mouth.InnerLips.of(pts),
                            scale=scale)
            warp.shift(self._mouth_interior, np.zeros(2), by=split)
        if self.gaze:
            offsets = eyes.gaze_offsets(pts, self._src)
            if np.any(offsets):
                inv_scale = 1.0 / max(scale, 1e-6)
                for k in range(2):
                    shift = -offsets[k] * inv_scale
                    turn = partial(eyes.eyeball_turn, src=self._src, eye=k, offset=shift)
                    warp.shift(self._eye_of == k, shift, by=turn)
        out = self._image.copy()
        self._layers.composite(dense_map(warp), out, roi)
        eyes.paint_closed(out, pts, self._eye_colours, self._src @ a.T + t)
        if self.draw_mouth:
            own = self._mouth.own_gaps * self._mouth.scale(pts) if keep_teeth else None
            mouth.draw_interior(out, pts, self._mouth.opening, self._palette, own_teeth=own)
        return out
