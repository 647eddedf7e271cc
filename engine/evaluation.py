"""``evaluate``: animate a portrait with a driving video and measure how well the output follows.

Driver and output frames are both tracked by raw (unfiltered) MediaPipe Face Mesh in tracking mode;
``engine.metrics`` turns the landmarks into eye / mouth openness, head pose and jitter. The animation
itself runs through the real ``Pipeline`` with the default settings (relative motion, adapt scale,
One-Euro smoothing), with capture times taken from the video's frame rate so the filter sees real
time. A contact sheet (driver | output every ``every_n`` frames) lets a person look.

Beside the output, the same eye, mouth and jitter measures are taken on the landmarks the engine
posed the portrait to (``PosedGeometry``; engines whose keypoints are face landmarks): what the
animation asks for, with no tracker reading it back. They are not the targets; where they part from
the output's, the tracker reads the picture differently from its geometry.

Two controls say where a target cannot be measured this way, and such a target is reported n/a with
its reason, never as met: the tracker's jitter on the still portrait (``tracker_jitter_floor``) and
the *mirror control* for head pose (``mirror_control``: how well the tracker's pose of the driver
correlates with its pose of the same video mirrored, a perfect reproduction of the same motion).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from engine import metrics
from engine.animators import create_animator
from engine.capture import Frame, VideoFileSource
from engine.filters import LandmarkFilter
from engine.pipeline import Pipeline, PipelineSettings
from engine.portrait import load_portrait
from engine.tracking import FaceLandmarks, FaceTracker

# Targets (issue 2, section 4)
EYE_CORR_MIN = 0.85
MOUTH_CORR_MIN = 0.90
AMPLITUDE_RANGE = (0.7, 1.3)
POSE_CORR_MIN = 0.90
POSE_MOTION_MIN_DEG = 3.0
# Below these, the driver barely blinks / talks: its openness series is tracker noise, and
# correlation or amplitude ratio against it means nothing. Range = max - min of the driver's
# openness after a 3-frame median (one-frame tracker glitches do not count; a blink lasts longer).
EYE_RANGE_MIN = 0.08  # eye aspect ratio: open ≈ 0.25-0.35, a full blink ≈ 0.05
MOUTH_RANGE_MIN = 0.10  # inner-lip aspect ratio: closed ≈ 0, talking ≈ 0.2-0.6
# The mirror control: the tracker reads the driver, and the same driver mirrored left-right (the very
# same head motion, a perfect reproduction of it), and the two pose series are correlated per axis.
# Where that control itself stays below POSE_CORR_MIN, the tracker cannot verify the pose target on
# that axis of that driver (measured: pitch r 0.69 on d12, 0.86 on d9; small nods read differently
# on a mirrored face), and the axis is n/a there.
# The output's jitter is measured by re-tracking it; the tracker alone shakes this much on the
# *still* portrait (``jitter_floor``). Where that floor is at or above the driver's own jitter, the
# "jitter no higher than the driver's" target cannot be measured this way.
FLOOR_FRAMES = 40


def _jitter_miss(ratio: float) -> list[str]:
    """The jitter target's miss line for this output / driver ratio (empty: met)."""
    return [] if ratio <= 1.0 else [f"jitter ratio {ratio:.2f} > 1"]


@dataclass
class PosedGeometry:
    """Eye, mouth and jitter measures of the landmarks the engine posed the portrait to
    (``Animator.posed_landmarks``), against the same raw driver, over frames with both."""

    eye_corr: float
    eye_amplitude: float
    mouth_corr: float
    mouth_amplitude: float
    jitter: float  # like ``QualityReport.jitter_output``: in the landmarks' own inter-ocular distances


