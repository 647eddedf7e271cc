"""Person segmentation of portraits: real MediaPipe Selfie Segmentation on real portraits."""
import numpy as np

from engine.portrait import load_portrait
from engine.segmentation import person_mask


def test_the_person_is_found_and_the_background_is_not(media):
    portrait = load_portrait(media / "sources" / "s42.jpg")
    mask = person_mask(portrait.image)
    assert mask.shape == portrait.image.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    xy = portrait.landmarks.xy
    for i in (1, 10, 152, 234, 454):  # nose tip, forehead, chin, both cheeks
        x, y = np.round(xy[i]).astype(int)
        assert mask[y, x] == 1.0
    # the waterfall and the grass in the top corners, beside the head
    assert mask[:60, :60].max() == 0.0 and mask[:60, -60:].max() == 0.0
    # the mask hugs the person: half of this head-and-shoulders photo or so, not all of it
    assert 0.3 < (mask > 0.5).mean() < 0.75


def test_an_image_without_a_person_has_an_empty_mask():
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert (person_mask(flat) > 0.5).mean() < 0.01
