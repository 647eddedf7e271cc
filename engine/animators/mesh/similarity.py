"""The least-squares 2-D similarity between two point sets: the head's rigid motion, a lid's."""
from __future__ import annotations

import numpy as np


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama) with dst ≈ src @ A.T + t; identity if degenerate."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - ms, dst - md
    var = (s0 ** 2).sum()
    if not np.isfinite(var) or var < 1e-9:
        return np.eye(2), md - ms if np.all(np.isfinite(md - ms)) else np.zeros(2)
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    dmat = np.diag([1.0, d])
    r = u @ dmat @ vt
    scale = (sig * np.diag(dmat)).sum() / (var / len(src))
    a = scale * r
    return a, md - ms @ a.T


def as_matrix(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The 2x3 matrix [a | t] (for cv2.warpAffine)."""
    return np.hstack([a, np.reshape(t, (2, 1))])
