"""The one interface every engine implements (mesh warp, FOMM, ...).

Per-avatar work happens once in ``set_source``; per-frame work in ``driving_keypoints`` (what the
driver's face looks like, in this engine's keypoints) and ``render`` (the portrait posed by the target
keypoints that ``engine.motion.RelativeMotion`` computed). Output is always the portrait's own
resolution, RGB uint8.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from engine.motion import Keypoints
from engine.portrait import Portrait
from engine.tracking import FaceLandmarks


class Animator(ABC):
    #: short name used by ``--engine`` and the GUI's engine picker
    name: str = ""
    #: True when the engine must see the driving image itself (neural keypoint detectors);
    #: such engines cannot run on the landmark-only demo driver.
    needs_driving_image: bool = False

    @abstractmethod
    def set_source(self, portrait: Portrait) -> Keypoints:
        """Prepare everything that depends only on the portrait; return its keypoints."""

    @abstractmethod
    def driving_keypoints(self, image: np.ndarray | None, face: FaceLandmarks) -> Keypoints:
        """Keypoints of the driving face (``image`` is the RGB driving frame, or None for the demo driver)."""

    @abstractmethod
    def render(self, target: Keypoints) -> np.ndarray:
        """The portrait posed by ``target`` keypoints, at the portrait's resolution (H, W, 3) uint8."""

    def reference_keypoints(self, driving: Keypoints) -> Keypoints:
        """The reference pose to calibrate on, given the driving keypoints of the calibration frame.

        Relative motion transfers what changed since this reference. An engine whose keypoints name
        facial features may return a neutral version (the mesh engine closes the mouth: a driver who
        calibrates mid-word would otherwise never open the portrait's mouth by that much)."""
        return driving

    def posed_landmarks(self, target: Keypoints) -> np.ndarray | None:
        """The Face Mesh landmarks (478, 2) ``render(target)`` poses the portrait's face to, in the
        portrait's pixels; None where the engine's keypoints are not face landmarks (FOMM's are
        learned). ``puppetcam eval`` measures them beside the output re-tracked: what the animation
        asks for, against what the tracker reads back from the picture."""
        return None

    def forget_driver(self) -> None:
        """A new reference pose is being taken (``Pipeline.calibrate``), maybe of another person:
        drop what the engine learned about the driver (alignment, usual eye openness, ...)."""

    def close(self) -> None:
        """Release models and buffers."""
