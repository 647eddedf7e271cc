import numpy as np

from engine.filters import OneEuroFilter, OneEuroSettings


def test_constant_signal_passes_unchanged():
    f = OneEuroFilter()
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    for i in range(10):
        out = f(x, i / 30)
    np.testing.assert_allclose(out, x)


def test_reduces_jitter_of_a_still_point():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, size=(300, 2))
    f = OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.0))
    out = np.array([f(n, i / 30) for i, n in enumerate(noise)])
    assert out[30:].std() < 0.45 * noise[30:].std()


def test_follows_fast_motion_with_small_lag_when_beta_high():
    t = np.arange(60) / 30
    ramp = 300.0 * t  # 300 px/s
    lagging = OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.0))
    following = OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=1.0))
    lag_slow = [ramp[i] - lagging(np.array([ramp[i]]), t[i])[0] for i in range(60)][-1]
    lag_fast = [ramp[i] - following(np.array([ramp[i]]), t[i])[0] for i in range(60)][-1]
    assert lag_fast < 0.2 * lag_slow
    assert lag_fast < 3.0


def test_repeated_timestamp_does_not_divide_by_zero():
    f = OneEuroFilter()
    f(np.zeros(3), 1.0)
    out = f(np.ones(3), 1.0)
    assert np.all(np.isfinite(out)) and np.all(out > 0) and np.all(out < 1)


def test_reset_forgets_history():
    f = OneEuroFilter()
    f(np.zeros(2), 0.0)
    f.reset()
    np.testing.assert_array_equal(f(np.full(2, 5.0), 0.1), np.full(2, 5.0))


def _face_like(rng, n=478, size=100.0):
    pts = rng.uniform(0, size, size=(n, 3))
    pts[33, :2], pts[263, :2] = (30.0, 40.0), (70.0, 40.0)  # eye corners: 40 px apart
    return pts


def test_landmark_filter_is_scale_free():
    from engine.filters import LandmarkFilter

    rng = np.random.default_rng(1)
    base = _face_like(rng)
    t = np.arange(90) / 30
    # head moving (fast sine) with per-frame tracker noise, seen at 1x and at 6x the resolution
    motion = [base + np.array([25 * np.sin(3 * ti), 10 * np.cos(2 * ti), 0]) + rng.normal(0, 0.5, base.shape)
              for ti in t]
    small, big = LandmarkFilter(OneEuroSettings(min_cutoff=1.0, beta=0.5)), LandmarkFilter(OneEuroSettings(min_cutoff=1.0, beta=0.5))
    out_small = np.array([small(m, ti) for m, ti in zip(motion, t)])
    out_big = np.array([big(6.0 * m, ti) for m, ti in zip(motion, t)])
    np.testing.assert_allclose(out_big, 6.0 * out_small, rtol=1e-9, atol=1e-9)
    # ... whereas the pixel-unit filter smooths the big face differently (beta means more there)
    px_small, px_big = OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.5)), OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.5))
    a = np.array([px_small(m, ti) for m, ti in zip(motion, t)])
    b = np.array([px_big(6.0 * m, ti) for m, ti in zip(motion, t)])
    assert np.abs(b - 6.0 * a).max() > 1.0


def test_landmark_filter_smooths_a_still_face_and_follows_a_fast_one():
    from engine.filters import LandmarkFilter

    rng = np.random.default_rng(2)
    base = _face_like(rng)
    still = LandmarkFilter()
    # tracker-like noise: 0.3% of the inter-ocular distance per frame
    noisy = [base + rng.normal(0, 0.12, base.shape) for _ in range(120)]
    out = np.array([still(p, i / 30) for i, p in enumerate(noisy)])
    raw_acc = np.abs(np.diff(np.array(noisy)[30:], n=2, axis=0)).mean()
    assert np.abs(np.diff(out[30:], n=2, axis=0)).mean() < 0.3 * raw_acc
    moving = LandmarkFilter()
    t = np.arange(60) / 30
    for ti in t:  # the face sweeps 4 inter-ocular distances per second
        last = moving(base + np.array([160.0 * ti, 0, 0]), ti)
    assert 160.0 * t[-1] - (last[:, 0] - base[:, 0]).mean() < 0.1 * 40  # lag < 0.1 IOD


def test_landmark_filter_reset_and_non_face_shapes():
    from engine.filters import LandmarkFilter

    f = LandmarkFilter()
    f(np.zeros((5, 2)), 0.0)
    out = f(np.ones((5, 2)), 0.1)
    assert np.all(np.isfinite(out))
    f.reset()
    np.testing.assert_array_equal(f(np.full((5, 2), 3.0), 0.2), np.full((5, 2), 3.0))


def _similarity_residual(shape: np.ndarray, moved: np.ndarray) -> float:
    """Largest distance between ``moved`` and the best 2-D similarity image of ``shape``."""
    from engine.animators.mesh.similarity import fit_similarity

    a, t = fit_similarity(shape, moved)
    return float(np.abs(shape @ a.T + t - moved).max())


