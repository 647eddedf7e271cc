"""Eyes: lids that close like real lids, closed eyes that look closed, gaze carried by the irises.

Blinks come through the lid landmarks of the relative motion (source gap + scaled driver change),
with three corrections:

- **The upper lid does the closing.** When a pair of lid points would cross, the *upper* lid is put
  onto the lower one (a real blink brings the upper lid down; the lower lid hardly moves).
- **A closed driver eye closes the portrait's eye.** Relative motion is additive: a portrait with
  larger eyes than the driver's would stop half-way. ``BlinkState`` follows how open each of the
  driver's own eyes is against its usual openness (scale-free); ``limit_opening`` narrows the
  portrait's eye at least in proportion (the driver's at 40 % of its usual: the portrait's at most
  40 % of what it shows at the driver's usual), and ``close_lids`` completes the closing when the
  driver's eye is nearly shut.
- **A closed eye shows eyelid skin.** As the lids meet, ``paint_closed`` fades the eye's interior
  (iris, sclera) to eyelid skin sampled from the portrait's upper lid and draws a darker lash line,
  tapering towards the corners, along the closed lid, so that people and the tracker alike read the
  eye as closed. Painted eyes often show sclera outside Face Mesh's eye contour (under the lower-lid
  landmarks, beyond a corner): the closed lid comes down to the visible lower margin
  (``lower_margin``), and that sclera goes under skin inpainted from around the eye
  (``outer_sclera``), or a white crescent or triangle would stay under the closed lid.

Gaze: the irises are not in the warp mesh; the eye's interior is shifted by how far the target
iris moves relative to its eye (``gaze_offsets``), sideways or up, never down (down, it drew the
upper lid's lash line into the eye). Sideways the eyeball turns (``eyeball_turn``): the iris moves,
the sclera stretches and squeezes between it and the corners, which stay.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.animators.mesh.similarity import as_matrix, fit_similarity
from engine.animators.mesh.triangulation import EYES

# Driver openness (relative to its usual openness) at which the portrait's eye starts closing
# further than the additive motion says, and at which it is fully closed.
CLOSE_START, CLOSE_FULL = 0.45, 0.2
# Portrait closedness (1 - target gap / source gap) over which the interior fades to eyelid skin.
FADE_START, FADE_FULL = 0.55, 0.9
# Lash line thickness in its middle, fraction of the eye width. A real shut eye's dark line is 0.08-0.11
# eye widths across where it is half as dark as it gets (d0, d12; 0.14-0.21 with eyeliner: d3, d6,
# d10); with 0.04 ours measured 0.05-0.07 that way, with 0.06 0.07-0.10 (s2, s9, s42 x d3).
LASH_WIDTH = 0.06
LASH_TAPER = 0.3  # its thickness at the corners, of the middle's
# The visible lower lid margin can lie below Face Mesh's lower-lid landmarks (painted eyes especially:
# s4, s7, s10 show up to 0.15 eye widths of white under them). Looked for this far below each landmark,
# in steps: sclera is what is lighter than the skin under the eye and less coloured (saturation under
# ``SCLERA_SATURATION`` of the skin's). Where the portrait has no colour (a black-and-white photo)
# sclera and a lit lid rim cannot be told apart, and nothing is found.
MARGIN_SEARCH, MARGIN_STEPS = 0.16, 17
SCLERA_LIGHTER, SCLERA_SATURATION = 10.0, 0.6
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _axis(pts: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    d = pts[b] - pts[a]
    n = np.hypot(*d)
    t = d / n if n > 1e-9 else np.array([1.0, 0.0])
    return t, np.array([-t[1], t[0]])  # tangent, normal (image y-down: normal points "down" for t=+x)


def down_normal(pts: np.ndarray, a: int, b: int) -> np.ndarray:
    """The unit normal of the line from point a to point b, pointing down the image."""
    _, n = _axis(pts, a, b)
    return -n if n[1] < 0 else n


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def pair_gaps(pts: np.ndarray, src: np.ndarray, upper, lower):
    """For the inner (upper[i], lower[i]) pairs: the contour's downward normal, the pair indices,
    their gap along it now, and the closed gap (the source's own overlap, or 0)."""
    n = down_normal(pts, upper[0], upper[-1])
    up = np.array(upper[1:-1])
    lo = np.array(lower[1:-1])
    gap = (pts[lo] - pts[up]) @ n
    ns = down_normal(src, upper[0], upper[-1])
    closed = np.minimum(0.0, (src[lo] - src[up]) @ ns)
    return n, up, lo, gap, closed


def clamp_pairs(pts: np.ndarray, src: np.ndarray, upper, lower, mode: str = "middle") -> None:
    """In place: each (upper[i], lower[i]) pair may close but not cross (beyond the source's own gap).

    ``mode="middle"``: crossing pairs meet half-way (lips); ``"upper"``: the upper point is put
    onto the lower one (eyelids).
    """
    n, up, lo, gap, floor = pair_gaps(pts, src, upper, lower)
    bad = gap < floor
    if np.any(bad):
        if mode == "upper":
            pts[up[bad]] += np.outer(gap[bad] - floor[bad], n)
            return
        mid = 0.5 * (pts[up[bad]] + pts[lo[bad]])
        # keep each point's tangential position, meet in the middle along the normal
        pts[up[bad]] += np.outer((mid - pts[up[bad]]) @ n - 0.5 * floor[bad], n)
        pts[lo[bad]] += np.outer((mid - pts[lo[bad]]) @ n + 0.5 * floor[bad], n)


def close_lids(pts: np.ndarray, src: np.ndarray, closure=None) -> None:
    """In place: per eye, complete the closing by ``closure[k]`` in 0..1 (upper lid moves), then
    stop the lids at closed (upper onto lower)."""
    for k, (upper, lower, _) in enumerate(EYES):
        w = 0.0 if closure is None else float(closure[k])
        if w > 1e-3:
            n, up, lo, gap, closed = pair_gaps(pts, src, upper, lower)
            move = np.maximum(gap - closed, 0.0) * w
            pts[up] += np.outer(move, n)
        clamp_pairs(pts, src, upper, lower, mode="upper")


def limit_opening(pts: np.ndarray, src: np.ndarray, openness, usual, driver_width) -> None:
    """In place: per eye k, a driver eye narrowed to a share r = ``openness[k] / usual[k]`` < 1 of its
    usual openness (``BlinkState``) leaves the portrait's eye at most r of what relative motion shows
    while the driver's eye is at its usual (upper lid moves). ``driver_width[k]``: the driver's eye
    width in the portrait's pixels (aligned as the relative motion is).

    Relative motion is additive: it subtracts the driver's closing from the portrait's opening, so
    an eye that it shows more open than the driver's usual (a portrait with larger eyes, or a driver
    who calibrated squinting) stopped short of closing: on s0 x d12 the driver's left eye at 40 % of
    its usual opening left the portrait's at 53 % of what it shows at the driver's usual. Where
    relative motion already closes further (a portrait with smaller eyes), nothing changes, and at
    the driver's usual openness the limit is what relative motion shows."""
    for k, (upper, lower, _) in enumerate(EYES):
        o, u = float(openness[k]), float(usual[k])
        if not (np.isfinite(o) and np.isfinite(u)) or u <= 1e-6 or o >= u:
            continue
        n, up, lo, gap, _ = pair_gaps(pts, src, upper, lower)
        at_usual = gap + (u - o) * float(driver_width[k])  # the gap were the driver at its usual
        excess = gap - max(o, 0.0) / u * at_usual
        pts[up[excess > 0]] += np.outer(excess[excess > 0], n)


def clamp_lids(pts: np.ndarray, src: np.ndarray) -> None:
    close_lids(pts, src, None)


def eye_widths(pts: np.ndarray) -> np.ndarray:
    """Per eye: the distance between its corners."""
    return np.array([np.hypot(*(pts[upper[-1]] - pts[upper[0]])) for upper, _, _ in EYES])


def eye_openness(pts: np.ndarray) -> np.ndarray:
    """Per eye: mean lid gap over eye width."""
    gaps = [np.linalg.norm(pts[list(lower[2:-2])] - pts[list(upper[2:-2])], axis=1).mean() for upper, lower, _ in EYES]
    return np.array(gaps) / np.maximum(eye_widths(pts), 1e-6)


class BlinkState:
    """How closed each of the driver's eyes is, against that eye's usual openness.

    The usual openness follows the driver's openness quickly upwards and slowly downwards (blinks
    are short; a long squint slowly becomes the new normal). ``update`` returns the closure weight
    per eye in 0..1 for ``close_lids``: 0 while the driver's eye is at least ``CLOSE_START`` of its
    usual openness, 1 from ``CLOSE_FULL`` down. ``openness`` and ``usual`` (per eye) are what
    ``limit_opening`` takes.
    """

    def __init__(self, up_rate: float = 0.05, down_rate: float = 0.004):
        self.up_rate, self.down_rate = up_rate, down_rate
        self.reset()

    def reset(self) -> None:
        self.usual: np.ndarray | None = None
        self.openness = np.full(2, np.nan)  # per eye, the last driving face's (eye_openness)
        self.closure = np.zeros(2)

    def update(self, driver_pts: np.ndarray) -> np.ndarray:
        o = eye_openness(driver_pts)
        if not np.all(np.isfinite(o)):
            return self.closure
        if self.usual is None:
            self.usual = o.copy()
        rate = np.where(o > self.usual, self.up_rate, self.down_rate)
        self.usual = self.usual + rate * (o - self.usual)
        self.openness = o
        r = o / np.maximum(self.usual, 1e-6)
        self.closure = smoothstep((CLOSE_START - r) / (CLOSE_START - CLOSE_FULL))
        return self.closure


@dataclass(frozen=True)
class EyeColours:
    """What a closing eye of this portrait is painted with, worked out once per portrait."""

    skin: np.ndarray  # (2, 3) RGB float, upper-lid skin per eye
    lash: np.ndarray  # (2, 3) RGB float, lash line per eye
    src_gap: np.ndarray  # (2,) the portrait's mean lid gap (px) over the middle pairs
    margin: np.ndarray  # (2, points per lid): the visible lower lid margin below each lower-lid point (eye widths)
    src_lower: np.ndarray  # (2, points per lid, 2): the portrait's lower lids (with the corners)
    outer_sclera: tuple  # per eye: OuterSclera, or None


def _middle_gap(pts: np.ndarray, upper, lower) -> float:
    n = down_normal(pts, upper[0], upper[-1])
    return float(((pts[list(lower[2:-2])] - pts[list(upper[2:-2])]) @ n).mean())


def _saturation(rgb: np.ndarray) -> np.ndarray:
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) / np.maximum(rgb.max(axis=-1), 1.0)


