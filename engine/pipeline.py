"""The per-frame pipeline: face tracking -> relative motion -> animator -> compositing.

One ``Pipeline`` is used by the CLI (render/bench/eval) and by the GUI's worker thread alike.

A frame goes through in two steps, ``track`` then ``animate``, so that the two can overlap: MediaPipe
runs on one core while the warp of the frame before runs on the other (``run`` does this for a
stream of frames; the GUI's worker does it for the camera's newest frames).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator

import numpy as np

from engine.animators.base import Animator
from engine.capture import Frame
from engine.compositing import Compositor, CompositorSettings
from engine.filters import OneEuroSettings
from engine.motion import Keypoints, MotionSettings, RelativeMotion
from engine.portrait import Portrait
from engine.tracking import FaceLandmarks, FaceTracker, NoFace

STAGES = ("track", "motion", "animate", "composite")


@dataclass(frozen=True)
class PipelineSettings:
    motion: MotionSettings = MotionSettings()
    smoothing: OneEuroSettings | None = OneEuroSettings()  # None = raw landmarks
    mirror_input: bool = False
    compositor: CompositorSettings = CompositorSettings()


@dataclass(frozen=True)
class TrackedFrame:
    """A driving frame and what the tracker saw in it: the first step's output, the second's input."""

    frame: Frame
    image: np.ndarray  # the frame as tracked (mirrored when mirror-input is on)
    face: FaceLandmarks | NoFace
    track_ms: float


@dataclass(frozen=True)
class PipelineResult:
    output: np.ndarray  # composited frame, ready for the sinks
    animated: np.ndarray  # the posed portrait at its own resolution
    face: FaceLandmarks | NoFace  # what the tracker saw in the driving frame
    held: bool  # no face in this frame: the last pose was held
    calibrated_now: bool  # this frame became the reference pose
    timings_ms: dict[str, float] = field(default_factory=dict)
    t_capture: float = 0.0
    frame_index: int = 0
    target: Keypoints | None = None  # the pose the animator rendered (None: the portrait as it is)


class Pipeline:
    def __init__(self, animator: Animator, portrait: Portrait, settings: PipelineSettings = PipelineSettings(),
                 tracker: FaceTracker | None = None):
        self.animator = animator
        self.settings = settings
        self.tracker = tracker or FaceTracker(still=False, smoothing=settings.smoothing)
        self.motion = RelativeMotion(settings.motion)
        self.compositor = Compositor(settings.compositor)
        self._last_target: Keypoints | None = None
        self.frames_without_face = 0
        self.set_portrait(portrait)

    def set_portrait(self, portrait: Portrait) -> None:
        """Switch avatar: per-source work happens here, once. The calibration pose is kept.

        With a fixed output size (live use) a portrait larger than the area it fills there is
        animated at that size: pixels the output would throw away cost warp time every frame.
        """
        self.source_portrait = portrait
        if self.settings.compositor.output_size is not None:
            _, _, w, h = self.compositor.fit_rect(portrait.size)
            if w < portrait.size[0]:
                portrait = portrait.resized((w, h))
        self.portrait = portrait
        self.motion.set_source(self.animator.set_source(portrait))
        self._last_target = None

    def calibrate(self) -> None:
        """The next frame with a face becomes the reference pose."""
        self.motion.reset()
        self.animator.forget_driver()

    def update_settings(self, settings: PipelineSettings) -> None:
        if settings.smoothing != self.settings.smoothing:
            self.tracker.set_smoothing(settings.smoothing)
        if settings.motion != self.settings.motion:
            self.motion.update_settings(settings.motion)
        resize = settings.compositor.output_size != self.settings.compositor.output_size
        if settings.compositor != self.settings.compositor:
            self.compositor = Compositor(settings.compositor)
        self.settings = settings
        if resize:
            self.set_portrait(self.source_portrait)

    def process(self, frame: Frame) -> PipelineResult:
        """One frame, start to end."""
        return self.animate(self.track(frame))

    def track(self, frame: Frame) -> TrackedFrame:
        """Find the face (step 1). Touches only the tracker, so it may run beside ``animate``."""
        t0 = time.perf_counter()
        image = frame.image
        if frame.landmarks is not None:  # synthetic driver: landmarks come with the frame
            face = frame.landmarks
        else:
            if self.settings.mirror_input:
                image = np.ascontiguousarray(image[:, ::-1])
            face = self.tracker.track(image, frame.t_capture)
        return TrackedFrame(frame, image, face, (time.perf_counter() - t0) * 1e3)

    def animate(self, tracked: TrackedFrame) -> PipelineResult:
        """Motion, animator and compositor (step 2), in frame order."""
        timings = {"track": tracked.track_ms}
        t1 = time.perf_counter()
        face, frame = tracked.face, tracked.frame
        held = isinstance(face, NoFace)
        calibrated_now = False
        if held:
            self.frames_without_face += 1
            target = self._last_target
        else:
            driving = self.animator.driving_keypoints(tracked.image if frame.landmarks is None else None, face)
            calibrated_now = not self.motion.is_calibrated
            if calibrated_now:
                self.motion.calibrate(self.animator.reference_keypoints(driving))
            target = self.motion(driving)
            self._last_target = target
        t2 = time.perf_counter()
        timings["motion"] = (t2 - t1) * 1e3

        animated = self.animator.render(target) if target is not None else self.portrait.image
        t3 = time.perf_counter()
        timings["animate"] = (t3 - t2) * 1e3

        output = self.compositor.compose(animated)
        timings["composite"] = (time.perf_counter() - t3) * 1e3
        return PipelineResult(output=output, animated=animated, face=face, held=held,
                              calibrated_now=calibrated_now, timings_ms=timings,
                              t_capture=frame.t_capture, frame_index=frame.index, target=target)

    def run(self, frames: Iterable[Frame]) -> Iterator[PipelineResult]:
        """Results for a stream of frames, in order.

        One helper thread reads and tracks the next frame while this thread animates the current
        one: on two cores the throughput is close to 1 / the slower of the two steps instead of
        1 / their sum, and every result is the one ``process`` would give. Settings must not change
        while the stream runs, and a stream left early must be closed (``close()``,
        ``contextlib.closing``) before the pipeline is: that joins the helper.
        """
        stream = iter(frames)

        def read_and_track() -> TrackedFrame | None:
            frame = next(stream, None)
            return None if frame is None else self.track(frame)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="puppetcam-track") as helper:
            ahead = helper.submit(read_and_track)
            while (tracked := ahead.result()) is not None:
                ahead = helper.submit(read_and_track)
                yield self.animate(tracked)

    def close(self) -> None:
        self.tracker.close()
        self.animator.close()


def with_motion(settings: PipelineSettings, **changes) -> PipelineSettings:
    return replace(settings, motion=replace(settings.motion, **changes))
