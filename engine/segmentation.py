"""Person segmentation: which pixels of a portrait are the person (face, hair, neck, body) and which
the background behind them. MediaPipe Selfie Segmentation, whose model ships inside the mediapipe
0.10.21 wheel (nothing is downloaded).

The mesh engine uses it once per portrait, so that the background stays still while the head and
hair move over it.
"""
from __future__ import annotations

import numpy as np

import engine.tracking  # noqa: F401  (sets MediaPipe's log level before mediapipe is imported)

# The raw mask rises from 0 to 1 over a few pixels at the person's edge; values this close to 0 or 1
# are noise on a flat background or inside the person.
MASK_FLOOR, MASK_CEIL = 0.05, 0.95


def person_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much each pixel of ``image`` (RGB uint8) is the person."""
    import mediapipe as mp

    # model 0 ("general", 256x256) outlines hair better than the landscape model on portraits
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        raw = segmenter.process(np.ascontiguousarray(image)).segmentation_mask
    mask = (np.asarray(raw, np.float32) - MASK_FLOOR) / (MASK_CEIL - MASK_FLOOR)
    return np.clip(mask, 0.0, 1.0)
