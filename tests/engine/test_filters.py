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
