"""The still background behind the moving person (mesh engine): real portraits, real segmentation."""
import cv2
import numpy as np
import pytest

from engine.animators.mesh import MeshAnimator
from engine.animators.mesh.background import PersonLayers, _fill_person, _row_fill
from engine.animators.mesh.triangulation import oval_order
from engine.motion import Keypoints
from engine.portrait import load_portrait
from engine.segmentation import person_mask


@pytest.fixture(scope="module")
def s42(media):  # a photo in front of grass and a waterfall: a busy background
    return load_portrait(media / "sources" / "s42.jpg")


def _rotated(points: np.ndarray, degrees: float, shift=(0.0, 0.0)) -> np.ndarray:
    centre = points.mean(axis=0)
    a = np.radians(degrees)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return ((points - centre) @ r.T + centre + shift).astype(np.float32)


def test_a_tilting_head_leaves_the_background_around_it_still(s42):
    """The anchor rings move hair and shoulders with the head; the grass and waterfall between them
    must not move (they used to turn with the head, up to twice the face's size around it)."""
    animator = MeshAnimator()
    kp = animator.set_source(s42)
    target = _rotated(kp.value, 8.0, (6.0, -4.0))
    out = animator.render(Keypoints(target)).astype(int)
    diff = np.abs(out - s42.image).max(axis=2)
    x0, y0, x1, y1 = animator._roi
    inside = np.zeros(diff.shape, bool)
    inside[y0:y1, x0:x1] = True
    person = inside & (animator._layers.image_mask[..., 3] > 0)
    reach = int(np.ceil(np.abs(target - kp.value).max())) + 2  # nothing moves farther than this
    background = cv2.dilate(person.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)) == 0
    assert (background & inside).sum() > 0.08 * (x1 - x0) * (y1 - y0)  # plenty of background in reach
    assert diff[background & inside].max() == 0
    # ... while the head and its hair did move
    top = np.round(kp.value[10]).astype(int)  # the forehead's top, under the hair
    assert diff[top[1] - 40:top[1], top[0] - 20:top[0] + 20].mean() > 10


def test_where_the_head_moved_away_the_background_shows_not_the_hair(s42):
    animator = MeshAnimator()
    animator.set_source(s42)
    layers = animator._layers
    x0, y0, x1, y1 = roi = animator._roi
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    shift = 24.0  # everything in the ROI moves right by this many pixels
    source_map = np.dstack([xx - shift, yy])
    out = s42.image.copy()
    layers.composite(source_map, out, roi)
    moved_mask = cv2.remap(layers.image_mask[..., 3], source_map, None, cv2.INTER_LINEAR)
    core = person_mask(s42.image)[y0:y1, x0:x1] > 0.5
    # the person was here and has gone (from where its source is in the region; beyond it, the toy
    # map's shift would uncover the shoulders at the region's edge, where a real map moves nothing)
    uncovered = core & (moved_mask == 0) & (xx - shift >= x0)
    assert uncovered.sum() > 500
    shown = out[y0:y1, x0:x1][uncovered].astype(float)
    assert np.array_equal(shown, layers.plate[y0:y1, x0:x1, :3][uncovered])
    # what shows is the grass beside the head (green), not the brown hair that was there
    hair = s42.image[y0:y1, x0:x1][uncovered].astype(float)
    greenness = lambda px: (px[:, 1] - 0.5 * (px[:, 0] + px[:, 2])).mean()  # noqa: E731
    assert greenness(hair) < 10 and greenness(shown) > greenness(hair) + 15


