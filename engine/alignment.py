"""Pose alignment between the driver and the avatar, and steadiness of the driver (for calibration).

The GUI shows ``PoseAlignment.score`` live so users know when to calibrate (relative motion works
best when the reference driving pose matches the portrait's pose), and auto-calibrates on the first
frame ``SteadyDetector`` calls steady. Pure numpy, no Qt.
"""
from __future__ import annotations

import numpy as np

from engine.tracking import FaceLandmarks

# Distance (in face sizes) at which the score has fallen to about 37 %.
_SCORE_SCALE = 0.2


def _normalized(points: np.ndarray) -> np.ndarray:
    """Landmarks without translation and scale (rotation kept: a turned head should score lower)."""
    p = np.asarray(points, dtype=np.float64)[:468]  # the face mesh, without the iris points
    p = p - p.mean(axis=0)
    size = np.sqrt((p[:, :2] ** 2).sum(axis=1).mean())
    return p / max(size, 1e-9)


class PoseAlignment:
    """How well the driver's head pose and expression match the avatar's, 0 (far off) to 100."""

    def __init__(self, avatar: FaceLandmarks):
        self._avatar = _normalized(avatar.points)

    def distance(self, face: FaceLandmarks) -> float:
        d = _normalized(face.points) - self._avatar
        return float(np.sqrt((d ** 2).sum(axis=1).mean()))

    def score(self, face: FaceLandmarks) -> float:
        return float(100.0 * np.exp(-(self.distance(face) / _SCORE_SCALE) ** 2))


class SteadyDetector:
    """Says ``True`` once, on the first frame after ``frames`` frames of little motion.

    Motion is the mean landmark displacement between consecutive frames, in face sizes.
    """

    def __init__(self, frames: int = 8, threshold: float = 0.006):
        self.frames = frames
        self.threshold = threshold
        self.done = False
        self._previous: np.ndarray | None = None
        self._still = 0

    def reset(self) -> None:
        self.done = False
        self._previous = None
        self._still = 0

    def update(self, face) -> bool:
        if self.done or not isinstance(face, FaceLandmarks):
            self._previous = None if not isinstance(face, FaceLandmarks) else self._previous
            return False
        p = np.asarray(face.points[:468, :2], dtype=np.float64)
        size = max(float(np.ptp(p[:, 0])), float(np.ptp(p[:, 1])), 1e-9)
        if self._previous is not None:
            motion = float(np.linalg.norm(p - self._previous, axis=1).mean()) / size
            self._still = self._still + 1 if motion < self.threshold else 0
        self._previous = p
        if self._still >= self.frames:
            self.done = True
            return True
        return False
