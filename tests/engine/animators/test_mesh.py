"""Mesh animator: exact identity, still background, real-media behaviour (re-tracked output)."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.animators import create_animator
from engine.animators.mesh import MeshAnimator
from engine.animators.mesh import mouth as mouth_mod
from engine.animators.mesh.triangulation import (MAX_SPREAD, MAX_STRAIN, NUM_MESH_POINTS, RING, RING_SCALES,
                                                 RING_WEIGHTS, AnchorRings, face_triangles, oval_order,
                                                 topology)
from engine.animators.mesh.warp import rasterize
from engine.capture import Frame, VideoFileSource
from engine.metrics import mouth_aspect_ratio
from engine.motion import Keypoints, MotionSettings
from engine.pipeline import Pipeline, PipelineSettings
from engine.portrait import load_portrait
from engine.tracking import FaceLandmarks, FaceTracker


@pytest.fixture(scope="module")
def s42(media):
    return load_portrait(media / "sources" / "s42.jpg")


@pytest.fixture(scope="module")
def s9(media):
    return load_portrait(media / "sources" / "s9.jpg")


def test_topology_is_a_manifold_disk_with_holes_filled():
    tris = face_triangles()
    # Face Mesh's tesselation: 468 vertices, a disk with 3 holes (eyes, mouth): V - E + F = -2.
    edges = {tuple(sorted(e)) for t in tris for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))}
    assert NUM_MESH_POINTS - len(edges) + len(tris) == -2
    topo = topology()
    # with both eyes and the mouth filled, every mesh edge but the face oval is shared by 2 triangles
    count = {}
    for t in topo.triangles:
        for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2])):
            e = tuple(sorted(e))
            count[e] = count.get(e, 0) + 1
    assert max(count.values()) == 2
    assert topo.triangles.max() == NUM_MESH_POINTS + topo.num_ring_points - 1


def test_identity_motion_returns_the_source_exactly(s42, s9):
    for portrait in (s42, s9):
        animator = MeshAnimator()
        kp = animator.set_source(portrait)
        out = animator.render(kp)
        assert out.shape == portrait.image.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - portrait.image).max() <= 1


def test_only_the_mouth_moves_when_only_the_mouth_moves(s9):
    animator = MeshAnimator()
    kp = animator.set_source(s9)
    value = kp.value.copy()
    lower = [14, 87, 178, 88, 95, 317, 402, 318, 324, 17, 84, 181, 91, 146, 314, 405, 321, 375]
    value[lower, 1] += 6.0
    out = animator.render(Keypoints(value))
    diff = np.abs(out.astype(int) - s9.image).max(axis=2)
    ys, xs = np.nonzero(diff > 1)
    mouth_c = s9.landmarks.xy[13]
    iod = np.linalg.norm(s9.landmarks.xy[33] - s9.landmarks.xy[263])
    assert len(ys) > 100
    # everything that changed lies around the mouth; eyes, forehead and background are untouched
    dist = np.hypot(xs - mouth_c[0], ys - mouth_c[1])
    assert dist.max() < 1.2 * iod


def test_head_motion_leaves_the_background_still(s9):
    animator = MeshAnimator()
    kp = animator.set_source(s9)
    out = animator.render(Keypoints(kp.value + np.float32([12.0, -6.0])))
    diff = np.abs(out.astype(int) - s9.image).max(axis=2)
    x0, y0, x1, y1 = animator._roi
    outside = np.ones_like(diff, bool)
    outside[y0:y1, x0:x1] = False
    assert diff[outside].max() == 0
    # ... while the face itself moved with the head: the nose tip region now matches the shifted source
    nx, ny = np.round(s9.landmarks.xy[4]).astype(int)
    patch_out = out[ny - 6 - 6:ny + 6 - 6, nx - 6 + 12:nx + 6 + 12].astype(int)
    patch_src = s9.image[ny - 6:ny + 6, nx - 6:nx + 6].astype(int)
    assert np.abs(patch_out - patch_src).mean() < 4
    assert np.abs(out[ny - 6:ny + 6, nx - 6:nx + 6].astype(int) - patch_src).mean() > 8  # it did move


def test_a_head_shifted_far_moves_whole_not_cut_off_or_folded(media):
    """A driver who leans half a face's width sideways (d12 does): the portrait's whole face moves
    with him. The anchor rings used to stay where they were at rest, so the face was cut off by a
    straight edge where it crossed the fixed ring, and the hair between the rings folded over."""
    s10 = load_portrait(media / "sources" / "s10.jpg")  # three-quarter view: little room on the left
    animator = MeshAnimator()
    kp = animator.set_source(s10)
    oval = s10.landmarks.xy[list(oval_order())]
    shift = np.array([-0.5 * np.ptp(oval[:, 0]), 0.0]).round()  # 152 px to the left
    out = animator.render(Keypoints(kp.value + shift.astype(np.float32)))
    face = np.zeros(s10.image.shape[:2], np.uint8)
    cv2.fillPoly(face, [np.round(oval + shift).astype(np.int32)], 1)
    face = cv2.erode(face, np.ones((7, 7), np.uint8)) > 0
    sx, sy = shift.astype(int)
    expected = np.roll(s10.image, (sy, sx), axis=(0, 1))  # the portrait moved by the shift
    assert np.abs(out[face].astype(int) - expected[face]).mean() < 1.0
    # the rings spread out instead of folding: every ring triangle keeps its orientation
    src, dst = animator._rings.for_motion(np.eye(2), shift)
    face_pts = kp.value[:NUM_MESH_POINTS].astype(np.float64)
    topo = topology()
    ring = topo.triangles[topo.kinds == RING]

    def signed_areas(points):
        tri = points[ring]
        return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])

    before = signed_areas(np.concatenate([face_pts, src]))
    after = signed_areas(np.concatenate([face_pts + shift, dst]))
    kept = np.abs(before) > 1.0  # rings squeezed onto the image's border have no orientation to keep
    assert kept.sum() > 0.8 * len(ring)
    assert np.array_equal(np.sign(before[kept]), np.sign(after[kept]))


def test_what_the_head_takes_towards_the_border_leaves_the_picture_and_the_border_never_moves_in(s42):
    """s42's neck and hair reach the image's bottom. A head that moves down takes them out past it
    (anchors on the border used to stay put, and what lay between piled up against it); a head that
    moves up takes nothing in from the border, which would show what lies off the picture."""
    animator = MeshAnimator()
    kp = animator.set_source(s42)
    w, h = s42.size
    step = 0.3 * np.ptp(s42.landmarks.xy[list(oval_order()), 0])
    topo = topology()
    ring = topo.triangles[topo.kinds == RING]
    face_pts = kp.value[:NUM_MESH_POINTS].astype(np.float64)
    area = lambda t: np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])  # noqa: E731
    for shift in (np.array([0.0, step]), np.array([0.0, -step])):
        src, dst = animator._rings.for_motion(np.eye(2), shift)
        on_bottom = src[:, 1] >= h - 1
        moving = on_bottom & (np.repeat(RING_WEIGHTS, len(oval_order())) > 0)
        assert moving.sum() >= 3
        if shift[1] > 0:
            assert dst[moving, 1].min() > h - 1 + 0.3 * step  # out, past the border
        else:
            assert np.array_equal(dst[on_bottom], src[on_bottom])  # still
            out = animator.render(Keypoints(kp.value + shift.astype(np.float32)))
            assert np.array_equal(out[-1], s42.image[-1])  # the border shows the portrait's own row
        before = np.concatenate([face_pts, src])[ring]
        after = np.concatenate([face_pts + shift, dst])[ring]
        kept = np.abs(area(before)) > 1.0
        assert np.array_equal(np.sign(area(before)[kept]), np.sign(area(after)[kept]))  # no pile-up, no fold


def test_rings_spread_for_a_turn_and_a_shift_together_keep_the_strain_bounded(s9):
    """A head tilted 15 degrees that also moves sideways: the turn's own motion adds to the shift's,
    so the hair between the rings was sheared sideways ("windblown", d11 on s2) although the shift
    alone needed no spread. Wherever the rings may still spread, no gap strains more than MAX_STRAIN."""
    rings = AnchorRings(s9.landmarks.xy, s9.size)
    r = np.median(rings.radius)
    u = rings.oval - rings.centre
    scales, weights = np.array((1.0,) + RING_SCALES), np.array((1.0,) + RING_WEIGHTS)

    def strain(a, t, k):
        out = []
        for i in range(len(RING_SCALES)):
            s0, s1 = (1 + (scales[j] - 1) * k for j in (i, i + 1))
            p0, p1 = rings.centre + s0[:, None] * u, rings.centre + s1[:, None] * u
            d0, d1 = (w * (p @ a.T + t - p) for w, p in ((weights[i], p0), (weights[i + 1], p1)))
            out.append(np.linalg.norm(d1 - d0, axis=1) / np.linalg.norm(p1 - p0, axis=1))
        return np.max(out, axis=0)

    checked = 0
    for degrees, scale, shift in ((15, 1.0, 0.3), (-12, 1.1, 0.25), (20, 0.95, 0.0), (8, 1.0, 0.6)):
        c, s_ = np.cos(np.radians(degrees)) * scale, np.sin(np.radians(degrees)) * scale
        a = np.array([[c, -s_], [s_, c]])
        t = rings.centre - rings.centre @ a.T + np.array([shift * r, 0.2 * shift * r])
        k = rings.spread(a, t)
        free = k < MAX_SPREAD
        assert np.all(strain(a, t, k)[free] <= MAX_STRAIN + 1e-9)
        checked += free.sum()
    assert checked > 100
    # the first case needs the turn counted: spread for its shift alone, the strain stays above the bound
    c, s_ = np.cos(np.radians(15)), np.sin(np.radians(15))
    a = np.array([[c, -s_], [s_, c]])
    t = rings.centre - rings.centre @ a.T + np.array([0.3 * r, 0.06 * r])
    shift_only = rings.spread(np.eye(2), t + rings.centre @ a.T - rings.centre)
    assert strain(a, t, shift_only).max() > 0.6


def test_rings_spread_only_as_far_as_the_shift_needs(media, s9):
    """Small motion keeps the rings where they were (nothing changes for everyday use); a farther
    shift spreads them continuously, never by a jump a viewer would see."""
    rings = AnchorRings(s9.landmarks.xy, s9.size)
    rest = rings.points()[0]
    assert np.array_equal(rings.points(rings.spread(np.eye(2), np.array([20.0, -10.0])))[0], rest)
    shifts = np.linspace(0, 150, 301)[:, None] * np.array([[1.0, 0.3]])
    spreads = np.array([rings.spread(np.eye(2), d) for d in shifts])
    assert spreads.min() == 1.0 and spreads.max() > 2.0
    assert np.all(np.diff(spreads, axis=0) >= 0)
    positions = np.array([rings.points(k)[0] for k in spreads])
    assert np.abs(np.diff(positions, axis=0)).max() < 2.0  # px per 0.5 px of shift


def test_teeth_take_the_portraits_tint(media, s9):
    """Teeth lit like the face around them: ivory on the Mona Lisa's yellowed varnish, neutral grey
    on a black-and-white photo (s2), never brighter than white."""
    warm = mouth_mod.palette_from(s9.image, s9.landmarks.xy.astype(float)).teeth
    s2 = load_portrait(media / "sources" / "s2.jpg")
    grey = mouth_mod.palette_from(s2.image, s2.landmarks.xy.astype(float)).teeth
    assert warm[0] - warm[2] > 40 and warm.max() <= 255
    assert np.ptp(grey) < 3 and grey.min() > 150


def test_wider_mouth_draws_a_dark_cavity_not_stretched_lips(s42):
    animator = MeshAnimator()
    kp = animator.set_source(s42)
    pts = kp.value.copy()
    width = np.linalg.norm(pts[78] - pts[308])
    # open the jaw: inner lower lip, outer lower lip and chin points go down
    lower = sorted({i for column in mouth_mod.LOWER_FACE_COLUMNS for i in column})
    pts[lower, 1] += 0.45 * width
    out = animator.render(Keypoints(pts))
    inner = np.round(0.5 * (pts[13] + pts[14])).astype(int)
    cavity = out[inner[1] - 2:inner[1] + 3, inner[0] - 3:inner[0] + 4].astype(float).mean()
    lips = s42.image[np.round(pts[[0, 17], 1]).astype(int), np.round(pts[[0, 17], 0]).astype(int)].mean()
    assert cavity < 0.5 * lips
    # shaded like a mouth lit from the front, not a flat hole: upper teeth, a dark throat, a tongue
    target = animator.target_points(Keypoints(pts))

    def down_the_middle(v):  # brightness at fraction v of the way from the upper inner lip to the lower
        p = np.round(target[13] + v * (target[14] - target[13])).astype(int)
        return out[p[1] - 1:p[1] + 2, p[0] - 1:p[0] + 2].astype(float).mean()

    teeth, tongue = down_the_middle(0.1), down_the_middle(0.8)
    throat = min(down_the_middle(v) for v in np.linspace(0.3, 0.7, 9))  # the darkest, deep inside
    assert teeth > 2 * throat
    assert tongue > 1.2 * throat
    with FaceTracker(still=True) as tracker:
        face = tracker.track(out)
    assert isinstance(face, FaceLandmarks)
    assert mouth_aspect_ratio(face.points) > mouth_aspect_ratio(s42.landmarks.points) + 0.15


def test_at_twice_its_own_opening_none_of_the_portraits_mouth_shows_through(s42):
    """s42's lips are parted over her teeth. Opened to twice that gap, her own opening is stretched
    to twice its height; the drawn interior must cover it whole, whatever it holds: half of it showed
    through (grey fog over the cavity while talking, its teeth as vertical streaks on a yawn)."""
    pts = MeshAnimator().set_source(s42).value.astype(float)
    palette = mouth_mod.palette_from(s42.image, pts)
    own = mouth_mod.opening(pts)
    assert own > 4  # parted lips
    target = pts.copy()
    target[mouth_mod.LOWER[1:-1], 1] += own  # the lower inner lip down by the gap it has
    assert abs(mouth_mod.opening(target) - 2 * own) < 1.0
    h, w = s42.image.shape[:2]
    plain = np.full((h, w, 3), 128, np.uint8)
    streaks = np.repeat(np.where((np.arange(w) // 3) % 2, 255, 0).astype(np.uint8)[None, :, None], h, 0)
    streaks = np.ascontiguousarray(np.repeat(streaks, 3, 2))
    for behind in (plain, streaks):
        mouth_mod.draw_interior(behind, target, own, palette)
    inside = np.zeros((h, w), np.uint8)
    poly = np.concatenate([target[mouth_mod.UPPER], target[mouth_mod.LOWER[::-1][1:-1]]])
    cv2.fillPoly(inside, [np.round(poly).astype(np.int32)], 1)
    inside = cv2.erode(inside, np.ones((7, 7), np.uint8)) > 0  # away from the lips' soft shadow
    assert inside.sum() > 100
    assert np.abs(plain.astype(int) - streaks.astype(int)).max(axis=2)[inside].max() <= 2


ASTRONAUT = Path(__file__).resolve().parents[3] / "assets" / "avatars" / "astronaut.jpg"


def test_which_portraits_show_their_teeth(media, s42):
    """The astronaut smiles with her teeth showing; s42's and s10's parted lips show a dark opening,
    s0's mouth is closed."""
    def shows(portrait):
        return mouth_mod.shows_teeth(portrait.image, portrait.landmarks.xy.astype(float))

    assert shows(load_portrait(ASTRONAUT))
    assert not shows(s42) and not shows(load_portrait(media / "sources" / "s10.jpg"))
    assert not shows(load_portrait(media / "sources" / "s0.jpg"))