@dataclass
class QualityReport:
    source: str
    driving: str
    engine: str
    frames: int
    driver_faces: int  # frames where the driver's face was found
    output_faces: int  # frames where a face was found in the output (target: every frame)
    eye_corr: float
    eye_amplitude: float
    mouth_corr: float
    mouth_amplitude: float
    pose_corr: dict = field(default_factory=dict)  # axis -> correlation
    pose_range_deg: dict = field(default_factory=dict)  # axis -> the driver's largest |angle|
    pose_error_deg: dict = field(default_factory=dict)  # axis -> mean |output - driver|
    jitter_output: float = float("nan")
    jitter_driver: float = float("nan")
    engine_ms: float = float("nan")  # median motion + animate + composite per frame (tracking excluded)
    contact_sheet: str | None = None
    eye_range_driver: float = float("nan")  # driver's eye openness range (see EYE_RANGE_MIN); NaN = unknown
    mouth_range_driver: float = float("nan")  # driver's mouth openness range (see MOUTH_RANGE_MIN)
    jitter_floor: float = float("nan")  # tracker jitter on the still portrait (see FLOOR_FRAMES)
    pose_control: dict = field(default_factory=dict)  # axis -> the mirror control's correlation (see above)
    geometry: PosedGeometry | None = None  # None: the engine's keypoints are not face landmarks
    # How open the two faces' eyes are as they are (eye aspect ratio: the portrait's as painted, the
    # driver's median over the clip). A blink that closes both eyes spans each one's own openness, so
    # where these differ the faithful eye amplitude ratio is about their ratio, not 1.
    eye_open_source: float = float("nan")
    eye_open_driver: float = float("nan")

    @property
    def jitter_ratio(self) -> float:
        return self.jitter_output / self.jitter_driver if self.jitter_driver > 0 else float("nan")

    @property
    def moving_axes(self) -> list[str]:
        return [a for a in metrics.POSE_AXES if self.pose_range_deg.get(a, 0.0) > POSE_MOTION_MIN_DEG]

    @property
    def measurable_axes(self) -> list[str]:
        """Moving axes the tracker can verify: the mirror control reaches the target (unknown counts)."""
        return [a for a in self.moving_axes if not self.pose_control.get(a, float("nan")) < POSE_CORR_MIN]

    @property
    def eye_measurable(self) -> bool:
        return not self.eye_range_driver < EYE_RANGE_MIN  # NaN (unknown) counts as measurable

    @property
    def mouth_measurable(self) -> bool:
        return not self.mouth_range_driver < MOUTH_RANGE_MIN

    @property
    def jitter_measurable(self) -> bool:
        return not self.jitter_floor >= self.jitter_driver

    def not_applicable(self) -> list[str]:
        """Targets this pair cannot measure, one line each with the reason and threshold."""
        out = []
        if not self.eye_measurable:
            out.append(f"eye n/a (driver range {self.eye_range_driver:.3f} < {EYE_RANGE_MIN})")
        if not self.mouth_measurable:
            out.append(f"mouth n/a (driver range {self.mouth_range_driver:.3f} < {MOUTH_RANGE_MIN})")
        for axis in self.moving_axes:
            if axis not in self.measurable_axes:
                out.append(f"{axis} n/a (mirror control r {self.pose_control[axis]:.2f} < {POSE_CORR_MIN}; "
                           f"output r {self.pose_corr.get(axis, float('nan')):.2f})")
        if not self.jitter_measurable:
            out.append(f"jitter n/a (tracker floor on the still portrait {self.jitter_floor:.4f} "
                       f">= driver {self.jitter_driver:.4f}; ratio {self.jitter_ratio:.2f})")
        return out

    def failures(self) -> list[str]:
        """Targets this pair misses, one short line each (empty: all met). Targets the pair cannot
        measure (``not_applicable``) are neither met nor missed: they are listed there."""
        out = []
        if self.output_faces < self.frames:
            out.append(f"output face lost in {self.frames - self.output_faces} frames")
        out += self._openness_misses(self)
        for axis in self.measurable_axes:
            c = self.pose_corr.get(axis, float("nan"))
            if not c >= POSE_CORR_MIN:
                out.append(f"{axis} corr {c:.2f} < {POSE_CORR_MIN}")
        if self.jitter_measurable:
            out += _jitter_miss(self.jitter_ratio)
        return out

    def _openness_misses(self, m) -> list[str]:
        """The eye and mouth targets ``m`` (this report, or its ``geometry``) misses."""
        out = []
        lo, hi = AMPLITUDE_RANGE
        if self.eye_measurable:
            if not m.eye_corr >= EYE_CORR_MIN:
                out.append(f"eye corr {m.eye_corr:.2f} < {EYE_CORR_MIN}")
            if not lo <= m.eye_amplitude <= hi:
                out.append(f"eye amplitude {m.eye_amplitude:.2f} outside {lo}-{hi}")
        if self.mouth_measurable:
            if not m.mouth_corr >= MOUTH_CORR_MIN:
                out.append(f"mouth corr {m.mouth_corr:.2f} < {MOUTH_CORR_MIN}")
            if not lo <= m.mouth_amplitude <= hi:
                out.append(f"mouth amplitude {m.mouth_amplitude:.2f} outside {lo}-{hi}")
        return out

    @property
    def eye_open_ratio(self) -> float:
        """The portrait's eye openness over the driver's (``eye_open_source`` / ``eye_open_driver``)."""
        return self.eye_open_source / self.eye_open_driver if self.eye_open_driver > 0 else float("nan")

    @property
    def geometry_jitter_ratio(self) -> float:
        g = self.geometry
        return g.jitter / self.jitter_driver if g is not None and self.jitter_driver > 0 else float("nan")

    def geometry_misses(self) -> list[str] | None:
        """The eye, mouth and jitter targets the posed landmarks miss (the eye and mouth ones where
        the driver moves enough to measure them; the jitter one always: no tracker shakes them).
        Not a verdict: ``failures`` is, on the output. None without posed landmarks."""
        if self.geometry is None:
            return None
        return self._openness_misses(self.geometry) + _jitter_miss(self.geometry_jitter_ratio)

    def openness_and_jitter_misses(self) -> list[str]:
        """The output's misses on the targets ``geometry_misses`` measures too (no pose, no face count)."""
        return self._openness_misses(self) + (_jitter_miss(self.jitter_ratio) if self.jitter_measurable else [])

    @property
    def ok(self) -> bool:
        return not self.failures()

    @classmethod
    def from_dict(cls, d: dict) -> "QualityReport":
        """The report ``to_dict`` wrote (its derived keys are recomputed, None reads back as NaN)."""
        names = {f.name for f in fields(cls)}

        def unplain(v):
            if isinstance(v, dict):
                return {k: unplain(x) for k, x in v.items()}
            return float("nan") if v is None else v
        values = {k: (v if k in ("contact_sheet", "geometry") and v is None else unplain(v))
                  for k, v in d.items() if k in names}
        if values.get("geometry") is not None:
            values["geometry"] = PosedGeometry(**values["geometry"])
        return cls(**values)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["jitter_ratio"] = self.jitter_ratio
        d["moving_axes"] = self.moving_axes
        d["measurable_axes"] = self.measurable_axes
        d["failures"] = self.failures()
        d["not_applicable"] = self.not_applicable()
        d["geometry_jitter_ratio"] = self.geometry_jitter_ratio
        d["eye_open_ratio"] = self.eye_open_ratio
        d["geometry_misses"] = self.geometry_misses()

        def plain(v):
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return None if isinstance(v, float) and math.isnan(v) else v
        return plain(d)