def sclera_like(rgb: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Which colours (..., 3) pass for sclera next to this skin: lighter and less coloured."""
    return (rgb @ LUMA > skin @ LUMA + SCLERA_LIGHTER) & (_saturation(rgb) < SCLERA_SATURATION * _saturation(skin))


@dataclass(frozen=True)
class OuterSclera:
    """Sclera a portrait shows outside its eye landmarks, and lid skin to cover it with."""

    origin: tuple[int, int]  # (x0, y0) of the crop in the portrait
    mask: np.ndarray  # (h, w) float32 0..1
    skin: np.ndarray  # (h, w, 3) float32: the crop with the whole eye filled in from the skin around it


def outer_sclera(image: np.ndarray, contour: np.ndarray, width: float, skin: np.ndarray) -> OuterSclera | None:
    """The sclera the portrait shows outside its eye landmarks (``contour``): at a corner the
    landmarks stop short of, or under the lower lid. Sclera-like pixels within ``MARGIN_SEARCH`` eye
    widths of the contour that join up with sclera inside it (a highlight on the skin nearby does
    not), softened by a pixel; the skin to cover it with is inpainted from around the whole eye (a
    flat colour showed as a patch). None where there is none."""
    h, w = image.shape[:2]
    reach = max(2, int(np.ceil(MARGIN_SEARCH * width)))
    x0, y0 = np.maximum(np.floor(contour.min(axis=0)).astype(int) - reach, 0)
    x1, y1 = np.minimum(np.ceil(contour.max(axis=0)).astype(int) + reach + 1, [w, h])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(inside, [np.round(contour - [x0, y0]).astype(np.int32)], 1)
    near = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    white = sclera_like(image[y0:y1, x0:x1], skin) & (near > 0)
    _, labels = cv2.connectedComponents(white.astype(np.uint8), connectivity=8)
    joined = np.unique(labels[white & (inside > 0)])
    outside = np.isin(labels, joined[joined > 0]) & (inside == 0)
    if not outside.any():
        return None
    grown = cv2.dilate(outside.astype(np.uint8), np.ones((3, 3), np.uint8))
    crop = np.clip(image[y0:y1, x0:x1], 0, 255).astype(np.uint8)
    filled = cv2.inpaint(crop, np.maximum(grown, cv2.dilate(inside, np.ones((3, 3), np.uint8))), 3, cv2.INPAINT_TELEA)
    return OuterSclera((int(x0), int(y0)), cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 0.7),
                       filled.astype(np.float32))


def lower_margin(image: np.ndarray, pts: np.ndarray, lower, n: np.ndarray, width: float,
                 skin: np.ndarray) -> np.ndarray:
    """Per lower-lid point: how far below it (eye widths) the visible lid margin lies: the end of the
    run of sclera-like samples starting at the landmark (``MARGIN_SEARCH``); 0 where there is none.
    ``image``: the portrait (RGB float32, lightly blurred); ``skin``: the skin under the eye (RGB)."""
    f = np.linspace(0.0, MARGIN_SEARCH, MARGIN_STEPS)
    q = (pts[list(lower)][:, None, :] + f[None, :, None] * width * n).astype(np.float32)
    rgb = cv2.remap(image, q[..., 0], q[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    run = np.cumprod(sclera_like(rgb, skin), axis=1)  # sclera from the landmark down, unbroken
    depth = f[np.maximum(run.sum(axis=1) - 1, 0)] * (run[:, 0] > 0)
    padded = np.pad(depth, 1, mode="edge")
    return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]


def colours_from(image: np.ndarray, pts: np.ndarray) -> EyeColours:
    """Eyelid skin (above the upper lid, below the crease) and lash colours of the portrait, where
    its visible lower lid margins lie (``lower_margin``) and the sclera it shows outside its eye
    landmarks (``outer_sclera``)."""
    h, w = image.shape[:2]
    img = image.astype(np.float64)
    blurred = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.7)
    skins, lashes, gaps, margins, outer = [], [], [], [], []
    for upper, lower, _ in EYES:
        n = down_normal(pts, upper[0], upper[-1])
        width = np.hypot(*(pts[upper[-1]] - pts[upper[0]]))
        up = pts[list(upper[2:-2])]
        samples, dark = [], []
        for f in np.linspace(0.12, 0.22, 4):  # a band on the upper lid, above the lashes
            q = np.round(up - f * width * n).astype(int)
            q = np.clip(q, [0, 0], [w - 1, h - 1])
            samples.append(img[q[:, 1], q[:, 0]])
        for f in np.linspace(-0.02, 0.04, 4):  # the lid margin itself: lashes / liner
            q = np.round(pts[list(upper[1:-1])] - f * width * n).astype(int)
            q = np.clip(q, [0, 0], [w - 1, h - 1])
            dark.append(img[q[:, 1], q[:, 0]])
        below = []
        lo_pts = pts[list(lower[2:-2])]
        for f in np.linspace(0.12, 0.2, 3):  # under the lower lid: lit skin, no crease shadow
            q = np.clip(np.round(lo_pts + f * width * n).astype(int), [0, 0], [w - 1, h - 1])
            below.append(img[q[:, 1], q[:, 0]])
        # a closed lid catches light like the skin around the eye: the upper-lid band is often in
        # the crease's shadow, so the two are averaged
        below_skin = np.median(np.concatenate(below), axis=0)
        skin = 0.5 * np.median(np.concatenate(samples), axis=0) + 0.5 * below_skin
        dark = np.concatenate(dark)
        lum = dark.mean(axis=1)
        darkest = dark[lum <= np.percentile(lum, 30)].mean(axis=0)
        lashes.append(np.minimum(darkest, 0.5 * skin))
        skins.append(skin)
        gaps.append(max(_middle_gap(pts, upper, lower), 1e-3))
        margins.append(lower_margin(blurred, pts, lower, n, width, below_skin))
        outer.append(outer_sclera(blurred, pts[list(upper) + list(lower[::-1][1:-1])], width, below_skin))
    return EyeColours(np.array(skins), np.array(lashes), np.array(gaps), np.array(margins),
                      np.array([pts[list(lower)] for _, lower, _ in EYES]), tuple(outer))


def closedness(pts: np.ndarray, colours: EyeColours) -> np.ndarray:
    """Per eye: 1 - target lid gap / the portrait's own (0 = as open as the portrait, 1 = shut)."""
    return np.array([1.0 - max(_middle_gap(pts, u, lo), 0.0) / g
                     for (u, lo, _), g in zip(EYES, colours.src_gap)])


def paint_closed(out: np.ndarray, pts: np.ndarray, colours: EyeColours, src_mapped: np.ndarray | None = None) -> None:
    """In place: fade each closing eye to eyelid skin and draw its lash line.

    ``src_mapped``: the portrait's landmarks moved by the head's rigid motion (where the lids would
    be without the expression). The band the upper lid swept down over (between there and the
    target upper lid) is faded to lid skin, more towards the lid line: stretched lash and lid-margin
    texture would otherwise smear a dark blob over the closed eye.
    """
    fade = smoothstep((closedness(pts, colours) - FADE_START) / (FADE_FULL - FADE_START))
    h, w = out.shape[:2]
    shift = 4
    scale = float(1 << shift)
    for k, (upper, lower, _) in enumerate(EYES):
        a = float(fade[k])
        if a < 0.01:
            continue
        up, lo = pts[list(upper)], pts[list(lower)]
        n = down_normal(pts, upper[0], upper[-1])
        width = np.hypot(*(up[-1] - up[0]))
        thick = max(1.0, LASH_WIDTH * width)
        swept = np.zeros(len(upper))
        if src_mapped is not None:
            swept = np.maximum((up - src_mapped[list(upper)]) @ n, 0.0)
        top = up - swept[:, None] * n
        # the closed lid comes down to the visible lower margin, covering any sclera above it
        margin = colours.margin[k] * width
        lo_landmarks = lo
        lo = lo + margin[:, None] * n
        poly = np.concatenate([up, lo[::-1][1:-1]])
        allp = np.concatenate([poly, top])
        outer = colours.outer_sclera[k]
        pad = thick + 2 + (MARGIN_SEARCH * width + 2 if outer is not None else 0)  # + the sclera beyond
        x0, y0 = np.floor(allp.min(axis=0) - pad).astype(int)
        x1, y1 = np.ceil(allp.max(axis=0) + pad + 1).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        org = np.array([x0, y0])
        size = (y1 - y0, x1 - x0)

        def fill(polygon):
            m = np.zeros(size, np.uint8)
            cv2.fillPoly(m, [np.round((polygon - org) * scale).astype(np.int32)], 255, cv2.LINE_AA, shift)
            return m.astype(np.float32) * (1.0 / 255.0)

        skin_mask = fill(poly)
        if outer is not None:
            # the sclera beyond the landmarks goes under inpainted skin, carried along with the lower
            # lid (which hardly moves in a blink)
            m = as_matrix(*fit_similarity(colours.src_lower[k], lo_landmarks))
            m[:, 2] += m[:, :2] @ outer.origin - [x0, y0]
            cover = (cv2.warpAffine(outer.mask, m, (size[1], size[0])) * a)[..., None]
            outer_skin = cv2.warpAffine(outer.skin, m, (size[1], size[0]), borderMode=cv2.BORDER_REPLICATE)
        if np.any(swept > 0.5):
            # nested bands from the lid line upwards: opaque at the lid, fading out at the top
            for frac in (0.35, 0.65, 1.0):
                band = np.concatenate([up, (up - frac * swept[:, None] * n)[::-1]])
                skin_mask = np.maximum(skin_mask, fill(band) * (1.15 - frac))
        # centred a little below the closed lid line, at the visible margin (its lid point's pair);
        # thickest in the middle, tapering towards the corners as real lashes do
        tangent, _ = _axis(pts, upper[0], upper[-1])
        along = np.clip((up - up[0]) @ tangent / max(width, 1e-9), 0.0, 1.0)  # 0 a corner, 1 the other
        half = 0.5 * thick * (LASH_TAPER + (1 - LASH_TAPER) * np.sin(np.pi * along))
        centre = up + (margin + 0.5 * thick)[:, None] * n
        m_lash = (fill(np.concatenate([centre - half[:, None] * n, (centre + half[:, None] * n)[::-1]]))
                  * (0.8 * a))[..., None]
        m_in = (np.minimum(skin_mask, 1.0) * a)[..., None]
        crop = out[y0:y1, x0:x1].astype(np.float32)
        if outer is not None:
            crop = crop * (1 - cover) + outer_skin * cover
        crop = crop * (1 - m_in) + colours.skin[k].astype(np.float32) * m_in
        crop = crop * (1 - m_lash) + colours.lash[k].astype(np.float32) * m_lash
        out[y0:y1, x0:x1] = np.clip(crop + 0.5, 0, 255).astype(np.uint8)


def eyeball_turn(pos: np.ndarray, src: np.ndarray, eye: int, offset: np.ndarray) -> np.ndarray:
    """(K, 2): how far to move the portrait positions ``pos`` (K, 2) that eye ``eye``'s interior
    samples, for a gaze that shifts its samples by ``offset`` (portrait px), as an eyeball turns.

    Across the eye's axis the shift is whole. Along it, the iris moves by the whole shift and the
    sclera on either side stretches or squeezes between the iris and the eye's corners, which stay:
    shifted whole, the samples at the trailing corner came from beyond it, the lid rim drawn into
    the sclera as a red-brown smear (s7 x d6). The iris is squeezed on its leading side, as a turned
    eyeball's is."""
    upper, _, iris = EYES[eye]
    a, b = src[upper[0]], src[upper[-1]]
    length = max(float(np.hypot(*(b - a))), 1e-6)
    axis = (b - a) / length
    along = float(offset @ axis)
    u = (pos - a) @ axis  # 0 at one corner, length at the other
    # where the iris is drawn: its samples move by -along (a sample shifted by +along draws the
    # iris that far the other way)
    peak = float(np.clip((src[iris] - a) @ axis - along, 0.1 * length, 0.9 * length))
    tent = np.where(u <= peak, u / peak, (length - u) / (length - peak))
    return np.outer(np.clip(tent, 0.0, 1.0) * along, axis) + (offset - along * axis)


def gaze_offsets(pts: np.ndarray, src: np.ndarray, max_fraction: float = 0.18) -> np.ndarray:
    """(2, 2): per eye, how far the target iris moved relative to its own eye contour (target px),
    sideways or up, never down.

    Shifting the eye's interior down samples what lies above the iris in the portrait: the upper
    lid's lash line, nearly always over the iris's top. It showed as a dark smear in the eye (s9 x
    d10, whose iris Face Mesh reads 0.1 of an eye width lower as she opens her eyes wide), and the
    tracker read those eyes less open: eye r on s9 x d6 0.85 -> 0.90 without it. A gaze down loses
    little: the upper lid follows the eye down, and the motion moves the lid. Up, the interior
    samples the sclera under the iris, which is there to show."""
    out = np.zeros((2, 2))
    if pts.shape[0] < 478:
        return out
    for k, (upper, lower, iris) in enumerate(EYES):
        contour = list(upper) + list(lower[1:-1])
        o = (pts[iris] - src[iris]) - (pts[contour] - src[contour]).mean(axis=0)
        down = down_normal(pts, upper[0], upper[-1])
        o = o - max(float(o @ down), 0.0) * down
        width = np.hypot(*(pts[upper[-1]] - pts[upper[0]]))
        limit = max_fraction * width
        mag = np.hypot(*o)
        if mag > limit:
            o *= limit / mag
        out[k] = o
    return out