def test_landmark_filter_keeps_the_face_shape_while_the_head_moves():
    """A face that only turns, scales and shifts in the image stays the same shape after filtering
    (every part sees the same speed then). A cutoff per coordinate changes it (measured below)."""
    from engine.filters import LANDMARK_UNIT, LandmarkFilter

    rng = np.random.default_rng(3)
    base = _face_like(rng)[:, :2]  # 478 points: the per-part speeds are in play
    centre = base.mean(axis=0)
    t = np.arange(90) / 30
    frames = []
    for ti in t:  # a head rolling, bobbing and leaning in, with changing speed
        ang, s = 0.4 * np.sin(2.5 * ti), 1.0 + 0.2 * np.sin(1.7 * ti)
        r = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        frames.append((base - centre) @ r.T + centre + [30 * np.sin(3 * ti), 12 * np.cos(2 * ti)])
    shared = LandmarkFilter()
    out = [shared(f, ti) for f, ti in zip(frames, t)]
    assert max(_similarity_residual(base, o) for o in out) < 1e-6
    element_wise = OneEuroFilter(OneEuroSettings())
    unit = 40.0 * LANDMARK_UNIT  # the same speed unit (eye corners 40 px apart)
    distorted = [element_wise(f, ti, scale=unit) for f, ti in zip(frames, t)]
    assert max(_similarity_residual(base, o) for o in distorted) > 0.5  # px, on a 40 px IOD face


def test_landmark_filter_adds_no_shake_to_a_real_moving_driver(media):
    """d11 moves its head a lot: the filter must not make its landmarks shake more than the raw
    tracker output (second difference, the quality metric's jitter). Element-wise cutoffs did (1.3x)."""
    from engine import metrics
    from engine.capture import VideoFileSource
    from engine.filters import LandmarkFilter
    from engine.tracking import FaceLandmarks, FaceTracker

    tracker = FaceTracker(still=False)
    raw = []
    try:
        for frame in VideoFileSource(media / "driving" / "d11.mp4", max_frames=150):
            face = tracker.track(frame.image, frame.index / 30)
            raw.append(face.points.astype(np.float64) if isinstance(face, FaceLandmarks) else None)
    finally:
        tracker.close()
    assert sum(p is not None for p in raw) == len(raw) == 150
    t = np.arange(len(raw)) / 30
    shared = LandmarkFilter()
    filtered = [shared(p, ti) for p, ti in zip(raw, t)]
    element_wise = OneEuroFilter(OneEuroSettings())
    per_coordinate = [element_wise(p, ti, scale=LandmarkFilter.unit(p)) for p, ti in zip(raw, t)]
    j_raw, j_shared, j_elem = (metrics.jitter(s) for s in (raw, filtered, per_coordinate))
    assert j_shared <= 1.05 * j_raw
    assert j_elem > 1.1 * j_raw  # what the shared cutoff fixes: the check can tell them apart


def test_a_blink_opens_its_eyes_cutoff_while_the_rest_of_a_still_face_stays_smoothed():
    """Per-part speed: an eye closing fast on a still, noisy face is followed closely; a still part's
    noise is smoothed as before (one speed for the whole face would lag the blink)."""
    from engine.face_regions import RIGHT_EYE
    from engine.filters import LandmarkFilter, OneEuroFilter, face_speed

    rng = np.random.default_rng(5)
    base = _face_like(rng)
    lid = [i for i in RIGHT_EYE if base[i, 1] < 100]  # every right-eye point moves down together
    t = np.arange(40) / 30
    frames = []
    for ti in t:
        f = base + rng.normal(0, 0.05, base.shape)
        if ti >= 0.5:  # the lid drops 8 px (a fifth of the IOD) in 3 frames, then stays
            f[lid, 1] += 8.0 * min((ti - 0.5) * 10, 1.0)
        frames.append(f)
    part = LandmarkFilter()
    whole = OneEuroFilter(OneEuroSettings(), speed=lambda dx, x: np.hypot(dx[:, 0], dx[:, 1]).mean())
    out_part = np.array([part(f, ti) for f, ti in zip(frames, t)])
    out_whole = np.array([whole(f, ti, scale=LandmarkFilter.unit(f)) for f, ti in zip(frames, t)])
    k = int(0.6 * 30) + 1  # 0.1 s after the lid reached its place
    follow_part = (out_part[k, lid, 1] - base[lid, 1]).mean()
    follow_whole = (out_whole[k, lid, 1] - base[lid, 1]).mean()
    assert follow_part > 6.0 and follow_part > follow_whole + 1.0
    # the still cheek points are smoothed (second difference well under the raw noise's)
    still = [i for i in range(478) if i not in lid]
    raw_acc = np.abs(np.diff(np.array(frames)[:15, still], n=2, axis=0)).mean()
    assert np.abs(np.diff(out_part[5:15, still], n=2, axis=0)).mean() < 0.5 * raw_acc
    assert face_speed(np.zeros((478, 3)), base).shape == (478, 1)
