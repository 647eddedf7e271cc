"""Pose alignment score and steadiness detector (engine/alignment.py, used by the live app)."""
import numpy as np

from engine.alignment import PoseAlignment, SteadyDetector
from engine.tracking import FaceLandmarks, NoFace


def _face(seed=0, angle=0.0, scale=1.0, shift=(0.0, 0.0)):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(478, 3)).astype(np.float32) * 50
    c, s = np.cos(angle), np.sin(angle)
    xy = pts[:, :2] @ np.array([[c, -s], [s, c]], np.float32).T
    pts[:, :2] = xy * scale + np.array(shift, np.float32) + 300
    pts[:, 2] *= scale
    return FaceLandmarks(points=pts, image_size=(640, 480))


def test_score_ignores_position_and_size_but_not_rotation():
    a = PoseAlignment(_face())
    assert a.score(_face()) > 99.9
    assert a.score(_face(scale=1.7, shift=(120, -40))) > 99.9
    tilted = a.score(_face(angle=0.15))
    assert 5 < tilted < 90
    assert a.score(_face(angle=0.3)) < tilted
    assert a.score(_face(seed=1)) < 5  # another face shape entirely


def test_steady_detector_fires_once_after_still_frames():
    d = SteadyDetector(frames=5, threshold=0.01)
    moving = [_face(angle=0.1 * i) for i in range(10)]
    assert not any(d.update(f) for f in moving)
    fired = [d.update(_face(angle=0.5)) for _ in range(10)]
    assert fired.count(True) == 1 and fired.index(True) == 5
    assert not d.update(_face(angle=0.5))
    d.reset()
    assert not d.update(NoFace((640, 480)))
