"""The still background behind the moving person.

The anchor rings around the face carry hair, neck and shoulders along with the head, and with them
whatever background lies inside the rings: a waterfall behind a turning head turned with it. So the
portrait is split once, by its person mask m (``engine.segmentation``), into two layers:

- the person: the portrait itself, with its mask;
- a background plate B: the portrait wherever the mask is not whole, and where the person is, the
  background around it continued (seen only where the moving head uncovers it).

Per frame the portrait and its mask are warped together by the mesh's map and laid over the still
plate: O = warp(m) warp(I) + (1 - warp(m)) B. Where nothing moves this is m I + (1 - m) I = I, the
portrait exactly (B = I wherever m < 1).

The mask is widened beyond what the segmentation finds, fading out (``WIDEN_BUSY``, ``WIDEN_PLAIN``):
flyaway hair it leaves out moves along with the head instead of staying behind, and the background
right next to the head cross-fades from moving to still instead of showing a seam.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The person's mask is widened (fraction of the face's width: whole up to the first, faded out by the
# second). On a busy background only a little: background moving with the head shows there. On a
# plain one (a studio wall) a lot: moving it does not show, and flyaway hair moves along.
WIDEN_BUSY = (0.04, 0.08)
WIDEN_PLAIN = (0.2, 0.3)
# Busy or plain: the Sobel gradient's median over 5x5 pixels of a copy in which the face is
# TEXTURE_FACE_WIDTH pixels wide (medians measured next to the person: a studio wall 10, painted
# backdrops 17-26, the Mona Lisa's landscape 40, grass 65).
TEXTURE_FACE_WIDTH = 55
TEXTURE_PLAIN, TEXTURE_BUSY = 16.0, 40.0
# The segmentation must cover this much of the face it is asked about; a dog's "face" (Face Mesh
# finds one on ../shared/media/non-faces/dog.jpg) is covered 14 %, every portrait here 100 %.
FACE_COVERAGE_MIN = 0.8
# Where the person has moved away, the plate mirrors the background near the person's edge (in face
# widths: whole up to the first, faded out by the second); deeper in, only its fine texture over a
# smooth fill. Mirrored whole deeper, the background broke into a patchwork wherever the nearest
# background pixel jumped (behind the Mona Lisa: banded lake, torn-off hills, once a head moved a
# third of its width).
MIRROR_FADE = (0.03, 0.12)
FILL_SMOOTH = 0.04  # the smooth fill's blur, in face widths
# The mirrored grain is cut to what most of the background's own grain stays within (this percentile
# of its distance from the local mean): grass keeps its blades, while an edge mirrored from beside
# the person (a waterfall against dark trees, a curtain's hem) no longer comes back as a dark blob or
# a ghost outline deep in the hole.
GRAIN_PERCENTILE = 90
ROW_FILL_KERNEL = 3  # ... and in pixels of the shrunk copy it is worked out on


@dataclass
class PersonLayers:
    """The portrait as a person over a still plate."""

    image_mask: np.ndarray  # (H, W, 4) uint8: the portrait and its person mask (255 = person) as a
    # fourth channel, so that one remap warps both
    plate: np.ndarray  # (H, W, 4) uint8 (the fourth channel is unused: 4 bytes a pixel)

    @classmethod
    def split(cls, image: np.ndarray, mask: np.ndarray, face_outline: np.ndarray) -> "PersonLayers":
        """``mask``: (H, W) float person mask of ``image``; ``face_outline``: (N, 2) polygon that is
        the person whatever the segmentation says. A mask that misses most of that face is not
        trusted at all: then everything the anchor rings move moves, background included."""
        core = np.round(255 * np.clip(mask, 0, 1)).astype(np.uint8)
        face = np.zeros(core.shape, np.uint8)
        cv2.fillPoly(face, [np.round(face_outline).astype(np.int32)], 1)
        if (core[face > 0] >= 128).mean() < FACE_COVERAGE_MIN:
            # the segmentation found nobody here, or somebody else: everything inside the anchor
            # rings moves with the head, as it would without a background layer
            core[:] = 255
        core[face > 0] = 255
        face_width = np.ptp(face_outline[:, 0])
        plainness = _plainness(image, core >= 128, face_width)
        person = np.maximum(core, _widened(core, plainness, face_width))
        # continued from beyond the widened edge, so that no stray strand is copied into the hole
        filled = _fill_person(image, person > 0, plainness, tuple(f * face_width for f in MIRROR_FADE),
                              max(3, round(FILL_SMOOTH * face_width)))
        plate = np.where((person == 255)[..., None], filled, image)
        return cls(np.dstack([image, person]), np.dstack([plate, person]))

    def composite(self, source_map: np.ndarray, out: np.ndarray, roi: tuple[int, int, int, int]) -> None:
        """Write the warped person over the still plate into ``out`` over ``roi`` (x0, y0, x1, y1;
        exclusive ends). ``source_map``: (h, w, 2) float32 source pixel (x, y) of every output pixel
        of the ROI.

        Cheaply: where the warped mask is whole (face, hair) the output is warp(I); where it is empty,
        the plate; only the band of the person's soft edge in between is blended. Where the map is the
        identity this is the portrait exactly: the plate differs from it only where the mask is whole."""
        x0, y0, x1, y1 = roi
        warped = cv2.remap(self.image_mask, source_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.extractChannel(warped, 3)
        cv2.copyTo(self.plate[y0:y1, x0:x1], cv2.compare(mask, 0, cv2.CMP_EQ), warped)
        flat = np.flatnonzero((mask > 0) & (mask < 255))  # the soft edge (cv2.findNonZero: 3.5x the time)
        if flat.size:
            # one uint32 per RGBA pixel: gathering and scattering the band is then cheap
            ey, ex = np.divmod(flat, x1 - x0)
            pixels = warped.view(np.uint32).reshape(-1)
            person = pixels.take(flat).view(np.uint8).reshape(-1, 4).astype(np.float32)
            at_plate = (ey + y0) * self.plate.shape[1] + ex + x0
            plate = self.plate.view(np.uint32).reshape(-1).take(at_plate).view(np.uint8).reshape(-1, 4)
            alpha = mask.reshape(-1).take(flat)[:, None] * np.float32(1 / 255)
            pixels[flat] = (plate + alpha * (person - plate) + 0.5).astype(np.uint8).view(np.uint32).reshape(-1)
        cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, dst=out[y0:y1, x0:x1])


def _widened(core: np.ndarray, plainness: np.ndarray, face_width: float) -> np.ndarray:
    """The person's mask (uint8) grown by ``WIDEN_BUSY`` (on a textured background) to
    ``WIDEN_PLAIN`` (on a plain one, per pixel by ``plainness``) of the face's width, fading out."""
    distance = cv2.distanceTransform((core < 128).astype(np.uint8), cv2.DIST_L2, 5) / max(face_width, 1.0)
    inner = WIDEN_BUSY[0] + plainness * (WIDEN_PLAIN[0] - WIDEN_BUSY[0])
    outer = WIDEN_BUSY[1] + plainness * (WIDEN_PLAIN[1] - WIDEN_BUSY[1])
    t = np.clip((outer - distance) / (outer - inner), 0, 1)
    return np.round(255 * t * t * (3 - 2 * t)).astype(np.uint8)  # smoothstep


