"""Relative motion: FOMM's ``normalize_kp`` semantics for any keypoint set.

The animated portrait follows the *change* of the driver since a calibration frame, not its
absolute pose, so a driver whose face differs in shape or position from the portrait still works:

    value'    = source + alpha * (driving - driving_at_calibration)
    jacobian' = (J_driving @ inv(J_driving_at_calibration)) @ J_source
    alpha     = sqrt(hull area(source)) / sqrt(hull area(driving_at_calibration))   (adapt scale)

Everything that depends only on the calibration frame (alpha, the inverse Jacobians) is computed
once in :meth:`RelativeMotion.calibrate`; the per-frame call is two array operations.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import ConvexHull


@dataclass(frozen=True)
class Keypoints:
    """Keypoints of one face: ``value`` (K, 2) and optional local affine ``jacobian`` (K, 2, 2)."""

    value: np.ndarray
    jacobian: np.ndarray | None = None


@dataclass(frozen=True)
class MotionSettings:
    relative: bool = True  # follow motion since calibration (FOMM --relative); else absolute
    adapt_scale: bool = True  # scale the motion by the source/driver face-size ratio
    first_order: bool = True  # use local affine Jacobians; False = zeroth order (Monkey-Net)


def hull_area(points) -> float:
    """Area of the convex hull of 2-D points (scipy's 2-D 'volume')."""
    return float(ConvexHull(np.asarray(points, dtype=np.float64)).volume)


def adapt_scale(source_value, driving_initial_value) -> float:
    """FOMM's adapt-movement scale: computed in float64 from batch element 0 only."""
    src = _first_batch(source_value)
    drv = _first_batch(driving_initial_value)
    return float(np.sqrt(hull_area(src)) / np.sqrt(hull_area(drv)))


def _first_batch(value) -> np.ndarray:
    arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    return arr[0] if arr.ndim == 3 else arr


def _is_torch(x) -> bool:
    return hasattr(x, "detach")


def normalize_kp(kp_source, kp_driving, kp_driving_initial, adapt_movement_scale=False,
                 use_relative_movement=False, use_relative_jacobian=False):
    """FOMM's ``normalize_kp``: dicts with ``value`` (and optional ``jacobian``), numpy or torch.

    Returns a new dict like ``kp_driving``. The scale multiplies in the keypoints' own dtype
    (float32), as the official code does, so results match it to the last bit.
    """
    scale = adapt_scale(kp_source["value"], kp_driving_initial["value"]) if adapt_movement_scale else 1.0
    kp_new = dict(kp_driving)
    if use_relative_movement:
        diff = kp_driving["value"] - kp_driving_initial["value"]
        kp_new["value"] = _scaled(diff, scale) + kp_source["value"]
        if use_relative_jacobian and kp_driving.get("jacobian") is not None:
            inv_initial = _inverse(kp_driving_initial["jacobian"])
            kp_new["jacobian"] = _matmul(_matmul(kp_driving["jacobian"], inv_initial), kp_source["jacobian"])
    return kp_new


def _scaled(x, scale: float):
    if _is_torch(x):
        return x * scale  # torch multiplies a float32 tensor by a Python scalar in float32
    return x * np.asarray(scale, dtype=x.dtype)


def _inverse(j):
    if _is_torch(j):
        import torch

        return torch.inverse(j)
    return np.linalg.inv(j)


def _matmul(a, b):
    if _is_torch(a):
        import torch

        return torch.matmul(a, b)
    return np.matmul(a, b)


class RelativeMotion:
    """The motion stage: source keypoints + scaled driving motion since calibration.

    Usage: ``set_source(kp)`` once per avatar, ``calibrate(kp_driving)`` once per reference pose,
    then ``motion(kp_driving)`` per frame. Until calibrated, the first frame given calibrates.
    """

    def __init__(self, settings: MotionSettings = MotionSettings()):
        self.settings = settings
        self.source: Keypoints | None = None
        self.reference: Keypoints | None = None
        self._scale = 1.0
        self._inv_reference_jacobian: np.ndarray | None = None

    @property
    def is_calibrated(self) -> bool:
        return self.reference is not None

    @property
    def scale(self) -> float:
        """The adapt-movement scale alpha in use (1.0 when off or uncalibrated)."""
        return self._scale

    def set_source(self, source: Keypoints) -> None:
        self.source = source
        if self.reference is not None:
            self.calibrate(self.reference)  # alpha depends on the source too

    def update_settings(self, settings: MotionSettings) -> None:
        self.settings = settings
        if self.reference is not None:
            self.calibrate(self.reference)

    def reset(self) -> None:
        """Forget the reference pose: the next frame calibrates."""
        self.reference = None
        self._scale = 1.0
        self._inv_reference_jacobian = None

    def calibrate(self, reference: Keypoints) -> None:
        if self.source is None:
            raise RuntimeError("RelativeMotion.calibrate called before set_source")
        self.reference = reference
        self._scale = adapt_scale(self.source.value, reference.value) if self.settings.adapt_scale else 1.0
        self._inv_reference_jacobian = (
            np.linalg.inv(reference.jacobian) if reference.jacobian is not None else None
        )

    def __call__(self, driving: Keypoints) -> Keypoints:
        if self.source is None:
            raise RuntimeError("RelativeMotion used before set_source")
        if not self.is_calibrated:
            self.calibrate(driving)
        if not self.settings.relative:
            target = driving
        else:
            value = _scaled(driving.value - self.reference.value, self._scale) + self.source.value
            jacobian = None
            if driving.jacobian is not None and self._inv_reference_jacobian is not None:
                jacobian = driving.jacobian @ self._inv_reference_jacobian @ self.source.jacobian
            target = Keypoints(value=value, jacobian=jacobian)
        if not self.settings.first_order and target.jacobian is not None:
            # Zeroth order: keypoint displacement only, every local transform the identity.
            eye = np.broadcast_to(np.eye(2, dtype=target.value.dtype), target.jacobian.shape)
            target = replace(target, jacobian=np.ascontiguousarray(eye))
        return target
