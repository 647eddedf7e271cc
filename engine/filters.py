"""One-Euro filter (Casiez et al., CHI 2012): smooths jitter when still, follows fast motion.

The cutoff frequency rises with the signal's speed: ``cutoff = min_cutoff + beta * |speed|``.
Lower ``min_cutoff`` = less jitter at rest; higher ``beta`` = less lag when moving.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroSettings:
    min_cutoff: float = 1.5  # Hz
    beta: float = 0.5
    d_cutoff: float = 1.0  # Hz, for the speed estimate


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of any fixed shape, element-wise, at irregular timestamps (seconds)."""

    def __init__(self, settings: OneEuroSettings = OneEuroSettings()):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        if t <= self._t:  # repeated or out-of-order timestamp: assume one 30 fps frame passed
            t = self._t + 1 / 30
        dt = t - self._t
        s = self.settings
        a_d = _alpha(s.d_cutoff, dt)
        self._dx = a_d * (x - self._x) / dt + (1 - a_d) * self._dx
        cutoff = s.min_cutoff + s.beta * np.abs(self._dx)
        a = 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()