def test_only_lips_parted_over_something_bright_show_teeth(s9):
    """The rule itself, on the Mona Lisa's closed mouth at three times her size (a large portrait):
    lips parted by a tenth of the mouth's width over white show teeth, over the painting's own dark
    do not; a bright line between lips parted by 2 % of the width (3.5 px here: a lit lip line, a
    landmark's error) is not taken for teeth."""
    from engine.animators.mesh.eyes import down_normal

    big = s9.resized((3 * s9.size[0], 3 * s9.size[1]))
    pts = big.landmarks.xy.astype(np.float64)
    n = down_normal(pts, mouth_mod.INNER_LIPS_UPPER[0], mouth_mod.INNER_LIPS_UPPER[-1])
    width = mouth_mod.mouth_width(pts)

    def parted(share, fill):
        p, image = pts.copy(), big.image.copy()
        p[mouth_mod.LOWER[1:-1]] += share * width * n
        poly = np.concatenate([p[mouth_mod.UPPER], p[mouth_mod.LOWER[::-1][1:-1]]])
        if fill is not None:
            cv2.fillPoly(image, [np.round(poly).astype(np.int32)], fill)
        return mouth_mod.shows_teeth(image, p)

    assert parted(0.1, (235, 230, 215))
    assert not parted(0.1, (40, 20, 15)) and not parted(0.1, None)
    assert not parted(0.02, (235, 230, 215))