def _tile(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def write_contact_sheet(pairs: list[tuple[np.ndarray, np.ndarray]], path, height: int = 256, columns: int = 2) -> None:
    """PNG of (driver | output) tiles, ``columns`` pairs per row."""
    import cv2

    if not pairs:
        return
    tiles = [np.hstack([_tile(d, height), _tile(o, height)]) for d, o in pairs]
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 4), (0, width - t.shape[1] + 4), (0, 0)), constant_values=255) for t in tiles]
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    sheet = np.vstack(rows)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def evaluate(source_path, driving_path, engine: str = "mesh", max_frames: int | None = None,
             contact_sheet_path=None, every_n: int = 15, settings: PipelineSettings = PipelineSettings(),
             portrait=None, engine_options: dict | None = None) -> QualityReport:
    """Animate ``source_path`` with ``driving_path`` and measure the output against the driver.

    ``engine_options`` go to ``create_animator`` (e.g. the fomm engine's checkpoint and config)."""
    portrait = portrait or load_portrait(source_path)
    animator = create_animator(engine, **(engine_options or {}))
    video = VideoFileSource(driving_path, max_frames=max_frames)
    fps = video.fps or 30.0
    driver_tracker = FaceTracker(still=False)  # raw: the metrics' view of the driver
    output_tracker = FaceTracker(still=False)
    mirror_tracker = FaceTracker(still=False)  # the mirror control (see POSE_CORR_MIN above)
    # The pipeline's own tracker would see the same frames; track once and filter like it does.
    use_landmarks = not animator.needs_driving_image
    pipeline = Pipeline(animator, portrait, settings,
                        tracker=None if not use_landmarks else _NullTracker())
    smoother = LandmarkFilter(settings.smoothing) if settings.smoothing is not None else None
    drv_pts, mir_pts, out_pts, posed_pts, sheet = [], [], [], [], []
    busy_ms = []
    drivers_for_sheet = {}

    def driving_frames():
        """The driver's side of each frame (read, tracked plain and mirrored, smoothed): runs on the
        pipeline's helper thread while the frame before is animated and its output tracked."""
        for frame in video:
            t = frame.t_capture  # the video's own clock (read faster than real time)
            face = driver_tracker.track(frame.image, t)
            drv_pts.append(face.points if isinstance(face, FaceLandmarks) else None)
            mirrored = mirror_tracker.track(np.ascontiguousarray(frame.image[:, ::-1]), t)
            mir_pts.append(mirrored.points if isinstance(mirrored, FaceLandmarks) else None)
            if contact_sheet_path is not None and frame.index % max(1, every_n) == 0:
                drivers_for_sheet[frame.index] = frame.image
            if not use_landmarks:
                yield Frame(frame.image, t, frame.index)
                continue
            given = face
            if isinstance(face, FaceLandmarks) and smoother is not None:
                given = FaceLandmarks(smoother(face.points, t).astype(np.float32), face.image_size)
            elif smoother is not None:
                smoother.reset()
            yield Frame(frame.image, t, frame.index, landmarks=given)

    try:
        with contextlib.closing(pipeline.run(driving_frames())) as results:
            for result in results:
                busy_ms.append(sum(v for k, v in result.timings_ms.items() if k != "track"))
                out_face = output_tracker.track(result.animated, result.t_capture)
                out_pts.append(out_face.points if isinstance(out_face, FaceLandmarks) else None)
                # consumed before the next frame is animated: the animator's state is this frame's
                posed_pts.append(None if result.target is None else animator.posed_landmarks(result.target))
                if result.frame_index in drivers_for_sheet:
                    sheet.append((drivers_for_sheet.pop(result.frame_index), result.animated))
    finally:
        driver_tracker.close()
        output_tracker.close()
        mirror_tracker.close()
        pipeline.close()
    if contact_sheet_path is not None:
        write_contact_sheet(sheet, contact_sheet_path)
    report = _report(Path(source_path).name, Path(driving_path).name, engine, drv_pts, out_pts, busy_ms,
                     str(contact_sheet_path) if contact_sheet_path is not None else None)
    report.eye_open_source = metrics.eye_aspect_ratio(portrait.landmarks.points)
    if any(p is not None for p in posed_pts):
        report.geometry = posed_geometry(drv_pts, posed_pts)
    report.jitter_floor = tracker_jitter_floor(pipeline.portrait.image, fps)
    report.pose_control = mirror_control(drv_pts, mir_pts)
    return report


