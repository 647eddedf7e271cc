"""The demo driver: a procedural face (blinks, winks, gaze, talking, smiles, brows, head turns).

It needs no camera and no video: it yields ``Frame`` objects whose ``landmarks`` are 478 synthetic
Face Mesh landmarks (the pipeline uses them instead of tracking) and whose ``image`` is a simple
drawing of those landmarks for a preview.

The face is a neutral set of landmarks (``assets/demo/neutral-face.npy``, tracked once from the
bundled public-domain portrait ``assets/avatars/lady-agnew.jpg``, see :func:`build_neutral`),
deformed parametrically per frame:

- blinks / winks: upper and lower lids move toward each other;
- gaze: the iris points shift inside the eye;
- talking: the jaw, lower lip and chin open downward (syllables at ~4 Hz in bursts);
- smile: mouth corners move out and up;
- brows: raised now and then;
- head turns: a 3-D rotation (yaw, pitch, roll within about +-20 degrees) using the z coordinate.

The expression schedule is random but deterministic: the same ``seed`` gives the same frames, and
any time can be computed directly (``landmarks_at(t)``), so an endless driver never drifts. Frame 0
is the neutral, frontal face (the pipeline calibrates on it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.capture import Frame
from engine.tracking import FaceLandmarks

REPO_ASSETS = Path(__file__).resolve().parents[1] / "assets"
NEUTRAL_PATH = REPO_ASSETS / "demo" / "neutral-face.npy"
NEUTRAL_SOURCE = REPO_ASSETS / "avatars" / "lady-agnew.jpg"

# Eye lids, corner to corner, upper and lower matched point by point (subject's right / left).
RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
RIGHT_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
LEFT_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
LEFT_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
# The ring just outside each eye's lids (upper crease follows a blink a little).
RIGHT_UPPER_CREASE = (247, 30, 29, 27, 28, 56, 190)
LEFT_UPPER_CREASE = (467, 260, 259, 257, 258, 286, 414)
RIGHT_IRIS_POINTS = (468, 469, 470, 471, 472)
LEFT_IRIS_POINTS = (473, 474, 475, 476, 477)
MOUTH_CORNERS = (61, 291, 78, 308)
UPPER_OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)

SEGMENT_S = 8.0  # the schedule is drawn per segment of this many seconds, seeded by (seed, segment)


@dataclass(frozen=True)
class Expression:
    """The face's parameters at one moment (all 0 = neutral, frontal)."""

    blink_right: float = 0.0  # 0 open .. 1 closed
    blink_left: float = 0.0
    gaze_x: float = 0.0  # -1 .. 1, image right is +
    gaze_y: float = 0.0  # -1 .. 1, down is +
    mouth_open: float = 0.0  # 0 .. 1
    smile: float = 0.0  # 0 .. 1
    brows: float = 0.0  # 0 .. 1 raised
    yaw: float = 0.0  # degrees
    pitch: float = 0.0
    roll: float = 0.0


# ----------------------------------------------------------------------------- neutral face
def build_neutral(image_path=NEUTRAL_SOURCE) -> np.ndarray:
    """Neutral landmarks in a canonical frame: centred, level eyes, face height (10->152) = 1."""
    from engine.portrait import load_portrait

    pts = load_portrait(image_path).landmarks.points.astype(np.float64)
    return canonicalize(pts).astype(np.float32)


def canonicalize(pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).copy()
    eye_r, eye_l = pts[33, :2], pts[263, :2]
    angle = math.atan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0])
    c, s = math.cos(-angle), math.sin(-angle)
    center = pts[:468].mean(axis=0)
    pts -= center
    x, y = pts[:, 0].copy(), pts[:, 1].copy()
    pts[:, 0], pts[:, 1] = c * x - s * y, s * x + c * y
    height = np.linalg.norm(pts[152, :2] - pts[10, :2])
    return pts / height


_NEUTRAL: np.ndarray | None = None


