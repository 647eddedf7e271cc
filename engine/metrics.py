"""Quality metrics of an animation, from Face Mesh landmarks of driver and output frames.

All are scale-free so a 480² driver and a 1280-tall portrait compare directly:
- eye openness: eye aspect ratio (mean of both eyes) per frame;
- mouth openness: inner-lip aspect ratio per frame;
- head pose: yaw / pitch / roll in degrees relative to the clip's first frame, from a Kabsch fit of
  the rigid 3-D landmarks (centred, scale-normalised) of each frame onto the first;
- jitter: median over frames of the mean landmark second difference |x[t+1] - 2 x[t] + x[t-1]|,
  over the inter-ocular distance (shaking, not smooth motion, dominates it);
- correlation over time and amplitude ratio (std of output / std of driver) between two series.
"""
from __future__ import annotations

import numpy as np

from engine.face_regions import LEFT_EYE_EAR, MOUTH_INNER, RIGHT_EYE_EAR, RIGID, aspect_ratio

POSE_AXES = ("yaw", "pitch", "roll")
_RIGID = np.array(RIGID)


def eye_aspect_ratio(points: np.ndarray) -> float:
    """Mean of both eyes' aspect ratio (open eye ≈ 0.25–0.35, closed ≈ 0.05)."""
    return 0.5 * (aspect_ratio(points, RIGHT_EYE_EAR) + aspect_ratio(points, LEFT_EYE_EAR))


def eye_aspect_ratios(points: np.ndarray) -> tuple[float, float]:
    """(subject's right, left) eye aspect ratio."""
    return aspect_ratio(points, RIGHT_EYE_EAR), aspect_ratio(points, LEFT_EYE_EAR)


def mouth_aspect_ratio(points: np.ndarray) -> float:
    """Inner-lip gap over mouth width (closed ≈ 0, wide open ≈ 0.5+)."""
    return aspect_ratio(points, MOUTH_INNER)


def inter_ocular(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[33, :2] - points[263, :2]))


def _normalised_rigid(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64)[_RIGID, :3]
    p = p - p.mean(axis=0)
    return p / max(np.sqrt((p ** 2).sum(axis=1).mean()), 1e-9)


def kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation R (3x3, det +1) minimising |R a_i - b_i| for centred point sets a, b (N, 3)."""
    h = a.T @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def rotation_to_euler(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw about y, pitch about x, roll about z) in degrees, for R = Rz(roll) Ry(yaw) Rx(pitch)."""
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


def head_pose_series(points_seq) -> np.ndarray:
    """(T, 3) yaw, pitch, roll in degrees relative to the first non-None frame; NaN rows for None."""
    out = np.full((len(points_seq), 3), np.nan)
    ref = None
    for i, pts in enumerate(points_seq):
        if pts is None:
            continue
        p = _normalised_rigid(pts)
        if ref is None:
            ref = p
        out[i] = rotation_to_euler(kabsch(ref, p))
    return out


def jitter(points_seq) -> float:
    """Median over frames of the mean landmark second difference, in inter-ocular distances.

    Only consecutive triples of frames that all have a face count. NaN when there are none.
    """
    values = []
    iod = np.nanmedian([inter_ocular(p) for p in points_seq if p is not None] or [np.nan])
    for a, b, c in zip(points_seq, points_seq[1:], points_seq[2:]):
        if a is None or b is None or c is None:
            continue
        acc = np.asarray(a, np.float64)[:, :2] - 2 * np.asarray(b, np.float64)[:, :2] + np.asarray(c, np.float64)[:, :2]
        values.append(np.linalg.norm(acc, axis=1).mean())
    if not values or not np.isfinite(iod) or iod <= 0:
        return float("nan")
    return float(np.median(values) / iod)


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def correlation(a, b) -> float:
    """Pearson correlation over the frames where both are finite; NaN if either is constant."""
    a, b = _paired(a, b)
    if a.size < 3 or a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def amplitude_ratio(output, driver) -> float:
    """std(output) / std(driver) over the frames where both are finite."""
    o, d = _paired(output, driver)
    if o.size < 2 or d.std() < 1e-12:
        return float("nan")
    return float(o.std() / d.std())


def mean_abs_error(a, b) -> float:
    a, b = _paired(a, b)
    return float(np.abs(a - b).mean()) if a.size else float("nan")