def test_the_composite_is_the_dense_formula_everywhere(s42):
    """Only the person's soft edge is blended pixel by pixel: the result must still be
    warp(m) warp(I) + (1 - warp(m)) B at every pixel."""
    animator = MeshAnimator()
    animator.set_source(s42)
    layers = animator._layers
    x0, y0, x1, y1 = roi = (40, 24, 470, 500)  # any region: the layers cover the whole portrait
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    source_map = np.dstack([xx - 9 * np.sin(yy / 37.0), yy + 7 * np.cos(xx / 29.0)]).astype(np.float32)
    out = s42.image.copy()
    layers.composite(source_map, out, roi)
    warped = cv2.remap(layers.image_mask, source_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = warped[..., 3:].astype(float) / 255
    expect = alpha * warped[..., :3] + (1 - alpha) * layers.plate[y0:y1, x0:x1, :3]
    assert ((alpha > 0) & (alpha < 1)).sum() > 1000  # a real edge band was blended
    assert np.abs(out[y0:y1, x0:x1] - expect).max() <= 1.0
    assert np.array_equal(out[:y0], s42.image[:y0])  # nothing outside the ROI is touched
    assert np.array_equal(out[:, x1:], s42.image[:, x1:])


def test_uncovered_background_continues_a_texture_but_stays_smooth_on_a_plain_wall():
    h, w = 120, 200
    stripes = np.where((np.arange(w) // 4) % 2, 200, 40).astype(np.uint8)
    image = np.dstack([np.tile(stripes, (h, 1))] * 3)
    hole = np.zeros((h, w), bool)
    hole[:, 100:] = True  # the person: the right half
    busy = _fill_person(image, hole, np.zeros((h, w), np.float32))
    # mirrored about the last background column (99): column 100 + k shows column 98 - k
    assert np.array_equal(busy[:, 100:130], image[:, 98:68:-1])
    assert np.array_equal(busy[:, :100], image[:, :100])  # the background itself is kept exactly
    # a plain wall with one stray dark hair next to the person: the hair is not copied into the hole
    wall = np.full((h, w, 3), 180, np.uint8)
    wall[:, 96] = 20
    plain = _fill_person(wall, hole, np.ones((h, w), np.float32))
    assert plain[:, 100:130].min() > 120
    assert np.array_equal(plain[:, :100], wall[:, :100])


def test_a_horizon_carries_on_behind_the_head():
    """Deep behind a head that moved far, the plate continues what runs sideways (a horizon, a lake),
    instead of one flat blob averaged from all around it."""
    h, w = 200, 300
    image = np.zeros((h, w, 3), np.uint8)
    image[:100] = (200, 210, 230)  # sky
    image[100:] = (40, 90, 50)  # land
    hole = np.zeros((h, w), bool)
    cv2.ellipse(hole.view(np.uint8), (150, 110), (60, 80), 0, 0, 360, 1, -1)  # the head, over the horizon
    filled = _row_fill(image, hole, 5).astype(int)
    assert np.abs(filled[40:92][hole[40:92]] - (200, 210, 230)).max() <= 1
    assert np.abs(filled[108:185][hole[108:185]] - (40, 90, 50)).max() <= 1
    assert np.array_equal(filled[~hole], image[~hole])


def test_deeper_in_only_the_mirrored_texture_is_kept_not_its_colours():
    """Mirrored far from the edge, whole colours broke into a patchwork wherever the nearest
    background pixel jumped (across the top edge they come from higher up, where the background is
    another colour). Past the fade, the smooth fill sets the colour and the mirror adds only grain."""
    rng = np.random.default_rng(3)
    h, w = 160, 240
    shade = np.linspace(50, 210, h)[:, None, None]  # darker at the top, lighter at the bottom
    image = np.clip(shade + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)  # ... and grainy
    hole = np.zeros((h, w), bool)
    hole[30:130, 60:180] = True
    out = _fill_person(image, hole, np.zeros((h, w), np.float32), fade=(3.0, 12.0), smooth=5).astype(float)
    smooth = _row_fill(image, hole, 5).astype(float)
    depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    deep = depth >= 12 + 4  # past the fade, and the 9 px blur below stays there
    assert deep.sum() > 3000
    colour_error = cv2.blur(out - smooth, (9, 9))
    assert np.abs(colour_error[deep]).mean() < 3  # the colour is the smooth fill's ...
    assert (out - smooth)[deep].std() > 10  # ... with grain on it
    whole = _fill_person(image, hole, np.zeros((h, w), np.float32), smooth=5).astype(float)  # no fade
    assert np.abs(cv2.blur(whole - smooth, (9, 9))[deep]).mean() > 10  # what whole colours did
    edge = hole & (depth <= 3.0)
    assert np.abs(out[edge] - whole[edge]).max() <= 1  # at the edge: the mirror, whole


def test_plain_walls_let_more_of_the_surroundings_move_with_the_head(media, s42):
    """Flyaway hair on a studio wall (s2) must move with the head: the mask reaches further out there
    than into the grass behind s42, where moving background would show."""
    def reach(portrait):
        animator = MeshAnimator()
        animator.set_source(portrait)
        x0, y0, x1, y1 = animator._roi
        core = person_mask(portrait.image)[y0:y1, x0:x1] >= 0.5
        widened = animator._layers.image_mask[y0:y1, x0:x1, 3] == 255
        face_width = np.ptp(portrait.landmarks.xy[list(oval_order()), 0])
        distance = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5)
        return np.percentile(distance[widened & ~core], 90) / face_width

    assert reach(load_portrait(media / "sources" / "s2.jpg")) > 0.15
    assert reach(s42) < 0.08


def test_the_face_always_moves_as_one_piece():
    image = np.full((200, 200, 3), 90, np.uint8)
    outline = np.array([[60, 50], [140, 50], [150, 120], [100, 170], [50, 120]], float)
    found = np.zeros((200, 200), np.float32)
    found[40:180, 55:145] = 1.0  # a person that misses the face's left and right edges
    layers = PersonLayers.split(image, found, outline)
    mask = layers.image_mask[..., 3]
    assert mask[120, 52] == 255 and mask[100, 148] == 255  # the face's edges, missed by the person
    assert mask[15, 15] == 0  # far outside both


def test_a_segmentation_that_misses_the_face_is_not_trusted(media, monkeypatch):
    """Face Mesh finds a "face" on a dog; the person segmentation does not. Keeping the background
    still there would tear the fur around that face: everything in the rings moves instead."""
    dog = load_portrait(media / "non-faces" / "dog.jpg")
    animator = MeshAnimator()
    kp = animator.set_source(dog)
    x0, y0, x1, y1 = animator._roi
    assert (animator._layers.image_mask[y0:y1, x0:x1, 3] == 255).all()
    seen = {}
    composite = PersonLayers.composite

    def spy(layers, source_map, out, roi):
        composite(layers, source_map, out, roi)
        seen["map"], seen["out"], seen["roi"] = source_map.copy(), out.copy(), roi

    monkeypatch.setattr(PersonLayers, "composite", spy)
    animator.render(Keypoints(_rotated(kp.value, 10.0, (8.0, 0.0))))
    # the output is the plain warp of the whole region: no still patches, no seams
    plain = cv2.remap(dog.image, seen["map"], None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x0, y0, x1, y1 = seen["roi"]
    assert np.array_equal(seen["out"][y0:y1, x0:x1], plain)


def test_a_strong_edge_beside_the_person_does_not_come_back_as_a_blob_deep_in_the_hole():
    """Deep in the hole the mirror adds only grain; an edge mirrored from beside the person (s42: a
    dark tree against the waterfall's white) came back as a dark blob where the head moved away. The
    grain is cut to the background's own usual grain (its 90th percentile), so the blob is gone and
    fine texture is kept."""
    rng = np.random.default_rng(5)
    h, w = 160, 240
    image = np.clip(150 + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)  # grainy grey wall
    hole = np.zeros((h, w), bool)
    hole[20:140, 60:180] = True
    image[74:80, 197:203] = 20  # a small dark patch beside the person (smaller than the local mean's 11 px)
    out = _fill_person(image, hole, np.zeros((h, w), np.float32), fade=(3.0, 12.0), smooth=5).astype(float)
    smooth = _row_fill(image, hole, 5).astype(float)
    # hole pixels past the fade whose mirror (across column 180) lands on the dark patch
    deep_blob = (slice(74, 80), slice(158, 164))
    assert (out - smooth)[deep_blob].mean() > -25  # the previous build: -90 (a dark blob)
    depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    deep = (depth >= 16) & hole
    deep[deep_blob] = False
    assert (out - smooth)[deep].std() > 5  # the wall's grain is still there