def test_a_smile_that_shows_its_teeth_keeps_them_as_the_mouth_opens():
    """Opened to twice her own opening (the jaw dropped by it), the astronaut's own teeth stay: the
    upper ones under the upper lip, the lower ones over the lower lip, as painted, and the gap that
    opens between them is the drawn cavity. The previous build stretched her opening and drew grey
    teeth over it (along the lips, her teeth's pattern correlated 0.68 and 0.48 with the painted one;
    now 0.99)."""
    from engine.animators.mesh.eyes import down_normal

    portrait = load_portrait(ASTRONAUT)
    animator = MeshAnimator()
    src = animator.set_source(portrait).value.astype(np.float64)
    n = down_normal(src, mouth_mod.INNER_LIPS_UPPER[0], mouth_mod.INNER_LIPS_UPPER[-1])
    own = float(np.mean((src[mouth_mod.LOWER[mouth_mod.MIDDLE]] - src[mouth_mod.UPPER[mouth_mod.MIDDLE]]) @ n))
    assert own > 5
    target = src.copy()
    target[sorted({i for column in mouth_mod.LOWER_FACE_COLUMNS for i in column})] += own * n
    out = animator.render(Keypoints(target.astype(np.float32)))

    def along(image, lip, depth):
        """Brightness along the lip's middle, ``depth`` px below it (negative: above)."""
        curve = mouth_mod.smooth_curve(lip[2:-2], 8) + depth * n
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return cv2.remap(grey, *(c.astype(np.float32)[None] for c in curve.T), cv2.INTER_LINEAR)[0]

    for lip, depth in ((mouth_mod.UPPER, 0.2 * own), (mouth_mod.LOWER, -0.2 * own)):
        painted, drawn = along(portrait.image, src[lip], depth), along(out, target[lip], depth)
        assert painted.mean() > 150  # teeth
        assert np.corrcoef(painted, drawn)[0, 1] > 0.9 and np.abs(painted - drawn).mean() < 10
    assert along(out, target[mouth_mod.UPPER], own).mean() < 60  # the middle of the opening: the cavity


def _wide_open_mouth(portrait):
    """The portrait with its jaw dropped by 0.45 of its mouth's width: the output's brightness (h, w),
    the target landmarks, the mouth's width."""
    animator = MeshAnimator()
    pts = animator.set_source(portrait).value.copy()
    width = np.linalg.norm(pts[78] - pts[308])
    pts[sorted({i for column in mouth_mod.LOWER_FACE_COLUMNS for i in column}), 1] += 0.45 * width
    out = animator.render(Keypoints(pts)).astype(float).mean(axis=2)
    return out, animator.target_points(Keypoints(pts)), width


def test_drawn_teeth_show_the_gaps_between_them(s42):
    """Across the upper teeth, near their biting edge, the midline gap is darker than the central
    incisors beside it: one even band read as a mouthguard."""
    out, t, width = _wide_open_mouth(s42)
    left, right = t[78], t[308]
    tangent = (right - left) / np.linalg.norm(right - left)
    normal = np.array([-tangent[1], tangent[0]]) * (1 if tangent[0] > 0 else -1)
    half = 0.5 * np.linalg.norm(right - left)
    upper = t[list(mouth_mod.UPPER)]

    def lip_at(u):  # the upper inner lip's point at u across the mouth (-1 a corner, 1 the other)
        along = (upper - 0.5 * (left + right)) @ tangent / half
        return np.array([np.interp(u, along, upper[:, k]) for k in (0, 1)])

    def sample(p):
        x, y = np.round(p).astype(int)
        return out[y, x]

    throat = sample(0.5 * (t[13] + t[14]))
    bright = throat + 0.5 * (sample(lip_at(0.1) + 2 * normal) - throat)
    tooth = next(k for k in range(1, int(0.4 * width)) if sample(lip_at(0.1) + k * normal) < bright)
    assert tooth >= 4  # the teeth are there, below the upper lip
    row = {u: sample(lip_at(u) + 0.75 * tooth * normal) for u in np.linspace(-0.3, 0.3, 121)}
    gap = min(v for u, v in row.items() if abs(u) <= 0.02)
    incisors = np.median([v for u, v in row.items() if 0.08 <= abs(u) <= 0.25])
    assert gap < 0.9 * incisors, (gap, incisors)


def test_the_drawn_mouth_follows_the_lips_curve_not_the_landmarks_polygon():
    """A large open mouth (a 2048 px portrait: s2 at full size) drawn as the landmarks' polygon showed
    its corners: a faceted cavity and teeth. The interior follows the smooth curve through them: a
    round lower lip of radius 150 px with landmarks every 18 degrees leaves 1.85 px between its chords
    and the circle, and the interior now reaches into that sliver."""
    from engine.animators.mesh.mouth import MouthPalette, draw_interior, smooth_curve

    centre, radius = np.array([300.0, 200.0]), 150.0
    theta = np.linspace(0.0, np.pi, len(mouth_mod.UPPER))
    pts = np.zeros((478, 2))
    pts[mouth_mod.LOWER] = centre + radius * np.stack([-np.cos(theta), np.sin(theta)], 1)  # a half circle
    pts[mouth_mod.UPPER] = centre + radius * np.stack([-np.cos(theta), -0.3 * np.sin(theta)], 1)
    # the curve through the landmarks is the circle within a tenth of a pixel (its end segments, at
    # the corners, are continued straight: within a pixel and a half)
    curve = smooth_curve(pts[mouth_mod.LOWER], 8)
    np.testing.assert_allclose(curve[::8], pts[mouth_mod.LOWER])
    np.testing.assert_allclose(np.linalg.norm(curve[8:-8] - centre, axis=1), radius, atol=0.1)
    np.testing.assert_allclose(np.linalg.norm(curve - centre, axis=1), radius, atol=1.5)
    out = np.full((450, 600, 3), 128, np.uint8)
    black = np.zeros(3)  # cavity, teeth and tongue alike: what is drawn shows as coverage alone
    draw_interior(out, pts, 5.0, MouthPalette(cavity=black, teeth=black, tongue=black))
    coverage = 128 - out[..., 0].astype(int)  # 0 .. 128

    def along(d, angles):  # coverage d px inside the circle
        at = np.round(centre + (radius - d) * np.stack([-np.cos(angles), np.sin(angles)], 1)).astype(int)
        return coverage[at[:, 1], at[:, 0]]

    mid = (theta[1:] + theta[:-1]) / 2  # halfway between landmarks: the chords are 1.85 px inside
    assert np.all(along(1.0, mid) >= 64), along(1.0, mid)  # the polygon: 1-48
    assert np.all(along(3.0, theta[1:-1]) >= 100)  # well inside: covered, as before
    assert np.all(along(-1.5, mid) == 0)  # nothing outside the lips


def test_the_teeth_end_before_the_corners_of_the_mouth(s42):
    """Seen from the front, the teeth turn away before the corners and the cheeks' shadow shows
    there. A band of teeth filling the narrowing corners drew a fang on each side."""
    out, t, _ = _wide_open_mouth(s42)
    upper, lower = t[list(mouth_mod.UPPER)], t[list(mouth_mod.LOWER)]
    left, right = upper[0], upper[-1]
    tangent = (right - left) / np.linalg.norm(right - left)
    half = 0.5 * np.linalg.norm(right - left)

    def inside_at(u, v):  # v of the way from the upper inner lip down to the lower, at u across
        def lip(points):
            along = (points - 0.5 * (left + right)) @ tangent / half
            return np.array([np.interp(u, along, points[:, k]) for k in (0, 1)])
        x, y = np.round(lip(upper) + v * (lip(lower) - lip(upper))).astype(int)
        return out[y - 1:y + 2, x - 1:x + 2].mean()

    throat = inside_at(0.0, 0.5)
    teeth = np.mean([inside_at(u, 0.15) for u in (-0.5, 0.5)])
    assert teeth > throat + 60  # the teeth are there, away from the corners
    for u in (-0.85, 0.85):  # just under the upper lip, near a corner
        corner = max(inside_at(u, v) for v in (0.05, 0.1, 0.15))
        assert corner < throat + 0.3 * (teeth - throat), (u, corner)  # the previous build: 96 of 165


def test_follows_real_driver_blinks_mouth_and_head(media, s42):
    from engine.evaluation import evaluate

    r = evaluate(media / "sources" / "s42.jpg", media / "driving" / "d3.mp4", max_frames=60, portrait=s42)
    assert r.output_faces == r.frames == 60
    assert r.eye_corr >= 0.85 and 0.6 <= r.eye_amplitude <= 1.4  # d3: a wink and a squint in 60 frames
    assert r.mouth_corr >= 0.85 and 0.6 <= r.mouth_amplitude <= 1.4
    assert "yaw" in r.moving_axes and r.pose_corr["yaw"] >= 0.9


