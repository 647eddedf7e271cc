"""Face tracking: MediaPipe Face Mesh -> ``FaceLandmarks`` (478 points with irises) or ``NoFace``.

Portraits use still-image mode (a full detection per call); driving video uses tracking mode
(detection once, then landmark tracking, ~3 ms per frame here), optionally One-Euro filtered.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from engine.filters import LandmarkFilter, OneEuroSettings

# MediaPipe logs through glog/absl to stderr; keep a user's terminal readable.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Face Mesh works on a downscaled copy of huge images; landmarks come back in full-resolution pixels.
MAX_TRACKING_SIDE = 1280

# A Face Mesh landmark (NormalizedLandmark: x, y, z set) serialises to 17 bytes: its tag (0x0a) and
# length (15), then x, y and z, each a tag (0x0d, 0x15, 0x1d) and a little-endian float32.
_RECORD_TAGS = {0: 0x0A, 1: 0x0F, 2: 0x0D, 7: 0x15, 12: 0x1D}
_RECORD_FLOATS = np.r_[3:7, 8:12, 13:17]


def landmark_array(landmarks) -> np.ndarray:
    """(N, 3) float64 x, y, z of a MediaPipe ``NormalizedLandmarkList``.

    Read from its serialised bytes where they have the layout above (0.03 ms for 478 points; reading
    1434 attributes from Python took 0.28 ms a frame); attribute by attribute otherwise (a landmark
    with visibility or presence set, a field left unset)."""
    raw = np.frombuffer(landmarks.SerializeToString(), np.uint8)
    n = len(landmarks.landmark)
    if n and raw.size == 17 * n:
        records = raw.reshape(n, 17)
        if all(np.all(records[:, col] == tag) for col, tag in _RECORD_TAGS.items()):
            return records[:, _RECORD_FLOATS].copy().view("<f4").astype(np.float64)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float64).reshape(-1, 3)


@dataclass(frozen=True)
class FaceLandmarks:
    """478 face landmarks in pixel coordinates of their image: x, y, and z (depth, x's scale)."""

    points: np.ndarray  # (478, 3) float32
    image_size: tuple[int, int]  # (width, height)

    @property
    def xy(self) -> np.ndarray:
        return self.points[:, :2]

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the landmarks."""
        x0, y0 = self.points[:, :2].min(axis=0)
        x1, y1 = self.points[:, :2].max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


@dataclass(frozen=True)
class NoFace:
    """The tracker found no face in this image."""

    image_size: tuple[int, int]
    reason: str = "no face found"


class FaceTracker:
    """MediaPipe Face Mesh, one face. ``still=True`` for portraits, ``False`` for video frames.

    ``smoothing`` adds One-Euro filtering of the landmarks over time (video only), scale-free
    (``LandmarkFilter``: speed in inter-ocular distances, so the settings mean the same at any
    resolution); timestamps are the frames' capture times in seconds.
    """

    def __init__(self, still: bool = False, smoothing: OneEuroSettings | None = None,
                 min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self.still = still
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=still,
            max_num_faces=1,
            refine_landmarks=True,  # adds the 10 iris points: gaze transfer needs them
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=0.5,
        )
        self._filter = LandmarkFilter(smoothing) if smoothing is not None and not still else None

    def set_smoothing(self, smoothing: OneEuroSettings | None) -> None:
        self._filter = LandmarkFilter(smoothing) if smoothing is not None and not self.still else None

    def reset(self) -> None:
        if self._filter is not None:
            self._filter.reset()

    def track(self, image: np.ndarray, t: float | None = None) -> FaceLandmarks | NoFace:
        """Landmarks of the most prominent face in an RGB uint8 image."""
        h, w = image.shape[:2]
        scale = min(1.0, MAX_TRACKING_SIDE / max(h, w))
        small = image
        if scale < 1.0:
            import cv2

            small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        result = self._mesh.process(np.ascontiguousarray(small))
        if not result.multi_face_landmarks:
            if self._filter is not None:
                self._filter.reset()
            return NoFace((w, h))
        pts = landmark_array(result.multi_face_landmarks[0])
        pts *= (w, h, w)
        if self._filter is not None and t is not None:
            pts = self._filter(pts, t)
        return FaceLandmarks(points=pts.astype(np.float32), image_size=(w, h))

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