def neutral_face() -> np.ndarray:
    """(478, 3) canonical neutral landmarks (cached; computed from the avatar if the .npy is missing)."""
    global _NEUTRAL
    if _NEUTRAL is None:
        _NEUTRAL = np.load(NEUTRAL_PATH) if NEUTRAL_PATH.is_file() else build_neutral()
        _NEUTRAL.setflags(write=False)
    return _NEUTRAL


# ----------------------------------------------------------------------------- schedule
def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _pulse(t: float, start: float, rise: float, hold: float, fall: float) -> float:
    """0 -> 1 -> 0: rises over ``rise`` s from ``start``, holds, falls over ``fall`` s."""
    if t < start or t > start + rise + hold + fall:
        return 0.0
    if t < start + rise:
        return float(_smoothstep((t - start) / rise))
    if t < start + rise + hold:
        return 1.0
    return float(1 - _smoothstep((t - start - rise - hold) / fall))


class _Schedule:
    """Random expression events, drawn per time segment from ``(seed, segment)``."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._cache: dict[int, dict] = {}
        # Smooth head motion: a few sines per axis with random phases and periods.
        rng = np.random.default_rng([self.seed, 1_000_003])
        self._head = {
            axis: [(amp * w, rng.uniform(2.5, 7.0), rng.uniform(0, 2 * math.pi)) for w in rng.dirichlet([2, 2, 2])]
            for axis, amp in (("yaw", 20.0), ("pitch", 10.0), ("roll", 8.0))
        }

    def _segment(self, k: int) -> dict:
        if k in self._cache:
            return self._cache[k]
        rng = np.random.default_rng([self.seed, k])
        t0 = k * SEGMENT_S
        blinks = []  # (start, which): which = 0 both, 1 right wink, 2 left wink
        t = t0 + rng.uniform(0.3, 2.0)
        if k == 0:
            t = 0.8  # a blink early in every demo
        while t < t0 + SEGMENT_S:
            which = 0 if rng.random() > 0.15 else int(rng.integers(1, 3))
            blinks.append((t, which, 0.35 if which else 0.0))  # winks hold closed a little
            t += rng.uniform(1.5, 4.0)
        gaze = []  # (start, x, y)
        t = t0
        while t < t0 + SEGMENT_S:
            gaze.append((t, rng.uniform(-1, 1) * (rng.random() > 0.3), rng.uniform(-0.6, 0.6) * (rng.random() > 0.5)))
            t += rng.uniform(0.8, 2.5)
        talk = []  # (start, end, syllable rate Hz, phase)
        t = t0 + rng.uniform(0.0, 1.0)
        while t < t0 + SEGMENT_S:
            dur = rng.uniform(1.5, 3.5)
            talk.append((t, t + dur, rng.uniform(3.0, 5.0), rng.uniform(0, 2 * math.pi)))
            t += dur + rng.uniform(0.6, 1.8)
        smiles = [(t0 + rng.uniform(0, SEGMENT_S - 2.5), rng.uniform(1.0, 2.5), rng.uniform(0.6, 1.0))]
        brows = [(t0 + rng.uniform(0, SEGMENT_S - 1.5), rng.uniform(0.4, 1.0), rng.uniform(0.6, 1.0))] \
            if rng.random() > 0.3 else []
        seg = dict(blinks=blinks, gaze=gaze, talk=talk, smiles=smiles, brows=brows)
        self._cache[k] = seg
        if len(self._cache) > 8:
            self._cache.pop(min(self._cache))
        return seg

    def expression(self, t: float) -> Expression:
        k = int(math.floor(t / SEGMENT_S))
        segs = [self._segment(j) for j in (k - 1, k) if j >= 0]
        br = bl = 0.0
        for seg in segs:
            for start, which, hold in seg["blinks"]:
                v = _pulse(t, start, 0.08, 0.04 + hold, 0.14)
                if which in (0, 1):
                    br = max(br, v)
                if which in (0, 2):
                    bl = max(bl, v)
        # Gaze: the latest target, reached by a fast (0.08 s) saccade from the previous one.
        targets = [g for seg in segs for g in seg["gaze"] if g[0] <= t]
        gx = gy = 0.0
        if targets:
            cur = targets[-1]
            prev = targets[-2] if len(targets) > 1 else (0.0, 0.0, 0.0)
            a = float(_smoothstep((t - cur[0]) / 0.08))
            gx, gy = prev[1] + a * (cur[1] - prev[1]), prev[2] + a * (cur[2] - prev[2])
        mouth = 0.0
        for seg in segs:
            for start, end, rate, phase in seg["talk"]:
                if start <= t <= end:
                    envelope = _pulse(t, start, 0.15, end - start - 0.3, 0.15)
                    syll = 0.5 - 0.5 * math.cos(2 * math.pi * rate * (t - start))
                    loud = 0.55 + 0.45 * math.sin(1.7 * (t - start) + phase) ** 2
                    mouth = max(mouth, envelope * syll * loud)
        smile = max((_pulse(t, s, 0.4, d, 0.5) * a for seg in segs for s, d, a in seg["smiles"]), default=0.0)
        brows = max((_pulse(t, s, 0.2, d, 0.3) * a for seg in segs for s, d, a in seg["brows"]), default=0.0)
        head = {axis: sum(a * (math.sin(2 * math.pi * t / p + ph) - math.sin(ph)) for a, p, ph in terms)
                for axis, terms in self._head.items()}
        # Ease everything in over the first 0.6 s: frame 0 is neutral and frontal (calibration).
        ramp = float(_smoothstep(t / 0.6))
        return Expression(blink_right=br, blink_left=bl, gaze_x=gx * ramp, gaze_y=gy * ramp,
                          mouth_open=mouth * ramp, smile=smile * ramp, brows=brows * ramp,
                          yaw=float(np.clip(head["yaw"] * ramp, -22, 22)),
                          pitch=float(np.clip(head["pitch"] * ramp, -12, 12)),
                          roll=float(np.clip(head["roll"] * ramp, -10, 10)))


# ----------------------------------------------------------------------------- deformation
class _Rig:
    """Precomputed index groups and weights for deforming the canonical neutral face."""

    def __init__(self, neutral: np.ndarray):
        from engine.face_regions import INNER_LIPS_LOWER, INNER_LIPS_UPPER, LEFT_EYEBROW, LIPS, RIGHT_EYEBROW

        self.neutral = neutral.astype(np.float64)
        p = self.neutral
        self.mouth_c = (p[61, :2] + p[291, :2]) / 2
        self.mouth_half = np.linalg.norm(p[291, :2] - p[61, :2]) / 2
        chin_y = p[152, 1]
        lips = np.array(LIPS)
        lip_lower_outer = lips[p[lips, 1] > self.mouth_c[1] + 0.01]
        inner_lower = np.array([i for i in INNER_LIPS_LOWER if i not in (78, 308)])
        inner_upper = np.array([i for i in INNER_LIPS_UPPER if i not in (78, 308)])
        n = len(p)
        # Jaw: weight of each point in the mouth opening (1 on the lower lip and chin centre).
        u = (p[:, 0] - self.mouth_c[0]) / (0.5 * abs(p[454, 0] - p[234, 0]))
        below = _smoothstep((p[:, 1] - (self.mouth_c[1] - 0.005)) / max(chin_y - self.mouth_c[1], 1e-6) * 4)
        jaw = below * np.clip(1 - u ** 2, 0, 1)
        jaw[np.arange(n) >= 468] = 0
        jaw[inner_lower] = np.clip(1 - ((p[inner_lower, 0] - self.mouth_c[0]) / self.mouth_half) ** 2, 0, 1) ** 0.5
        jaw[lip_lower_outer] = np.maximum(jaw[lip_lower_outer], 0.9 * np.clip(
            1 - ((p[lip_lower_outer, 0] - self.mouth_c[0]) / self.mouth_half) ** 2, 0, 1))
        jaw[list(UPPER_OUTER_LIP) + list(INNER_LIPS_UPPER)] = 0.0  # the upper lip stays with the head
        self.jaw = jaw
        self.inner_upper = inner_upper
        self.upper_lift = np.clip(1 - ((p[inner_upper, 0] - self.mouth_c[0]) / self.mouth_half) ** 2, 0, 1)
        # Smile: lips and the skin around the mouth, by horizontal position.
        near_mouth = np.linalg.norm((p[:, :2] - self.mouth_c) / (self.mouth_half * np.array([1.6, 1.3])), axis=1)
        self.smile_w = np.clip(1 - near_mouth, 0, 1) ** 0.7
        self.smile_w[np.arange(n) >= 468] = 0
        self.smile_u = np.clip((p[:, 0] - self.mouth_c[0]) / self.mouth_half, -1.3, 1.3)
        self.brows = np.array(RIGHT_EYEBROW + LEFT_EYEBROW)
        self.eye_width = np.linalg.norm(p[133, :2] - p[33, :2])
        self.lids = []
        for upper, lower, crease in ((RIGHT_UPPER_LID, RIGHT_LOWER_LID, RIGHT_UPPER_CREASE),
                                     (LEFT_UPPER_LID, LEFT_LOWER_LID, LEFT_UPPER_CREASE)):
            self.lids.append((np.array(upper), np.array(lower), np.array(crease)))
        self.irises = (np.array(RIGHT_IRIS_POINTS), np.array(LEFT_IRIS_POINTS))
        # Head rotation pivot: behind the face, a bit below the eyes (roughly the neck's top).
        self.pivot = np.array([0.0, 0.12, 0.55])

    def deform(self, e: Expression) -> np.ndarray:
        p = self.neutral.copy()
        # Talking: the jaw opens downward, the upper lip lifts a little.
        if e.mouth_open > 0:
            p[:, 1] += e.mouth_open * 0.10 * self.jaw
            p[self.inner_upper, 1] -= e.mouth_open * 0.012 * self.upper_lift
        # Smile: corners out and up.
        if e.smile > 0:
            p[:, 0] += e.smile * 0.03 * self.smile_u * self.smile_w
            p[:, 1] -= e.smile * 0.035 * self.smile_u ** 2 * self.smile_w
        if e.brows > 0:
            p[self.brows, 1] -= e.brows * 0.035
        # Blinks: lids meet a fifth of the way up from the lower lid.
        for (upper, lower, crease), amount, iris in zip(self.lids, (e.blink_right, e.blink_left), self.irises):
            if amount > 0:
                meet = p[lower] + 0.2 * (p[upper] - p[lower])
                drop = meet - p[upper]
                p[upper] += amount * drop
                p[lower] += amount * (meet - p[lower])
                p[crease, 1] += amount * 0.3 * drop[:, 1]
                p[iris, 1] += amount * 0.1 * drop[:, 1].mean()
        # Gaze: the irises move inside the eyes.
        for iris in self.irises:
            p[iris, 0] += e.gaze_x * 0.15 * self.eye_width
            p[iris, 1] += e.gaze_y * 0.08 * self.eye_width
        # Head: rotate in 3-D about the pivot (x right, y down, z away from the camera).
        if e.yaw or e.pitch or e.roll:
            p = (p - self.pivot) @ _rotation(e.yaw, e.pitch, e.roll).T + self.pivot
        return p


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, x, z = np.radians([yaw, pitch, roll])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rz @ ry @ rx


# ----------------------------------------------------------------------------- drawing
_EDGES: dict[str, np.ndarray] = {}


def _edges() -> dict[str, np.ndarray]:
    if not _EDGES:
        from mediapipe.python.solutions import face_mesh_connections as c

        _EDGES["mesh"] = np.array(sorted(c.FACEMESH_TESSELATION))
        _EDGES["features"] = np.array(sorted(
            c.FACEMESH_FACE_OVAL | c.FACEMESH_LIPS | c.FACEMESH_LEFT_EYE | c.FACEMESH_RIGHT_EYE
            | c.FACEMESH_LEFT_EYEBROW | c.FACEMESH_RIGHT_EYEBROW))
    return _EDGES


def draw_landmarks(points: np.ndarray, size: tuple[int, int], image: np.ndarray | None = None) -> np.ndarray:
    """A simple preview of 478 landmarks: faint mesh, bright features, irises. RGB uint8."""
    import cv2

    w, h = size
    if image is None:
        image = np.full((h, w, 3), (24, 26, 32), np.uint8)
    edges = _edges()
    xy = np.round(points[:, :2] * 4).astype(np.int32)  # 2 fractional bits for cv2's shift
    cv2.polylines(image, list(xy[edges["mesh"]]), False, (60, 78, 96), 1, cv2.LINE_8, 2)
    cv2.polylines(image, list(xy[edges["features"]]), False, (120, 220, 255), 1, cv2.LINE_AA, 2)
    for center, ring in ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477))):
        radius = float(np.mean(np.linalg.norm(points[list(ring), :2] - points[center, :2], axis=1)))
        cv2.circle(image, tuple(int(v) for v in xy[center]), max(4, int(radius * 4)), (255, 200, 80), 1,
                   cv2.LINE_AA, 2)
    return image


# ----------------------------------------------------------------------------- driver
class DemoDriver:
    """Procedural driving frames. Iterate for ``Frame`` objects with synthetic ``landmarks``.

    ``n_frames=None`` is endless. ``realtime=True`` paces frames at ``fps`` (for a live preview);
    otherwise they come as fast as they are drawn. ``draw=False`` skips the preview drawing (the
    image is then a plain dark frame), for benchmarks and offline renders.
    """

    def __init__(self, fps: float = 30.0, n_frames: int | None = 300, size: tuple[int, int] = (512, 512),
                 seed: int = 0, realtime: bool = False, draw: bool = True):
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = float(fps)
        self.n_frames = n_frames
        self.size = (int(size[0]), int(size[1]))
        self.seed = seed
        self.realtime = realtime
        self.draw = draw
        self.truncated = False  # same interface as VideoFileSource
        self.frames_read = 0
        self._schedule = _Schedule(seed)
        self._rig = _Rig(neutral_face())
        w, h = self.size
        self._scale = 0.5 * h  # face height in pixels
        self._offset = np.array([w / 2, h * 0.5, 0.0])
        self._blank = np.full((h, w, 3), (24, 26, 32), np.uint8)

    def __len__(self) -> int:
        if self.n_frames is None:
            raise TypeError("an endless DemoDriver has no length")
        return self.n_frames

    def expression_at(self, t: float) -> Expression:
        return self._schedule.expression(t)

    def points_at(self, t: float) -> np.ndarray:
        """(478, 3) float32 landmarks in pixels (x, y, z in x's scale) at time ``t`` seconds."""
        canon = self._rig.deform(self._schedule.expression(t))
        return (canon * self._scale + self._offset).astype(np.float32)

    def landmarks_at(self, t: float) -> FaceLandmarks:
        return FaceLandmarks(points=self.points_at(t), image_size=self.size)

    def frame(self, index: int, t_capture: float | None = None) -> Frame:
        face = self.landmarks_at(index / self.fps)
        image = draw_landmarks(face.points, self.size) if self.draw else self._blank.copy()
        return Frame(image=image, t_capture=time.monotonic() if t_capture is None else t_capture,
                     index=index, landmarks=face)

    def close(self) -> None:
        """Nothing to release (same interface as the camera sources)."""

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        while self.n_frames is None or index < self.n_frames:
            due = start + index / self.fps
            if self.realtime:
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield self.frame(index, time.monotonic() if self.realtime else due)
            index += 1
            self.frames_read = index
