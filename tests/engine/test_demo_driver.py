"""DemoDriver: deterministic procedural landmarks with blinks, gaze, talking, smiles and head turns."""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from engine.capture import Frame
from engine.demo_driver import DemoDriver, Expression, build_neutral, neutral_face
from engine.face_regions import LEFT_EYE_EAR, MOUTH_INNER, RIGHT_EYE_EAR, aspect_ratio
from engine.tracking import FaceLandmarks


@pytest.fixture(scope="module")
def ten_seconds():
    return list(DemoDriver(fps=30, n_frames=300, seed=0, draw=False))


def series(frames, spec):
    return np.array([aspect_ratio(f.landmarks.points, spec) for f in frames])


def iris_offset(points):
    """Right iris centre across the eye, 0 = inner corner .. 1 = outer corner."""
    a, b = points[133, :2], points[33, :2]
    return float(np.dot(points[468, :2] - a, b - a) / np.dot(b - a, b - a))


def yaw_proxy(points):
    """Nose tip between the cheeks: about 0.5 when frontal, moves with head turns."""
    return float((points[1, 0] - points[234, 0]) / (points[454, 0] - points[234, 0]))


def test_frames_are_frames_with_landmarks(ten_seconds):
    assert len(ten_seconds) == 300
    f = ten_seconds[42]
    assert isinstance(f, Frame) and f.index == 42
    assert isinstance(f.landmarks, FaceLandmarks)
    assert f.landmarks.points.shape == (478, 3) and f.landmarks.points.dtype == np.float32
    assert f.landmarks.image_size == (512, 512) and f.image.shape == (512, 512, 3)
    x0, y0, x1, y1 = f.landmarks.bbox()
    assert 0 < x0 < x1 < 512 and 0 < y0 < y1 < 512  # the face stays inside the picture
    # Timestamps advance by one frame period.
    assert ten_seconds[30].t_capture - ten_seconds[0].t_capture == pytest.approx(1.0)


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = [f.landmarks.points for f in DemoDriver(n_frames=60, seed=7, draw=False)]
    b = [f.landmarks.points for f in DemoDriver(n_frames=60, seed=7, draw=False)]
    c = [f.landmarks.points for f in DemoDriver(n_frames=60, seed=8, draw=False)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert max(np.abs(x - y).max() for x, y in zip(a, c)) > 1.0


def test_random_access_matches_iteration():
    driver = DemoDriver(fps=25, n_frames=100, seed=3, draw=False)
    frames = list(driver)
    assert np.array_equal(driver.points_at(77 / 25), frames[77].landmarks.points)
    # An endless driver produces the same face as a finite one at the same time.
    endless = DemoDriver(fps=25, n_frames=None, seed=3, draw=False)
    assert np.array_equal(next(itertools.islice(iter(endless), 77, None)).landmarks.points,
                          frames[77].landmarks.points)
    with pytest.raises(TypeError):
        len(endless)


def test_frame_zero_is_the_neutral_frontal_face(ten_seconds):
    driver = DemoDriver(n_frames=1, draw=False)
    assert driver.expression_at(0.0) == Expression()
    neutral = neutral_face()
    placed = neutral * (0.5 * 512) + np.array([256, 256, 0])
    np.testing.assert_allclose(ten_seconds[0].landmarks.points, placed, atol=1e-3)
    assert aspect_ratio(neutral, MOUTH_INNER) < 0.05  # closed mouth
    assert aspect_ratio(neutral, RIGHT_EYE_EAR) > 0.25  # open eyes


def test_blinks_both_eyes_within_ten_seconds(ten_seconds):
    for spec in (RIGHT_EYE_EAR, LEFT_EYE_EAR):
        ear = series(ten_seconds, spec)
        closed = ear < 0.35 * ear[0]
        starts = np.flatnonzero(closed[1:] & ~closed[:-1])
        assert len(starts) >= 2, f"expected at least two blinks, EAR min {ear.min():.3f}"
        assert closed.mean() < 0.2  # eyes are open most of the time


def test_talking_opens_and_closes_the_mouth(ten_seconds):
    mar = series(ten_seconds, MOUTH_INNER)
    assert mar.max() > 0.25  # clearly open (the shared driving videos reach 0.2-0.5)
    assert (mar < 0.03).mean() > 0.2  # and closed at times
    # Syllables: many open/close cycles, not one slow opening.
    opens = np.flatnonzero((mar[1:] > 0.12) & (mar[:-1] <= 0.12))
    assert len(opens) >= 8


def test_gaze_smile_and_head_turns_vary(ten_seconds):
    gaze = np.array([iris_offset(f.landmarks.points) for f in ten_seconds])
    assert np.ptp(gaze) > 0.15
    yaw = np.array([yaw_proxy(f.landmarks.points) for f in ten_seconds])
    assert abs(yaw[0] - yaw_proxy(neutral_face())) < 1e-6
    assert np.ptp(yaw) > 0.1
    driver = DemoDriver(n_frames=1, draw=False)
    smiles = [driver.expression_at(t).smile for t in np.arange(0, 10, 1 / 30)]
    assert max(smiles) > 0.5
    width = [np.linalg.norm(f.landmarks.points[61, :2] - f.landmarks.points[291, :2]) for f in ten_seconds]
    assert max(width) > 1.05 * width[0]  # mouth corners move out when smiling
    angles = [driver.expression_at(t) for t in np.arange(0, 20, 0.1)]
    assert max(abs(e.yaw) for e in angles) > 8 and max(abs(e.yaw) for e in angles) <= 25
    assert max(abs(e.pitch) for e in angles) <= 25 and max(abs(e.roll) for e in angles) <= 25


def test_preview_drawing_and_realtime_pacing():
    driver = DemoDriver(fps=60, n_frames=7, size=(320, 240), realtime=True)
    start = time.monotonic()
    frames = list(driver)
    assert time.monotonic() - start >= 6 / 60 - 0.01
    image = frames[3].image
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    background = np.array([24, 26, 32])
    drawn = np.any(image != background, axis=2)
    assert 0.01 < drawn.mean() < 0.5  # lines were drawn, around the face only
    x0, y0, x1, y1 = frames[3].landmarks.bbox()
    ys, xs = np.nonzero(drawn)
    assert xs.min() >= x0 - 8 and xs.max() <= x1 + 8 and ys.min() >= y0 - 8 and ys.max() <= y1 + 8


def test_bundled_neutral_matches_its_avatar():
    """The stored neutral face is what build_neutral() makes from the bundled portrait."""
    np.testing.assert_allclose(build_neutral(), neutral_face(), atol=2e-3)