def test_absolute_mode_keeps_the_face_where_the_portrait_has_it(media, s42):
    settings = PipelineSettings(motion=MotionSettings(relative=False))
    pipeline = Pipeline(create_animator("mesh"), s42, settings)
    src_c = s42.landmarks.xy.mean(axis=0)
    iod = np.linalg.norm(s42.landmarks.xy[33] - s42.landmarks.xy[263])
    with FaceTracker(still=True) as tracker:
        for i, frame in enumerate(VideoFileSource(media / "driving" / "d0.mp4", max_frames=30)):
            res = pipeline.process(Frame(frame.image, i / 25, i))
            if i % 10 == 9:
                face = tracker.track(res.animated)
                assert isinstance(face, FaceLandmarks)
                assert np.linalg.norm(face.xy.mean(axis=0) - src_c) < 0.5 * iod
    pipeline.close()


def test_odd_landmark_layouts_do_not_crash(media):
    dog = load_portrait(media / "non-faces" / "dog.jpg")  # Face Mesh finds a "face" on the dog
    animator = MeshAnimator()
    kp = animator.set_source(dog)
    assert np.abs(animator.render(kp).astype(int) - dog.image).max() <= 1
    rng = np.random.default_rng(0)
    for scale in (2.0, 30.0, 300.0):
        out = animator.render(Keypoints(kp.value + rng.normal(0, scale, kp.value.shape).astype(np.float32)))
        assert out.shape == dog.image.shape and out.dtype == np.uint8
    # collapsed, non-finite and out-of-image targets
    for value in (np.zeros_like(kp.value), np.full_like(kp.value, np.nan), kp.value * 50):
        assert animator.render(Keypoints(value)).shape == dog.image.shape
    drv = animator.driving_keypoints(None, FaceLandmarks(np.zeros((478, 3), np.float32), (10, 10)))
    assert np.all(np.isfinite(drv.value))


def test_rasterize_reproduces_a_global_affine_map():
    rng = np.random.default_rng(1)
    src = rng.uniform(20, 180, (60, 2))
    from scipy.spatial import Delaunay

    tris = Delaunay(src).simplices.astype(np.int32)
    a = np.array([[1.1, 0.2], [-0.1, 0.9]])
    t = np.array([5.0, -3.0])
    dst = src @ a.T + t
    sign = np.sign(np.cross(src[tris[:, 1]] - src[tris[:, 0]], src[tris[:, 2]] - src[tris[:, 0]]))
    warp = rasterize(src, dst, tris, sign.astype(float), (0, 0, 200, 200), 2)
    covered = warp.tri_id >= 0
    assert covered.mean() > 0.4
    # every covered cell maps back through the inverse affine
    centres = np.stack(np.meshgrid(np.arange(warp.tri_id.shape[1]), np.arange(warp.tri_id.shape[0])), -1)
    pix = -2 - 0.5 + 1.0 + 2.0 * centres  # cell centre positions (grid starts one cell before the ROI)
    expect = (pix - t) @ np.linalg.inv(a).T
    assert np.abs(warp.map_xy[covered] - expect[covered]).max() < 1e-3