def _plainness(image: np.ndarray, person: np.ndarray, face_width: float) -> np.ndarray:
    """(h, w) float32, 1 where the background around a pixel is plain, 0 where it is busy: the
    median Sobel gradient over a few pixels of a copy where the face is ``TEXTURE_FACE_WIDTH`` wide
    (the person counted as flat). At that size stray hairs on a wall average away; grass or foliage
    does not."""
    h, w = person.shape
    scale = min(1.0, TEXTURE_FACE_WIDTH / max(face_width, 1.0))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    gray = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    magnitude = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    magnitude[cv2.resize(person.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0] = 0
    texture = cv2.medianBlur(np.clip(magnitude, 0, 255).astype(np.uint8), 5)
    texture = cv2.resize(texture.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip((TEXTURE_BUSY - texture) / (TEXTURE_BUSY - TEXTURE_PLAIN), 0, 1)


def _fill_person(image: np.ndarray, hole: np.ndarray, plainness: np.ndarray,
                 fade: tuple[float, float] | None = None, smooth: int = 5) -> np.ndarray:
    """``image`` with the ``hole`` (the person) filled from the background around it; pixels outside
    the hole are kept exactly.

    Underneath, a smooth fill (``_row_fill``, over ``smooth`` pixels) carries on what runs sideways.
    Over it, each hole pixel takes the background mirrored across its nearest background pixel: the
    slivers a moving head uncovers then continue the background's own texture (grass, a waterfall)
    instead of a smooth smear. ``fade`` (pixels): the mirror is whole up to the first distance from
    the background; by the second only its fine texture (the mirrored pixel less its local mean) is
    added to the smooth fill: whole mirrored colours that deep broke into a patchwork wherever the
    nearest background pixel jumped, a smooth fill alone was a blurred blob on grass (None: whole
    however deep). That texture is cut to the background's usual grain (``GRAIN_PERCENTILE``): an
    edge mirrored from beside the person adds grain, not a blob or an outline. Where the background
    is plain (``plainness`` of the mirrored pixel), and where the mirror image lands on the person or
    off the image, the smooth fill only: mirrored, the odd stray hair on a plain wall would come back
    as a pattern of strands."""
    h, w = hole.shape
    if not hole.any() or hole.all():
        return image.copy()
    out = _row_fill(image, hole, smooth)
    distance, nearest = cv2.distanceTransformWithLabels(hole.astype(np.uint8), cv2.DIST_L2, 5,
                                                        labelType=cv2.DIST_LABEL_PIXEL)
    background = np.flatnonzero(~hole)  # labels number the background pixels in raster order, from 1
    local_mean = cv2.blur(image, (2 * smooth + 1, 2 * smooth + 1))
    grain_max = _grain_level(image, local_mean, hole)
    near, far = fade if fade is not None else (np.inf, np.inf)
    band = max(1, 2 ** 18 // w)  # rows at a time: index arrays stay small on a 2048 px portrait
    for y0 in range(0, h, band):
        hy, hx = np.nonzero(hole[y0:y0 + band])
        hy += y0
        by, bx = np.divmod(background[nearest[hy, hx] - 1], w)
        my, mx = 2 * by - hy, 2 * bx - hx
        ok = (my >= 0) & (my < h) & (mx >= 0) & (mx < w)
        ok[ok] = ~hole[my[ok], mx[ok]]
        hy, hx, my, mx = hy[ok], hx[ok], my[ok], mx[ok]
        whole = np.clip((far - distance[hy, hx]) / max(far - near, 1e-6), 0, 1) if np.isfinite(far) else 1.0
        smooth_fill = out[hy, hx].astype(np.float32)
        mirrored = image[my, mx].astype(np.float32)
        texture = smooth_fill + np.clip(mirrored - local_mean[my, mx], -grain_max, grain_max)
        mix = texture + np.reshape(whole, (-1, 1)) * (mirrored - texture)
        busy = (1.0 - plainness[my, mx])[:, None]
        out[hy, hx] = np.clip(np.round(smooth_fill + busy * (mix - smooth_fill)), 0, 255).astype(np.uint8)
    return out


def _grain_level(image: np.ndarray, local_mean: np.ndarray, hole: np.ndarray) -> float:
    """``GRAIN_PERCENTILE`` of the background's distance from its local mean (every 4th pixel)."""
    sample = (slice(None, None, 4), slice(None, None, 4))
    grain = cv2.absdiff(image[sample], local_mean[sample])[~hole[sample]]
    return float(np.percentile(grain, GRAIN_PERCENTILE)) if grain.size else 0.0


def _row_fill(image: np.ndarray, hole: np.ndarray, smooth: int) -> np.ndarray:
    """``image`` with ``hole`` filled row by row: each hole pixel blends the background's colour just
    left and just right of the hole in its row (a local mean over ``smooth`` pixels of background, so
    one dark strand does not streak across), by its position between the two; rows with background
    on one side only take that side's colour, rows with none the nearest filled row's. What lies
    behind a person mostly runs sideways (a horizon, a lake, a wall and its skirting), so it carries
    on behind the head; a push-pull fill from all sides left a flat blob there. Then a vertical blur
    of ``smooth`` pixels hides the rows' differences. The rest is kept exactly.

    Smooth by construction, so worked out on a copy shrunk until ``smooth`` is ``ROW_FILL_KERNEL``
    pixels, and enlarged again (splitting a 2048 px portrait peaked at 844 MB at full size, 382 MB
    so)."""
    h, w = hole.shape
    scale = min(1.0, ROW_FILL_KERNEL / max(smooth, 1))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    # a shrunk pixel with any person in it is person: background means are never tinted by the person
    small_hole = cv2.resize(hole.astype(np.uint8), size, interpolation=cv2.INTER_AREA) > 0 if scale < 1 else hole
    filled = _row_fill_everywhere(small, small_hole, max(1, round(smooth * scale)))
    if scale < 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = image.copy()
    cv2.copyTo(filled, hole.view(np.uint8), out)
    return out


def _row_fill_everywhere(image: np.ndarray, hole: np.ndarray, smooth: int) -> np.ndarray:
    """``_row_fill``'s smooth fill at every pixel (uint8): on the background, its local mean."""
    h, w = hole.shape
    k = (smooth, smooth)
    known = (~hole).astype(np.float32)
    weight = cv2.merge([np.maximum(cv2.blur(known, k), 1e-6)] * 3)
    mean = cv2.divide(cv2.blur(cv2.multiply(image.astype(np.float32), cv2.merge([known] * 3)), k), weight)
    xs = np.arange(w, dtype=np.int32)
    left = np.maximum.accumulate(np.where(hole, -1, xs), axis=1)  # nearest background column, or -1
    right = np.minimum.accumulate(np.where(hole, w, xs)[:, ::-1], axis=1)[:, ::-1]  # ... or w
    t = (xs - left) / np.maximum(right - left, 1).astype(np.float32)  # 0 on background pixels
    t[left < 0], t[right >= w] = 1.0, 0.0  # background on one side only: that side
    rows = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1)
    at_left = cv2.remap(mean, np.maximum(left, 0).astype(np.float32), rows, cv2.INTER_NEAREST)
    at_right = cv2.remap(mean, np.minimum(right, w - 1).astype(np.float32), rows, cv2.INTER_NEAREST)
    filled = at_left + t[..., None] * (at_right - at_left)
    empty = hole.all(axis=1)  # rows of person only: the nearest row with a fill
    if empty.any() and not empty.all():
        filled_rows = np.nonzero(~empty)[0]
        pick = np.clip(np.searchsorted(filled_rows, np.arange(h)), 0, len(filled_rows) - 1)
        below, above = filled_rows[pick], filled_rows[np.maximum(pick - 1, 0)]
        source = np.where(np.abs(above - np.arange(h)) <= np.abs(below - np.arange(h)), above, below)
        filled[empty] = filled[source[empty]]
    return cv2.convertScaleAbs(cv2.blur(filled, (1, 2 * smooth + 1)))  # rounded, 0-255
