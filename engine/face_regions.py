"""Named landmark groups of MediaPipe Face Mesh (478 points with irises).

"Right" and "left" are the subject's own: the right eye appears on the image's left.
"""
from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 478


def _vertices(connections) -> tuple[int, ...]:
    return tuple(sorted({i for edge in connections for i in edge}))


def _load():
    # Connection sets ship with mediapipe; importing them is cheap (no model is loaded).
    from mediapipe.python.solutions import face_mesh_connections as c

    return {
        "face_oval": _vertices(c.FACEMESH_FACE_OVAL),
        "lips": _vertices(c.FACEMESH_LIPS),
        "right_eye": _vertices(c.FACEMESH_RIGHT_EYE),
        "left_eye": _vertices(c.FACEMESH_LEFT_EYE),
        "right_eyebrow": _vertices(c.FACEMESH_RIGHT_EYEBROW),
        "left_eyebrow": _vertices(c.FACEMESH_LEFT_EYEBROW),
        "right_iris": _vertices(c.FACEMESH_RIGHT_IRIS) + (468,),
        "left_iris": _vertices(c.FACEMESH_LEFT_IRIS) + (473,),
        "tesselation": tuple(tuple(e) for e in c.FACEMESH_TESSELATION),
        "face_oval_edges": tuple(tuple(e) for e in c.FACEMESH_FACE_OVAL),
        "lips_edges": tuple(tuple(e) for e in c.FACEMESH_LIPS),
    }


REGIONS = _load()
FACE_OVAL = REGIONS["face_oval"]
RIGHT_EYE = REGIONS["right_eye"]
LEFT_EYE = REGIONS["left_eye"]
RIGHT_IRIS = REGIONS["right_iris"]
LEFT_IRIS = REGIONS["left_iris"]
IRISES = RIGHT_IRIS + LEFT_IRIS
RIGHT_EYEBROW = REGIONS["right_eyebrow"]
LEFT_EYEBROW = REGIONS["left_eyebrow"]
LIPS = REGIONS["lips"]

# Points for the aspect ratios (Soukupova & Cech's EAR, adapted to the mesh):
# (corner, corner, (upper, lower) pairs)
RIGHT_EYE_EAR = (33, 133, ((160, 144), (159, 145), (158, 153)))
LEFT_EYE_EAR = (362, 263, ((385, 380), (386, 374), (387, 373)))
# Inner lip contour: corners and (upper, lower) pairs
MOUTH_INNER = (78, 308, ((82, 87), (13, 14), (312, 317)))
# Eye contours, corner to corner (subject's right eye = image left).
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
# Lip contours, corner to corner
OUTER_LIPS_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LIPS_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_LIPS_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIPS_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# The lower lip's two middle rings, between its inner and outer contour (same corner-to-corner order)
LOWER_LIP_SEMI_INNER = (62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292)
LOWER_LIP_SEMI_OUTER = (76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306)
IRIS_CENTERS = (468, 473)  # right, left

# Stable points that hardly move with expression: for head pose and alignment.
RIGID = (1, 4, 5, 6, 168, 197, 195, 33, 133, 362, 263, 10, 152, 234, 454, 127, 356)


def aspect_ratio(points: np.ndarray, spec) -> float:
    """Mean vertical gap over horizontal width for an eye/mouth spec (scale-invariant)."""
    a, b, pairs = spec
    width = np.linalg.norm(points[a, :2] - points[b, :2])
    gaps = [np.linalg.norm(points[u, :2] - points[d, :2]) for u, d in pairs]
    return float(np.mean(gaps) / max(width, 1e-6))