def test_a_fold_is_drawn_with_a_sharp_edge_not_a_staircase_of_cells(monkeypatch):
    """A fold (a flap of the mesh moved over its neighbour, like a turned cheek over the background)
    has an edge the coarse grid cannot follow: upsampled, it is a staircase of cells smeared across
    the jump. Around folds the map is rasterised again per pixel: the result matches a warp computed
    at one pixel per cell."""
    import cv2

    from engine.animators.mesh import warp as warp_mod

    yy, xx = np.mgrid[0:240, 0:240]
    image = np.dstack([(xx * 255 // 239), (yy * 255 // 239), ((xx // 12 + yy // 12) % 2) * 255]).astype(np.uint8)
    g = np.linspace(20, 220, 6)
    src = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    from scipy.spatial import Delaunay

    tris = Delaunay(src).simplices.astype(np.int32)
    sign = np.sign(np.cross(src[tris[:, 1]] - src[tris[:, 0]], src[tris[:, 2]] - src[tris[:, 0]])).astype(float)
    dst = src.copy()
    dst[[14, 15, 20, 21], 0] += 55.0  # a block of the mesh slides right, over its neighbours
    # draw order: the moved flap last (on top), as the animator orders by depth
    order = np.argsort([len({14, 15, 20, 21} & set(t)) for t in tris.tolist()], kind="stable")
    tris, sign = tris[order], sign[order]

    def render(step):
        out = image.copy()
        warp = warp_mod.rasterize(src, dst, tris, sign, (0, 0, 240, 240), step)
        out[:] = cv2.remap(image, warp_mod.dense_map(warp), None, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        return out.astype(int), warp

    exact, _ = render(1)
    coarse, warp = render(8)
    # where the flap lies over other triangles, and a cell around (the coarse grid starts a cell early)
    over = cv2.dilate((warp.layers >= 2).astype(np.uint8), np.ones((3, 3), np.uint8))
    fold = np.kron(over, np.ones((8, 8), np.uint8))[8:248, 8:248] > 0
    assert fold.sum() > 2000
    sharp = np.abs(coarse - exact).max(axis=2)[fold]
    monkeypatch.setattr(warp_mod, "sharpen_folds", lambda warp, full: None)
    blended = np.abs(render(8)[0] - exact).max(axis=2)[fold]
    assert (blended > 40).sum() > 300  # the staircase and smear without it
    assert (sharp > 40).sum() < 0.05 * (blended > 40).sum()


def test_a_band_squeezed_next_to_a_stretched_one_has_sharp_edges_not_a_staircase(monkeypatch):
    """No fold, but a sharp bend: a row of the mesh pushed up until the band above it is squeezed to
    a sixth (on a wide yawn the upper lip rises under the nose). The coarse map, upsampled linearly
    across the bend, misplaces every edge in the squeezed band by up to a cell, differently per cell:
    a staircase (s2 x d18 at full size: 7 px steps along the upper lip). There too the map is
    rasterised again per pixel."""
    import cv2
    from scipy.spatial import Delaunay

    from engine.animators.mesh import warp as warp_mod

    yy, xx = np.mgrid[0:240, 0:240]
    image = np.dstack([(xx * 255 // 239), (yy * 255 // 239), ((xx // 12 + yy // 12) % 2) * 255]).astype(np.uint8)
    g = np.linspace(20, 220, 6)  # 40 px apart
    src = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    tris = Delaunay(src).simplices.astype(np.int32)
    sign = np.sign(np.cross(src[tris[:, 1]] - src[tris[:, 0]], src[tris[:, 2]] - src[tris[:, 0]])).astype(float)
    dst = src.copy()
    dst[18:24, 1] -= 34.0  # the fourth row up to 6 px under the third
    moved_sign = np.sign(np.cross(dst[tris[:, 1]] - dst[tris[:, 0]], dst[tris[:, 2]] - dst[tris[:, 0]]))
    assert np.array_equal(moved_sign, sign)  # no triangle flips: nothing folds

    def render(step):
        warp = warp_mod.rasterize(src, dst, tris, sign, (0, 0, 240, 240), step)
        return cv2.remap(image, warp_mod.dense_map(warp), None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).astype(int)

    exact = render(1)
    band = np.s_[90:150, 16:216]  # the squeezed band and the rows around it, inside the mesh (its
    # own edge, where it meets the still image, is a tear here: the face's has the anchor rings)
    sharp = (np.abs(render(8) - exact).max(axis=2)[band] > 40).sum()
    monkeypatch.setattr(warp_mod, "BEND_CELLS", np.inf)  # folds only, as before
    blended = (np.abs(render(8) - exact).max(axis=2)[band] > 40).sum()
    assert blended > 300, blended
    assert sharp < 0.02 * blended, (sharp, blended)


def test_a_turned_cheek_is_refined_exactly_with_no_specks_from_beneath(s42, monkeypatch):
    """A head turned 30 degrees folds its far cheek over the face's edge. Around that fold the map
    is rasterised again per pixel; it must then be the per-pixel warp itself. Triangles were picked
    for that by the cell centres they cover, so a near triangle covering pixels but no centre there
    was left out and the hair-side triangle beneath showed through: dark specks on the cheek."""
    from engine.animators.mesh import animator as animator_mod
    from engine.animators.mesh import warp as warp_mod

    animator = MeshAnimator(gaze=False)
    animator.set_source(s42)
    pts = np.asarray(s42.landmarks.points, np.float64)
    centre = pts[:NUM_MESH_POINTS].mean(axis=0)
    a = np.radians(30.0)
    turned = pts.copy()  # Face Mesh's own 3-D points, turned about the vertical axis
    turned[:, 0] = centre[0] + (pts[:, 0] - centre[0]) * np.cos(a) + (pts[:, 2] - centre[2]) * np.sin(a)
    seen = {}

    def keep(warp):
        seen["warp"] = warp
        return warp_mod.dense_map(warp)

    monkeypatch.setattr(animator_mod, "dense_map", keep)
    animator.render(Keypoints(turned[:, :2].astype(np.float32)))
    warp = seen["warp"]
    assert warp.step >= warp_mod.SHARPEN_MIN_STEP
    refined = warp_mod.dense_map(warp)
    src, dst, tris, sign = warp.mesh
    exact = warp_mod.rasterize(src, dst, tris, sign, warp.roi, 1)
    x0, y0, x1, y1 = warp.roi
    exact_map = exact.map_xy[1:1 + y1 - y0, 1:1 + x1 - x0]  # one spare cell per side
    covered = exact.tri_id[1:1 + y1 - y0, 1:1 + x1 - x0] >= 0
    s = warp.step
    marked = cv2.dilate(warp_mod.fold_edges(warp).astype(np.uint8), np.ones((3, 3), np.uint8))
    fold = np.kron(marked, np.ones((s, s), np.uint8))[s:s + y1 - y0, s:s + x1 - x0] > 0
    assert (fold & covered).sum() > 500  # the far cheek folds
    error = np.abs(refined - exact_map).max(axis=2)[fold & covered]
    assert error.max() < 0.5


def _close_eyes(xy: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """A 'driver' whose upper lids come down ``amount`` of the way onto the lower ones."""
    from engine.animators.mesh.triangulation import EYES

    out = xy.copy()
    for upper, lower, _ in EYES:
        out[list(upper[1:-1])] += amount * (out[list(lower[1:-1])] - out[list(upper[1:-1])])
    return out


def _iris_centre(image: np.ndarray, portrait) -> np.ndarray:
    """Centroid (x, y) of the darkest pixels (the pupil) inside the portrait's right eye contour."""
    from engine.face_regions import RIGHT_EYE_LOWER, RIGHT_EYE_UPPER

    contour = portrait.landmarks.xy[list(RIGHT_EYE_UPPER) + list(RIGHT_EYE_LOWER[::-1])]
    inside = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(contour).astype(np.int32)], 1)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(float)
    dark = (inside > 0) & (gray < np.percentile(gray[inside > 0], 10))
    ys, xs = np.nonzero(dark)
    return np.array([xs.mean(), ys.mean()])


def test_gaze_moves_the_iris_inside_a_still_eye(s42):
    """Irises that move with the eye contour still: the eye's interior (iris) moves by about as much,
    nothing outside the eyes changes; with gaze off the eye stays as it was."""
    from engine.face_regions import IRISES

    width = np.ptp(s42.landmarks.xy[[33, 133], 0])
    offset = np.array([0.12 * width, 0.0])
    looks = {}
    for gaze in (True, False):
        animator = MeshAnimator(gaze=gaze)
        kp = animator.set_source(s42)
        value = kp.value.copy()
        value[list(IRISES)] += offset.astype(np.float32)
        looks[gaze] = animator.render(Keypoints(value))
    moved = _iris_centre(looks[True], s42) - _iris_centre(s42.image, s42)
    assert 0.7 * offset[0] < moved[0] < 1.3 * offset[0] and abs(moved[1]) < 0.15 * offset[0]
    assert np.abs(_iris_centre(looks[False], s42) - _iris_centre(s42.image, s42)).max() < 0.5
    x0, y0, x1, y1 = FaceLandmarks(s42.landmarks.points[[33, 133, 159, 145, 263, 362, 386, 374]],
                                   s42.size).bbox()
    outside = np.ones(s42.image.shape[:2], bool)
    outside[int(y0) - 3:int(y1) + 4, int(x0) - 3:int(x1) + 4] = False
    assert np.abs(looks[True].astype(int) - s42.image)[outside].max() <= 1


def test_gaze_moves_the_iris_up_but_never_down(s42):
    """Irises that move up inside a still eye move its interior up (the sclera under the iris shows);
    moved down they leave it as it was: shifting the interior down pulled the upper lid's lash line
    into the eye, a dark smear (s9 x d10)."""
    from engine.face_regions import IRISES

    width = np.ptp(s42.landmarks.xy[[33, 133], 0])
    moved = {}
    for name, dy in (("up", -0.1 * width), ("down", 0.1 * width)):
        animator = MeshAnimator()
        value = animator.set_source(s42).value.copy()
        value[list(IRISES), 1] += np.float32(dy)
        moved[name] = _iris_centre(animator.render(Keypoints(value)), s42) - _iris_centre(s42.image, s42)
    assert moved["up"][1] < -0.4 * 0.1 * width
    assert np.abs(moved["down"]).max() < 0.5


def test_a_sideways_gaze_turns_the_eyeball_and_keeps_its_corners(s42):
    """Along the eye's axis the iris moves by the whole shift and the sclera stretches or squeezes
    between it and the corners, which stay: shifted whole, the interior at the trailing corner was
    drawn from beyond it, the lid rim smeared into the sclera (s7 x d6)."""
    from engine.animators.mesh import eyes
    from engine.animators.mesh.triangulation import EYES
    from engine.face_regions import IRISES

    src = s42.landmarks.xy.astype(np.float64)
    upper, _, iris = EYES[0]
    a, b = src[upper[0]], src[upper[-1]]
    width = np.hypot(*(b - a))
    axis = (b - a) / width
    shift = -0.15 * width * axis  # samples from the left: the iris is drawn 0.15 widths to the right
    u = np.linspace(0.0, width, 41)
    pos = a + np.outer(u, axis)
    moved = pos + eyes.eyeball_turn(pos, src, 0, shift)
    after = (moved - a) @ axis
    assert after[0] == pytest.approx(0.0, abs=1e-9) and after[-1] == pytest.approx(width, abs=1e-9)
    assert np.all(np.diff(after) > 0) and np.all((after >= 0) & (after <= width))  # in order, inside
    drawn = src[iris] - shift  # where the iris's centre is drawn now
    assert (drawn + eyes.eyeball_turn(drawn[None], src, 0, shift)[0]) == pytest.approx(src[iris], abs=1e-6)
    # rendered: the trailing corner's pixels keep their colour; the iris moves
    animator = MeshAnimator()
    value = animator.set_source(s42).value.copy()
    value[list(IRISES)] += (0.15 * width * axis).astype(np.float32)
    out = animator.render(Keypoints(value))
    x0, y0 = np.floor(a + 0.02 * width * axis - 0.03 * width).astype(int)
    x1, y1 = np.ceil(a + 0.12 * width * axis + 0.03 * width).astype(int)
    corner = np.abs(out[y0:y1, x0:x1].astype(int) - s42.image[y0:y1, x0:x1]).mean()
    assert corner < 6.0, corner
    assert _iris_centre(out, s42)[0] - _iris_centre(s42.image, s42)[0] > 0.5 * 0.15 * width


def test_lids_close_upper_onto_lower_and_do_not_cross():
    from engine.animators.mesh import eyes
    from engine.animators.mesh.triangulation import EYES

    rng = np.random.default_rng(3)
    src = rng.uniform(0, 1, (478, 2))
    for upper, lower, _ in EYES:  # a simple open eye: corners at y=0, upper lid above, lower below
        xs = np.linspace(0, 40, len(upper))
        src[list(upper)] = np.stack([xs, -8 * np.sin(np.pi * xs / 40)], 1)
        src[list(lower)] = np.stack([xs, 6 * np.sin(np.pi * xs / 40)], 1)
    pts = src.copy()
    eyes.close_lids(pts, src, closure=np.ones(2))
    for upper, lower, _ in EYES:
        np.testing.assert_allclose(pts[list(upper)], pts[list(lower)], atol=1e-9)  # shut
        np.testing.assert_allclose(pts[list(lower)], src[list(lower)])  # by the upper lid alone
    pts = src.copy()
    for upper, lower, _ in EYES:  # a driver pushing the upper lid past the lower one
        pts[list(upper[1:-1]), 1] += 20.0
    eyes.clamp_lids(pts, src)
    for upper, lower, _ in EYES:
        np.testing.assert_allclose(pts[list(upper)], pts[list(lower)], atol=1e-9)
        np.testing.assert_allclose(pts[list(lower)], src[list(lower)])


def test_blink_state_closes_only_when_the_driver_eye_is_nearly_shut(s42):
    from engine.animators.mesh.eyes import BlinkState

    xy = s42.landmarks.xy.astype(np.float64)
    state = BlinkState()
    for _ in range(5):
        assert np.all(state.update(xy) == 0.0)
    assert np.all(state.update(_close_eyes(xy, 0.3)) == 0.0)  # a squint is left to the motion
    assert np.all(state.update(_close_eyes(xy, 0.95)) == 1.0)  # a blink closes the portrait's eye
    assert np.all(state.update(xy) == 0.0)


def test_a_narrowed_driver_eye_narrows_a_larger_portrait_eye_in_proportion(s42):
    """Relative motion subtracts the driver's closing from the portrait's opening: a portrait eye
    twice as open as the driver's usual kept 3/4 of its opening while the driver's was at half of
    its usual. The portrait's eye now narrows in proportion; at the driver's usual it is as relative
    motion shows it, exactly."""
    from engine.animators.mesh import eyes

    animator = MeshAnimator()
    kp = animator.set_source(s42)
    xy = s42.landmarks.points.copy()
    usual = xy.copy()
    usual[:, :2] = _close_eyes(xy[:, :2], 0.5)  # the driver's eyes: half as open as the portrait's
    for _ in range(5):
        drv_usual = animator.driving_keypoints(None, FaceLandmarks(usual, s42.size))
    np.testing.assert_array_equal(animator.target_points(kp), kp.value.astype(np.float64))
    narrowed = xy.copy()
    narrowed[:, :2] = _close_eyes(xy[:, :2], 0.75)  # ... now at half of that
    drv = animator.driving_keypoints(None, FaceLandmarks(narrowed, s42.size))
    relative = Keypoints(kp.value + (drv.value - drv_usual.value))
    src_open = eyes.eye_openness(kp.value.astype(np.float64))
    assert np.all(np.abs(eyes.eye_openness(relative.value.astype(np.float64)) / src_open - 0.75) < 0.05)
    share = eyes.eye_openness(animator.target_points(relative)) / src_open
    assert np.all(np.abs(share - 0.5) < 0.05), share  # the previous build: 0.75


def test_a_closed_driver_eye_closes_the_portrait_eye_and_shows_lid_skin(s42):
    """Relative motion alone would leave a large-eyed portrait half open; the output must read as
    closed to the tracker and show skin (no iris) where the eye was."""
    animator = MeshAnimator()
    kp = animator.set_source(s42)
    xy = s42.landmarks.points.copy()
    animator.driving_keypoints(None, FaceLandmarks(xy, s42.size))
    closed = xy.copy()
    # the driver closes half of the portrait's lid gap (its eyes are smaller), i.e. fully for itself
    closed[:, :2] = _close_eyes(xy[:, :2], 0.9)
    drv = animator.driving_keypoints(None, FaceLandmarks(closed, s42.size))
    half = Keypoints(kp.value + 0.5 * (drv.value - kp.value))  # additive motion of a smaller eye
    out = animator.render(half)
    with FaceTracker(still=True) as tracker:
        face = tracker.track(out)
    from engine.metrics import eye_aspect_ratio

    assert eye_aspect_ratio(face.points) < 0.12 < eye_aspect_ratio(s42.landmarks.points) - 0.15
    iris = np.round(s42.landmarks.xy[468]).astype(int)  # where the iris was: now lid skin, not dark iris
    before = s42.image[iris[1] - 2:iris[1] + 3, iris[0] - 2:iris[0] + 3].astype(float).mean()
    after = out[iris[1] - 2:iris[1] + 3, iris[0] - 2:iris[0] + 3].astype(float).mean()
    assert after > before + 40


@pytest.mark.parametrize("name, eye", [("s7", 0), ("s10", 0), ("s10", 1)])
def test_a_closed_eye_covers_the_white_the_landmarks_leave_out(media, name, eye):
    """Painted eyes show sclera outside Face Mesh's eye contour: under the lower-lid landmarks (s7, a
    cartoon) and beyond a corner (s10). Closed, the lid must cover it, not leave a white crescent
    under the lash line or a white triangle at the corner. Counted around the eye (within 0.15 eye
    widths outside the contour): the lid closed onto the landmarks left 56-73 % of it (s7 eye 0: 365
    of 649 pixels, s10: 151 of 242 and 128 of 176); now under a quarter."""
    from engine.animators.mesh.triangulation import EYES

    portrait = load_portrait(media / "sources" / f"{name}.jpg")
    animator = MeshAnimator()
    animator.set_source(portrait)
    xy = portrait.landmarks.points.copy()
    animator.driving_keypoints(None, FaceLandmarks(xy, portrait.size))
    upper, lower, _ = EYES[eye]
    shut = xy.copy()
    shut[list(upper[1:-1]), :2] = shut[list(lower[1:-1]), :2]
    out = animator.render(animator.driving_keypoints(None, FaceLandmarks(shut, portrait.size)))

    pts = portrait.landmarks.xy.astype(float)
    width = np.hypot(*(pts[upper[-1]] - pts[upper[0]]))
    inside = np.zeros(out.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(pts[list(upper) + list(lower[::-1])]).astype(np.int32)], 1)
    reach = int(np.ceil(0.15 * width))
    near = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    around = (near > 0) & (inside == 0)
    skin = animator._eye_colours.skin[eye]

    def sclera(image):
        rgb = image.astype(np.float32)
        saturation = (rgb.max(axis=2) - rgb.min(axis=2)) / np.maximum(rgb.max(axis=2), 1)
        white = (rgb @ [0.299, 0.587, 0.114] > skin @ [0.299, 0.587, 0.114] + 10) & (
            saturation < 0.6 * (skin.max() - skin.min()) / skin.max())
        return int((white & around).sum())

    assert sclera(portrait.image) > 150
    assert sclera(out) < 0.25 * sclera(portrait.image)


def test_the_closed_lash_line_tapers_towards_the_corners(s42):
    """On a plain image, the lash line drawn along a shut eye is thickest in its middle and thinner
    towards the corners, as lashes are (a line of one width reads as drawn on). s42 at 3x, so that
    the line is several pixels thick."""
    from engine.animators.mesh import eyes
    from engine.animators.mesh.triangulation import EYES

    big = s42.resized((1536, 1536))
    pts = big.landmarks.xy.astype(float).copy()
    upper, lower, _ = EYES[1]
    pts[list(upper[1:-1])] = pts[list(lower[1:-1])]  # shut
    colours = eyes.colours_from(big.image, big.landmarks.xy.astype(float))
    plain = np.full_like(big.image, 200)
    eyes.paint_closed(plain, pts, colours)
    # per image column, how many pixels' worth of lash colour it holds
    ink = np.clip(200 - plain.mean(axis=2), 0, None) / (200 - colours.lash[1].mean())
    x0, x1 = sorted((pts[upper[0], 0], pts[upper[-1], 0]))

    def thickness(fraction):
        return float(ink[:, int(round(x0 + fraction * (x1 - x0)))].sum())

    assert thickness(0.5) > 4
    assert thickness(0.1) < 0.8 * thickness(0.5) and thickness(0.9) < 0.8 * thickness(0.5)


def test_the_closed_lash_line_is_as_thick_as_a_real_shut_eyes(s42):
    """A real shut eye shows a dark line 0.08-0.11 of the eye's width across (d0, d12, no eyeliner):
    lashes and the lid's edge. The line drawn along a shut eye holds at least 0.045 eye widths of lash
    colour in its middle (0.032 before: thin enough to read as a drawn line, and MediaPipe read such
    eyes as still a little open). s42 at 3x, on a plain image."""
    from engine.animators.mesh import eyes
    from engine.animators.mesh.triangulation import EYES

    big = s42.resized((1536, 1536))
    colours = eyes.colours_from(big.image, big.landmarks.xy.astype(float))
    for k, (upper, lower, _) in enumerate(EYES):
        pts = big.landmarks.xy.astype(float).copy()
        pts[list(upper[1:-1])] = pts[list(lower[1:-1])]  # shut
        plain = np.full_like(big.image, 200)
        eyes.paint_closed(plain, pts, colours)
        ink = np.clip(200 - plain.mean(axis=2), 0, None) / (200 - colours.lash[k].mean())
        x0, x1 = sorted((pts[upper[0], 0], pts[upper[-1], 0]))
        middle = ink[:, int(round(0.5 * (x0 + x1)))].sum()
        assert middle > 0.045 * np.hypot(*(pts[upper[-1]] - pts[upper[0]])), (k, middle)


def _open_mouth(xy: np.ndarray, px: float) -> np.ndarray:
    """A 'driver' whose jaw drops ``px`` pixels: lower lip and chin down, upper lip still."""
    out = xy.copy()
    out[sorted({i for column in mouth_mod.LOWER_FACE_COLUMNS for i in column}), 1] += px
    return out


def test_the_mouth_opens_to_the_drivers_shape_whatever_the_two_mouths_widths(s42):
    """A driver whose mouth is 1.3x as wide for its face as the portrait's drops the jaw by D:
    relative motion opens the portrait's mouth by D too (face units), rounder than the driver's.
    The portrait's mouth now opens by D / 1.3, so its opening over its width is the driver's; its own
    parted lips, its upper lip and a driver of its own mouth's width are left as they were."""
    pts = MeshAnimator().set_source(s42).value.astype(np.float64)
    own = mouth_mod.opening(pts)
    width = np.linalg.norm(pts[308] - pts[78])
    D = 0.3 * width
    opened = _open_mouth(pts, D)

    def added_opening(driver_width_factor):
        animator = MeshAnimator()
        animator.set_source(s42)
        driver = pts.copy()  # at calibration: the portrait's face with its mouth this much wider
        lips = sorted(set(mouth_mod.LIPS))
        centre = pts[[78, 308]].mean(axis=0)
        driver[lips, 0] = centre[0] + driver_width_factor * (driver[lips, 0] - centre[0])
        animator.reference_keypoints(Keypoints(driver.astype(np.float32)))
        target = animator.target_points(Keypoints(opened.astype(np.float32)))
        assert np.allclose(target[list(mouth_mod.UPPER)], pts[list(mouth_mod.UPPER)], atol=1e-3)  # upper lip stays
        return mouth_mod.opening(target) - own

    assert added_opening(1.0) == pytest.approx(D, rel=0.03)
    assert added_opening(1.3) == pytest.approx(D / 1.3, rel=0.05)  # relative motion alone: D
    assert added_opening(1 / 1.3) == pytest.approx(1.3 * D, rel=0.05)


def test_the_portraits_parted_lips_narrow_with_a_pucker_and_keep_their_gap_in_a_smile(s42):
    """s42's lips are parted (0.12 of its mouth's width). A driver with closed lips purses them (the
    mouth 0.7 as wide): the portrait's opening narrows to 0.7 of its own with its width, as a pursed
    mouth's does; before, it kept the whole gap, and the narrowed mouth read as opening (d9 on s42:
    the target's mouth aspect correlated 0.90 with the driver's, now 0.97). A closed-lip smile
    (1.3 as wide) keeps the portrait's gap as painted."""
    xy = s42.landmarks.points.astype(np.float64).copy()
    src = xy[:, :2].copy()
    own = mouth_mod.opening(src)
    assert own > 0.1 * mouth_mod.mouth_width(src)
    rest = src.copy()
    mouth_mod.close_inner_lips(rest)  # the driver: s42's face with the lips together
    lips = sorted(set(mouth_mod.LIPS))
    centre = rest[[78, 308]].mean(axis=0)

    def target_with_lips_across(factor: float) -> np.ndarray:
        pipeline = Pipeline(MeshAnimator(), s42, PipelineSettings(smoothing=None))
        driver = rest.copy()
        driver[lips, 0] = centre[0] + factor * (driver[lips, 0] - centre[0])
        for i, frame_xy in enumerate((rest, driver)):
            pts = xy.copy()
            pts[:, :2] = frame_xy
            pipeline.process(Frame(s42.image, i / 30, i, landmarks=FaceLandmarks(pts.astype(np.float32), s42.size)))
        target = pipeline.animator.target_points(pipeline._last_target)
        pipeline.close()
        return target

    pursed = target_with_lips_across(0.7)
    assert mouth_mod.mouth_width(pursed) == pytest.approx(0.7 * mouth_mod.mouth_width(src), rel=0.03)
    assert mouth_mod.opening(pursed) == pytest.approx(0.7 * own, rel=0.05)
    # the upper lip stays (to float32 round trips of the landmarks)
    np.testing.assert_allclose(pursed[list(mouth_mod.UPPER)][:, 1], src[list(mouth_mod.UPPER)][:, 1], atol=0.02)
    smiling = target_with_lips_across(1.3)
    assert mouth_mod.opening(smiling) == pytest.approx(own, rel=0.03)


def test_a_calibration_with_the_lips_pressed_wide_does_not_set_the_mouths_opening_for_good(s42):
    """A driver who calibrates with the lips pressed 1.3x as wide as at rest (d18 calibrates at 0.58
    inter-ocular distances and rests at 0.49) opened the portrait's mouth by D / 1.3 for the whole
    session. Once the driver's lips have rested together a while, the width at rest counts: D."""
    xy = s42.landmarks.points.astype(np.float64).copy()
    rest = xy[:, :2].copy()
    mouth_mod.close_inner_lips(rest)  # the driver: s42's face with the lips together
    lips = sorted(set(mouth_mod.LIPS))
    centre = rest[[78, 308]].mean(axis=0)
    pressed = rest.copy()
    pressed[lips, 0] = centre[0] + 1.3 * (pressed[lips, 0] - centre[0])
    pipeline = Pipeline(MeshAnimator(), s42, PipelineSettings(smoothing=None))

    def opening_after(driver_xy, index):
        pts = xy.copy()
        pts[:, :2] = driver_xy
        pipeline.process(Frame(s42.image, index / 30, index, landmarks=FaceLandmarks(pts.astype(np.float32), s42.size)))
        return mouth_mod.opening(pipeline.animator.target_points(pipeline._last_target))

    D = 0.3 * np.linalg.norm(rest[308] - rest[78])
    shut = opening_after(pressed, 0)  # the calibration frame
    assert opening_after(_open_mouth(pressed, D), 1) - shut == pytest.approx(D / 1.3, rel=0.05)  # no rest yet
    for i in range(2, 32):  # a second with the lips together at their usual width
        rested = opening_after(rest, i)
    # measured from the lips together at this width: s42's own parted lips narrow with its mouth
    # (``open_in_proportion``), and relative to this calibration its mouth is narrower now
    assert opening_after(_open_mouth(rest, D), 32) - rested == pytest.approx(D, rel=0.05)
    # the press comes back for a moment: the width at rest holds
    for i in range(33, 43):
        opening_after(pressed, i)
    rested = opening_after(rest, 43)
    assert opening_after(_open_mouth(rest, D), 44) - rested == pytest.approx(D, rel=0.05)
    pipeline.calibrate()  # someone else, perhaps: their calibration frame counts again
    opening_after(pressed, 45)
    assert opening_after(_open_mouth(pressed, D), 46) - shut == pytest.approx(D / 1.3, rel=0.05)


def test_reference_keypoints_close_the_mouth_by_the_jaw():
    from engine.face_regions import INNER_LIPS_LOWER, INNER_LIPS_UPPER, OUTER_LIPS_LOWER

    xy = np.zeros((478, 2))
    xs = np.linspace(0, 50, 11)
    xy[list(INNER_LIPS_UPPER)] = np.stack([xs, 100 - 3 * np.sin(np.pi * xs / 50)], 1)
    xy[list(INNER_LIPS_LOWER)] = np.stack([xs, 100 + 3 * np.sin(np.pi * xs / 50)], 1)
    xy[list(OUTER_LIPS_LOWER)] = np.stack([xs, 100 + 9 * np.sin(np.pi * xs / 50)], 1)
    opened = _open_mouth(xy, 6.0)
    ref = MeshAnimator().reference_keypoints(Keypoints(opened.astype(np.float32))).value.astype(np.float64)
    inner_up, inner_lo = list(INNER_LIPS_UPPER[1:-1]), list(INNER_LIPS_LOWER[1:-1])
    np.testing.assert_allclose(ref[inner_lo], ref[inner_up], atol=1e-4)  # shut
    np.testing.assert_allclose(ref[inner_up], opened[inner_up], atol=1e-4)  # by the jaw alone
    moved = opened[list(OUTER_LIPS_LOWER[1:-1]), 1] - ref[list(OUTER_LIPS_LOWER[1:-1]), 1]
    assert np.all(moved > 3.0)  # the outer lower lip came up with it
    # the lip and chin below each inner-lip point come up with it, as one piece (a chin point two
    # columns share: by their mean)
    from collections import Counter

    shared = {i for i, k in Counter(i for c in mouth_mod.LOWER_FACE_COLUMNS for i in c).items() if k > 1}
    for column in mouth_mod.LOWER_FACE_COLUMNS:
        own = [i for i in column if i not in shared]
        np.testing.assert_allclose(opened[own] - ref[own], np.tile(opened[column[0]] - ref[column[0]], (len(own), 1)), atol=1e-4)
    # a closed mouth is its own reference
    shut = xy.copy()
    shut[inner_lo] = shut[inner_up]
    np.testing.assert_allclose(MeshAnimator().reference_keypoints(Keypoints(shut.astype(np.float32))).value, shut, atol=1e-4)


def test_a_driver_who_calibrates_mid_word_still_opens_the_portrait_mouth_fully(s42):
    """Relative motion from a reference taken with the mouth open (talking while calibrating) would
    open the portrait's mouth only by what the driver opens *beyond* that; the portrait must open
    by the driver's whole opening, and close when the driver closes."""
    from engine.animators.mesh.mouth import opening

    xy = s42.landmarks.points.astype(np.float64).copy()
    pipeline = Pipeline(MeshAnimator(), s42, PipelineSettings(smoothing=None))
    size = s42.size

    def gap_after(driver_xy, index):
        pts = xy.copy()
        pts[:, :2] = driver_xy
        pipeline.process(Frame(s42.image, index / 30, index, landmarks=FaceLandmarks(pts.astype(np.float32), size)))
        return opening(pipeline.animator.target_points(pipeline._last_target))

    source_gap = opening(xy[:, :2])  # s42 smiles with parted lips
    rest = xy[:, :2].copy()
    mouth_mod.close_inner_lips(rest)  # the driver: s42's face with the lips together
    assert opening(rest) < 0.5
    mid_word, wide = _open_mouth(rest, 12.0), _open_mouth(rest, 24.0)
    at_calibration = gap_after(mid_word, 0)  # this frame is the reference
    assert at_calibration == pytest.approx(source_gap + 12.0, abs=1.5)  # not source_gap + 0
    assert gap_after(wide, 1) == pytest.approx(source_gap + 24.0, abs=2.0)
    assert gap_after(rest, 2) == pytest.approx(source_gap, abs=1.0)  # the driver closes: as painted
    # the whole lower lip and chin came up with the jaw in the reference: none of it folds now
    assert _lower_face_rows_in_order(pipeline._last_target.value.astype(np.float64))
    # absolute mode is not affected: the target is the driver's own mouth
    absolute = Pipeline(MeshAnimator(), s42, PipelineSettings(smoothing=None, motion=MotionSettings(relative=False)))
    pts = xy.copy()
    pts[:, :2] = mid_word
    absolute.process(Frame(s42.image, 0.0, 0, landmarks=FaceLandmarks(pts.astype(np.float32), size)))
    assert opening(absolute.animator.target_points(absolute._last_target)) == pytest.approx(opening(mid_word), abs=1.0)


def _lower_face_rows_in_order(pts: np.ndarray) -> bool:
    """Every lower-face column runs downwards (along the face's vertical), row after row."""
    from engine.animators.mesh.eyes import down_normal

    n = down_normal(pts, 33, 263)
    return all(np.all(np.diff(pts[list(column)] @ n) > 0) for column in mouth_mod.LOWER_FACE_COLUMNS)


def test_unfold_keeps_the_lower_face_in_order_and_the_lower_lip_its_body(s42):
    from engine.animators.mesh.eyes import down_normal

    animator = MeshAnimator()
    src = animator.set_source(s42).value.astype(np.float64)
    assert _lower_face_rows_in_order(src)
    portrait = mouth_mod.PortraitMouth.of(src)
    columns = np.array(mouth_mod.LOWER_FACE_COLUMNS)
    inner, outer, jaw = columns[:, 0], columns[:, 3], columns[:, -1]
    on_portrait = np.diff(src[columns] @ down_normal(src, 33, 263), axis=1)  # row spacing, px
    target = _open_mouth(src, 20.0)  # a jaw drop: nothing crosses, nothing changes
    unchanged = target.copy()
    mouth_mod.unfold_lower_face(unchanged, portrait)
    np.testing.assert_array_equal(unchanged, target)
    n = down_normal(target, 33, 263)

    # the lower lip's outer edge rolls 15 px further down than the chin crease under it
    folded = target.copy()
    folded[outer, 1] += 15.0
    assert not _lower_face_rows_in_order(folded)
    fixed = folded.copy()
    mouth_mod.unfold_lower_face(fixed, portrait)
    assert _lower_face_rows_in_order(fixed)
    np.testing.assert_allclose(fixed[inner], folded[inner], atol=1e-3)  # the opening is kept
    # each row stays at least MIN_ROW_SPACING of its portrait spacing below the one above
    assert mouth_mod.MIN_ROW_SPACING >= 0.8
    assert np.all(np.diff(fixed[columns] @ n, axis=1) >= mouth_mod.MIN_ROW_SPACING * on_portrait - 1e-3)
    assert np.all((fixed[jaw] - folded[jaw]) @ n >= -1e-6)  # the jaw never comes up
    # points moved only along the face's vertical: nothing along the eyes' line
    across = (folded[263] - folded[33]) / np.linalg.norm(folded[263] - folded[33])
    np.testing.assert_allclose((fixed - folded) @ across, 0.0, atol=1e-6)
    assert np.abs(fixed - folded).max() > 3.0

    # a shout as Face Mesh reads it (d18): everything under the inner lip squeezed to half its
    # height. The lip keeps its body, and the chin and the jaw line drop below where the motion put
    # them (when the jaw line stayed, s2's lip thinned to a grey rim and the shout read as closed).
    squeezed = target.copy()
    top = np.repeat(inner, columns.shape[1] - 1)
    below = columns[:, 1:].ravel()
    squeezed[below] = squeezed[top] + 0.5 * (squeezed[below] - squeezed[top])
    opened = squeezed.copy()
    mouth_mod.unfold_lower_face(opened, portrait)
    np.testing.assert_allclose(opened[inner], squeezed[inner], atol=1e-3)
    lip = (opened[outer] - opened[inner]) @ n
    assert np.all(lip >= mouth_mod.MIN_ROW_SPACING * on_portrait[:, :3].sum(axis=1) - 1e-3)
    assert np.all((opened[jaw] - squeezed[jaw]) @ n > 0.2 * on_portrait.sum(axis=1))


def test_a_shout_reads_as_an_open_mouth(media):
    """d18 yawns twice and shouts (frames 0-159). On s2, fitted to the live output's size, the tracker
    reads the output's mouth opening with the driver's: when the lower lip thinned to a grey rim under
    the shout's dark hole it read as a closed mouth (mouth r 0.70 on these frames; 0.97 now)."""
    from engine.evaluation import evaluate

    s2 = load_portrait(media / "sources" / "s2.jpg").resized((720, 720))
    r = evaluate(media / "sources" / "s2.jpg", media / "driving" / "d18.mp4", max_frames=160, portrait=s2)
    assert r.output_faces == r.frames == 160
    assert r.mouth_corr >= 0.9 and 0.7 <= r.mouth_amplitude <= 1.3


def test_a_real_yawn_does_not_fold_the_lower_lip_over_the_chin(media):
    """d18 yawns; Face Mesh rolls its lower lip so that the lip's outer edge ends up below the chin
    crease. Transferred to s2 (whose lip edge sits close to that crease) the rows crossed and the
    warp doubled the lip over the chin with a jagged edge. The target keeps the rows in order and
    opens the mouth as wide as the two mouths' widths say (``open_in_proportion``)."""
    from engine.animators.mesh.mouth import mouth_width, opening

    s2 = load_portrait(media / "sources" / "s2.jpg")
    pipeline = Pipeline(MeshAnimator(), s2, PipelineSettings(smoothing=None))
    with FaceTracker(still=False) as tracker:
        for i, frame in enumerate(VideoFileSource(media / "driving" / "d18.mp4", max_frames=85)):
            face = tracker.track(frame.image, i / 30)
            if i in (0, 84):
                pipeline.process(Frame(frame.image, i / 30, i, landmarks=face))
    raw = pipeline._last_target.value.astype(np.float64)
    assert not _lower_face_rows_in_order(raw)  # what relative motion alone gives here
    pts = pipeline.animator.target_points(pipeline._last_target)
    assert _lower_face_rows_in_order(pts)
    src = s2.landmarks.xy.astype(np.float64)
    ratio = mouth_width(src) / np.linalg.norm(src[263] - src[33]) / pipeline.animator._driver_mouth.value
    own = opening(src) * np.linalg.norm(raw[263] - raw[33]) / np.linalg.norm(src[263] - src[33])
    assert opening(pts) == pytest.approx(own + ratio * (opening(raw) - own), rel=0.02)
    assert opening(pts) > 0.3 * np.linalg.norm(pts[33] - pts[263])  # still a yawn
    # Face Mesh squeezes d18's lower face to half its height here (inner lip to chin 0.48 -> 0.25 eye
    # distances). s2's lower lip keeps its body and the chin drops below where relative motion put it;
    # the jaw line used to stay there and the lip thinned to a rim (14 of its 39 px; chin 18 px up).
    from engine.animators.mesh.eyes import down_normal

    columns = np.array(mouth_mod.LOWER_FACE_COLUMNS)
    n = down_normal(pts, 33, 263)
    scale = np.linalg.norm(pts[263] - pts[33]) / np.linalg.norm(src[263] - src[33])
    lip = (pts[columns[:, 3]] - pts[columns[:, 0]]) @ n
    own_lip = (src[columns[:, 3]] - src[columns[:, 0]]) @ down_normal(src, 33, 263)
    assert np.all(lip >= 0.75 * scale * own_lip)
    assert (pts[152] - raw[152]) @ n > 5.0
    pipeline.close()
