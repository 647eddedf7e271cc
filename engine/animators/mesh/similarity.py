"""The least-squares 2-D similarity between two point sets: the head's rigid motion, a lid's."""
from __future__ import annotations

import numpy as np


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (rotation, scale, shift; no reflection) with dst ≈ src @ a.T + t;
    identity if degenerate.

    In 2-D the best a = [[p, -q], [q, p]] is closed-form: as complex numbers, p + iq is
    sum(conj(s) d) / sum(|s|^2) over the centred points (what Umeyama's SVD gives, to 3e-14, at half
    the time)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - ms, dst - md
    var = (s0 ** 2).sum()
    if not np.isfinite(var) or var < 1e-9:
        return np.eye(2), md - ms if np.all(np.isfinite(md - ms)) else np.zeros(2)
    p = (s0 * d0).sum() / var
    q = (s0[:, 0] * d0[:, 1] - s0[:, 1] * d0[:, 0]).sum() / var
    a = np.array([[p, -q], [q, p]])
    return a, md - ms @ a.T


def as_matrix(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The 2x3 matrix [a | t] (for cv2.warpAffine)."""
    return np.hstack([a, np.reshape(t, (2, 1))])