def _series(fn, pts_list, use) -> np.ndarray:
    """``fn`` of each frame's landmarks where ``use`` says so, NaN elsewhere."""
    return np.array([fn(p) if ok else np.nan for p, ok in zip(pts_list, use)])


def posed_geometry(driver_pts, posed_pts) -> PosedGeometry:
    """Eye, mouth and jitter measures of the posed landmarks against the driver's, frame by frame."""
    both = [d is not None and p is not None for d, p in zip(driver_pts, posed_pts)]
    eye_d, eye_p = (_series(metrics.eye_aspect_ratio, pts, both) for pts in (driver_pts, posed_pts))
    mouth_d, mouth_p = (_series(metrics.mouth_aspect_ratio, pts, both) for pts in (driver_pts, posed_pts))
    return PosedGeometry(
        eye_corr=metrics.correlation(eye_p, eye_d), eye_amplitude=metrics.amplitude_ratio(eye_p, eye_d),
        mouth_corr=metrics.correlation(mouth_p, mouth_d), mouth_amplitude=metrics.amplitude_ratio(mouth_p, mouth_d),
        jitter=metrics.jitter([p if ok else None for p, ok in zip(posed_pts, both)]))


def mirror_control(driver_pts, mirrored_pts) -> dict:
    """Per axis: correlation of the head pose the tracker reads on the driver with the one it reads
    on the driver mirrored left-right (yaw and roll change sign there), over frames with both."""
    both = [d is not None and m is not None for d, m in zip(driver_pts, mirrored_pts)]
    pose_d = metrics.head_pose_series([p if ok else None for p, ok in zip(driver_pts, both)])
    pose_m = metrics.head_pose_series([p if ok else None for p, ok in zip(mirrored_pts, both)])
    pose_m[:, [0, 2]] *= -1
    return {axis: metrics.correlation(pose_m[:, k], pose_d[:, k]) for k, axis in enumerate(metrics.POSE_AXES)}


