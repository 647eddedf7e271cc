"""The worker and its helper thread, without the window: a real mesh pipeline on real frames."""
from __future__ import annotations

import threading
import time

import pytest

from app.threads import CaptureThread, LatestSlot, ProbeSink, SinkRunner, WorkerThread, live_threads
from engine.animators import create_animator
from engine.capture import Frame
from engine.compositing import CompositorSettings
from engine.pipeline import Pipeline, PipelineSettings
from engine.portrait import load_portrait
from tests.app.conftest import AVATARS, driving_frames, paced_source
from tests.conftest import record_spans


def test_a_camera_faster_than_the_engine_gets_tracking_and_animating_side_by_side(media):
    """With frames always waiting (a 60 fps webcam on a slow day), the helper tracks the newest
    frame while the worker animates the one before: MediaPipe and the warp use both cores."""
    spans = []

    def factory():
        pipe = Pipeline(create_animator("mesh"), load_portrait(AVATARS / "mona-lisa.jpg"),
                        PipelineSettings(compositor=CompositorSettings(output_size=(1280, 720))))
        record_spans(pipe, "track", spans)
        record_spans(pipe, "animate", spans)
        return pipe

    slot = LatestSlot()
    worker = WorkerThread(factory, slot)
    worker.start()
    assert worker.wait_ready(60)
    probe = ProbeSink()
    worker.add_sink(SinkRunner("probe", probe.write, maxsize=4))
    capture = CaptureThread(paced_source(driving_frames(media, n=40), fps=1000.0), slot)  # never short of frames
    capture.start()
    deadline = time.monotonic() + 30
    while worker.frames_processed < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    capture.stop()
    worker.stop()
    assert not live_threads()
    assert worker.frames_processed >= 40 and worker.stats.engine_errors == 0 and probe.count >= 30
    tracks = [s for s in spans if s[0] == "track"]
    animates = [s for s in spans if s[0] == "animate"]
    assert {s[1] for s in tracks} == {"puppetcam-tracker_0"} and {s[1] for s in animates} == {"puppetcam-worker"}
    # the next frame's tracking runs while this one is animated: their spans overlap (the helper
    # may start late in a long animation, never after it)
    side_by_side = sum(any(t[2] < a[3] and a[2] < t[3] for t in tracks) for a in animates)
    assert side_by_side >= 0.6 * len(animates), (side_by_side, len(animates))


@pytest.mark.parametrize("lead_s, done_at, expected", [(0.0, None, "first"), (0.4, None, "newest"),
                                                     (0.4, 0.05, "first")])
def test_the_helper_takes_the_frame_as_late_as_the_engine_allows(lead_s, done_at, expected):
    """A slow engine (FOMM on a CPU) animates for far longer than MediaPipe tracks: while the worker
    animates, the helper waits that difference before taking a frame, so the frame it tracks is the
    newest, not one that aged through a whole animation first. Once the worker is done it takes the
    waiting frame at once."""
    import numpy as np

    slot = LatestSlot()
    worker = WorkerThread(lambda: None, slot)  # not started: its helper's step alone
    worker._idle.clear()  # the worker is animating a frame
    if done_at is not None:
        threading.Timer(done_at, worker._idle.set).start()
    image = np.zeros((8, 8, 3), np.uint8)
    slot.put(Frame(image, time.monotonic(), index=0))
    threading.Timer(0.15, lambda: slot.put(Frame(image, time.monotonic(), index=1))).start()
    taken = worker._take(None, True, lead_s)  # pass-through: no tracker needed
    assert taken.frame.index == {"first": 0, "newest": 1}[expected]
    assert taken.tracked is None and taken.error is None
