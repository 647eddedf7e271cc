"""Quality metrics: hand-made landmark sets with known answers."""
import math

import numpy as np
import pytest

from engine import metrics
from engine.face_regions import RIGID


def _face(seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-1, 1, (478, 3)) * [100, 120, 40] + [300, 300, 0]
    return pts


def _rot(yaw, pitch, roll):
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_eye_and_mouth_aspect_ratios_hand_computed():
    pts = np.zeros((478, 3))
    # right eye: corners 33, 133 are 30 px apart; lid pairs 9 px apart -> 0.3
    pts[33, :2], pts[133, :2] = (0, 0), (30, 0)
    for u, d in ((160, 144), (159, 145), (158, 153)):
        pts[u, :2], pts[d, :2] = (15, -4.5), (15, 4.5)
    pts[362, :2], pts[263, :2] = (60, 0), (90, 0)
    for u, d in ((385, 380), (386, 374), (387, 373)):
        pts[u, :2], pts[d, :2] = (75, -1.5), (75, 1.5)  # left eye nearly closed: 0.1
    assert metrics.eye_aspect_ratios(pts) == pytest.approx((0.3, 0.1))
    assert metrics.eye_aspect_ratio(pts) == pytest.approx(0.2)
    pts[78, :2], pts[308, :2] = (0, 100), (50, 100)
    for u, d in ((82, 87), (13, 14), (312, 317)):
        pts[u, :2], pts[d, :2] = (25, 95), (25, 105)
    assert metrics.mouth_aspect_ratio(pts) == pytest.approx(0.2)


@pytest.mark.parametrize("angles", [(10, 0, 0), (0, -8, 0), (0, 0, 15), (12, -7, 5)])
def test_head_pose_recovers_known_rotations(angles):
    base = _face()
    centre = base[list(RIGID)].mean(axis=0)
    r = _rot(*angles)
    moved = (base - centre) @ r.T * 1.7 + centre + [40, -10, 3]  # rotation + scale + shift
    pose = metrics.head_pose_series([base, None, moved])
    assert np.allclose(pose[0], 0, atol=1e-9)
    assert np.all(np.isnan(pose[1]))
    assert pose[2] == pytest.approx(angles, abs=1e-6)


def test_jitter_measures_shake_not_smooth_motion_and_is_scale_free():
    base = _face()
    t = np.arange(30)
    smooth = [base + [2.0 * k, 0, 0] for k in t]  # constant velocity: zero second difference
    assert metrics.jitter(smooth) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(3)
    noisy = [p + np.concatenate([rng.normal(0, 1.0, (478, 2)), np.zeros((478, 1))], axis=1) for p in smooth]
    j = metrics.jitter(noisy)
    assert j > 0
    # the same shake on a face twice as large, in pixels twice as large, is the same jitter
    big = [np.concatenate([2 * p[:, :2], p[:, 2:]], axis=1) for p in noisy]
    assert metrics.jitter(big) == pytest.approx(j, rel=1e-9)
    # frames without a face break the triples they are in, not the measure
    gappy = list(noisy)
    gappy[10] = None
    assert metrics.jitter(gappy) == pytest.approx(j, rel=0.3)
    assert math.isnan(metrics.jitter([None, None, None]))


def test_correlation_and_amplitude():
    a = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    assert metrics.correlation(a, 2 * a + 1) == pytest.approx(1.0)
    assert metrics.correlation(a, -a) == pytest.approx(-1.0)
    assert math.isnan(metrics.correlation(a, np.ones(5)))
    assert metrics.amplitude_ratio(0.5 * a, a) == pytest.approx(0.5)
    assert metrics.mean_abs_error([1.0, 2.0, np.nan], [2.0, 0.0, 5.0]) == pytest.approx(1.5)