def tracker_jitter_floor(image: np.ndarray, fps: float = 30.0, frames: int = FLOOR_FRAMES) -> float:
    """Jitter the metrics' tracker reports on a still image (the same frame ``frames`` times)."""
    tracker = FaceTracker(still=False)
    try:
        pts = []
        for i in range(frames):
            face = tracker.track(image, i / fps)
            pts.append(face.points if isinstance(face, FaceLandmarks) else None)
    finally:
        tracker.close()
    return metrics.jitter(pts)


def openness_range(series) -> float:
    """max - min of an openness series after a 3-frame running median (NaN frames dropped)."""
    x = np.asarray(series, np.float64)
    x = x[np.isfinite(x)]
    if x.size < 3:
        return float("nan")
    med = np.median(np.stack([x[:-2], x[1:-1], x[2:]]), axis=0)
    return float(med.max() - med.min())


class _NullTracker:
    """Stands in for the pipeline's tracker when evaluate hands it landmarks directly."""

    def track(self, image, t=None):  # pragma: no cover - never called: frames carry landmarks
        raise RuntimeError("evaluate passes landmarks with every frame")

    def set_smoothing(self, smoothing):
        pass

    def close(self):
        pass


def _report(source, driving, engine, drv_pts, out_pts, busy_ms, sheet) -> QualityReport:
    n = len(drv_pts)
    both = [d is not None and o is not None for d, o in zip(drv_pts, out_pts)]
    eye_d, eye_o = (_series(metrics.eye_aspect_ratio, pts, both) for pts in (drv_pts, out_pts))
    mouth_d, mouth_o = (_series(metrics.mouth_aspect_ratio, pts, both) for pts in (drv_pts, out_pts))
    pose_d = metrics.head_pose_series([p if ok else None for p, ok in zip(drv_pts, both)])
    pose_o = metrics.head_pose_series([p if ok else None for p, ok in zip(out_pts, both)])
    pose_corr, pose_range, pose_err = {}, {}, {}
    for k, axis in enumerate(metrics.POSE_AXES):
        pose_corr[axis] = metrics.correlation(pose_o[:, k], pose_d[:, k])
        pose_range[axis] = float(np.nanmax(np.abs(pose_d[:, k]))) if np.any(np.isfinite(pose_d[:, k])) else 0.0
        pose_err[axis] = metrics.mean_abs_error(pose_o[:, k], pose_d[:, k])
    busy = float(np.median(busy_ms)) if busy_ms else float("nan")
    return QualityReport(
        source=source, driving=driving, engine=engine, frames=n,
        driver_faces=sum(d is not None for d in drv_pts), output_faces=sum(o is not None for o in out_pts),
        eye_corr=metrics.correlation(eye_o, eye_d), eye_amplitude=metrics.amplitude_ratio(eye_o, eye_d),
        mouth_corr=metrics.correlation(mouth_o, mouth_d), mouth_amplitude=metrics.amplitude_ratio(mouth_o, mouth_d),
        pose_corr=pose_corr, pose_range_deg=pose_range, pose_error_deg=pose_err,
        jitter_output=metrics.jitter(out_pts), jitter_driver=metrics.jitter(drv_pts),
        engine_ms=busy, contact_sheet=sheet,
        eye_range_driver=openness_range(eye_d), mouth_range_driver=openness_range(mouth_d),
        eye_open_driver=float(np.median([metrics.eye_aspect_ratio(p) for p in drv_pts if p is not None] or [np.nan])),
    )
