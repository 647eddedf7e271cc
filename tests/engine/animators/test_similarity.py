"""fit_similarity: the least-squares 2-D similarity (no reflection) between point sets."""
import numpy as np

from engine.animators.mesh.similarity import as_matrix, fit_similarity


def test_recovers_a_known_similarity_exactly():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 2)) * 100
    angle, scale, shift = 0.4, 1.7, np.array([12.0, -5.0])
    a_true = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    a, t = fit_similarity(src, src @ a_true.T + shift)
    np.testing.assert_allclose(a, a_true, atol=1e-12)
    np.testing.assert_allclose(t, shift, atol=1e-9)
    np.testing.assert_allclose(as_matrix(a, t), np.hstack([a_true, shift[:, None]]), atol=1e-9)


def test_matches_the_svd_solution_and_never_reflects():
    """Against Umeyama's SVD solution (with its reflection guard) on noisy, random and mirrored sets."""
    rng = np.random.default_rng(2)
    for k in range(200):
        src = rng.normal(size=(12, 2)) * 50
        dst = src * [-1.0, 1.0] if k % 2 else rng.normal(size=(12, 2)) * 50  # mirrored, or unrelated
        dst = dst + rng.normal(size=dst.shape)
        a, t = fit_similarity(src, dst)
        s0, d0 = src - src.mean(axis=0), dst - dst.mean(axis=0)
        u, sig, vt = np.linalg.svd(d0.T @ s0)
        flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
        expected = (sig * np.diag(flip)).sum() / (s0 ** 2).sum() * (u @ flip @ vt)
        np.testing.assert_allclose(a, expected, atol=1e-12)
        assert np.linalg.det(a) >= 0


def test_degenerate_points_give_a_shift_only():
    a, t = fit_similarity(np.ones((5, 2)), np.ones((5, 2)) + [3.0, 4.0])
    np.testing.assert_array_equal(a, np.eye(2))
    np.testing.assert_allclose(t, [3.0, 4.0])
