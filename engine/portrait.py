"""Portraits: load an image file of any common kind as RGB uint8 and find its face once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import SourceImageError
from engine.tracking import FaceLandmarks, FaceTracker, NoFace

# A 10000x10000 photo is 300 MB as RGB; portraits are animated at most at this size (long side).
MAX_PORTRAIT_SIDE = 2048


@dataclass(frozen=True)
class Portrait:
    """The still image to animate and its face landmarks (same pixel coordinates)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: FaceLandmarks
    name: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    def resized(self, size: tuple[int, int]) -> "Portrait":
        """The same portrait at ``size`` (width, height), landmarks scaled along (no re-detection)."""
        import cv2

        w, h = size
        sx, sy = w / self.size[0], h / self.size[1]
        image = cv2.resize(self.image, (w, h), interpolation=cv2.INTER_AREA)
        points = self.landmarks.points * np.array([sx, sy, sx], np.float32)
        return Portrait(image=image, landmarks=FaceLandmarks(points=points, image_size=(w, h)), name=self.name)


def read_image(path) -> np.ndarray:
    """Any image file -> RGB uint8: grayscale, RGBA (composited on white), 16-bit all handled."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise SourceImageError(f"source image not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, _decode_flags(path, data)) if data.size else None
    if image is None:
        raise SourceImageError(f"cannot read source image {path.name}: not an image, or the file is damaged")
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB).astype(np.float32)
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (rgb * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return fit_within(image, MAX_PORTRAIT_SIDE)


def _decode_flags(path: Path, data: np.ndarray) -> int:
    """JPEG: colour with the EXIF rotation applied (phone photos), decoded at 1/2, 1/4 or 1/8 size
    when even that exceeds MAX_PORTRAIT_SIDE (a 10000² photo never occupies 300 MB).
    Other formats: as stored, so alpha and 16-bit survive (EXIF rotation is a JPEG matter)."""
    import cv2

    if data[:2].tobytes() != b"\xff\xd8":
        return cv2.IMREAD_UNCHANGED
    try:
        import warnings

        from PIL import Image

        with warnings.catch_warnings():  # a huge photo is expected here, not a decompression bomb
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                long_side = max(im.size)
    except Exception:  # damaged header: let OpenCV decide and report
        return cv2.IMREAD_COLOR
    for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                         (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if long_side / factor >= MAX_PORTRAIT_SIDE:
            return flag
    return cv2.IMREAD_COLOR


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def find_face(image: np.ndarray, name: str = "image") -> FaceLandmarks:
    with FaceTracker(still=True) as tracker:
        face = tracker.track(image)
    if isinstance(face, NoFace):
        raise SourceImageError(f"no face found in source image {name}")
    return face


def load_portrait(path) -> Portrait:
    """Read an image and find its face; ``SourceImageError`` with one clear line otherwise."""
    path = Path(path)
    image = read_image(path)
    return Portrait(image=image, landmarks=find_face(image, path.name), name=path.stem)


def portrait_from_array(image: np.ndarray, name: str = "portrait") -> Portrait:
    image = fit_within(np.ascontiguousarray(image[:, :, :3]), MAX_PORTRAIT_SIDE)
    return Portrait(image=image, landmarks=find_face(image, name), name=name)
