"""Live latency benchmark: a 30 fps file camera through the app's threads (capture -> worker ->
sinks), as the window runs them, optionally with the real window (offscreen) painting previews.

    python benchmarks/live_latency.py [--source IMG] [--camera VIDEO] [--seconds 20] [--window]
                                      [--record] [--camera-fps FPS] [--json]

``--camera-fps`` replays the video's first 150 frames at that rate instead (a 60 fps webcam), through
the threads only.

Reports output fps, glass-to-output latency p50/p95 (capture stamp -> output frame handed to the
sinks), the probe sink's latency (-> sink thread received it), dropped and late (> 50 ms) frames.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.threads import (CaptureThread, LatestSlot, LiveStats, ProbeSink, SinkRunner, SourceSpec,  # noqa: E402
                         WorkerThread, live_threads, open_source)

DEFAULT_SOURCE = REPO / "assets" / "avatars" / "mona-lisa.jpg"
DEFAULT_CAMERA = REPO.parent / "shared" / "media" / "driving" / "d9.mp4"


def pct(values, q):
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


def paced_camera(camera: Path, fps: float, n: int = 150):
    """A camera of ``camera``'s first ``n`` frames, replayed in a loop at ``fps`` with fresh stamps."""
    from engine.capture import Frame, VideoFileSource

    images = [f.image for f in VideoFileSource(camera, max_frames=n)]

    def frames():
        t0, i = time.monotonic(), 0
        while True:
            delay = t0 + i / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield Frame(images[i % len(images)], time.monotonic(), i)
            i += 1
    return frames


def run_threads(source: Path, camera: Path, seconds: float, record: bool, engine: str = "mesh",
                camera_fps: float | None = None) -> dict:
    from engine.animators import create_animator
    from engine.pipeline import Pipeline

    from app.settings import AppSettings

    settings = AppSettings().pipeline_settings()  # 1280x720 output, default smoothing
    slot, stats = LatestSlot(), LiveStats(keep=100000)
    worker = WorkerThread(lambda: Pipeline(create_animator(engine), __import__("engine.portrait").portrait
                                           .load_portrait(source), settings), slot, stats)
    worker.start()
    worker.wait_ready(60)
    probe = ProbeSink()
    worker.add_sink(SinkRunner("probe", probe.write, maxsize=4))
    rec = None
    if record:
        from app.recording import Recording

        tmp = Path(tempfile.mkdtemp()) / "bench.mp4"
        rec = Recording(tmp, 1280, 720, 30)
        worker.add_sink(rec.runner)
    factory = (paced_camera(camera, camera_fps) if camera_fps
               else lambda: open_source(SourceSpec("file", str(camera))))
    capture = CaptureThread(factory, slot, stats)
    capture.start()
    time.sleep(1.0)  # warm-up: the first frames include MediaPipe's start
    stats.latency_ms.clear()
    start = _counters(stats, capture, probe)
    t0 = time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    out = {"engine": engine, **_window_results(stats, capture, probe, start, dt),
           "engine_errors": stats.engine_errors}
    if rec is not None:
        worker.remove_sink("recorder")
        rec.stop()
        out["recorded_frames"] = rec.recorder.frames_written
    capture.stop()
    worker.stop()
    out["threads_left"] = len(live_threads())
    return out


def _counters(stats, capture, probe) -> tuple[int, int, int, int, int]:
    """The running counters at the start of the measured window."""
    return stats.frames_out, capture.frames, stats.dropped, stats.late_frames, len(probe.latencies_ms)


def _window_results(stats, capture, probe, start, dt: float) -> dict:
    """Rates, latency percentiles and drops over the measured window (``start`` from ``_counters``)."""
    f0, c0, d0, l0, n0 = start
    return {
        "seconds": round(dt, 1),
        "camera_fps": round((capture.frames - c0) / dt, 2),
        "output_fps": round((stats.frames_out - f0) / dt, 2),
        "latency_ms_p50": round(pct(list(stats.latency_ms), 50), 1),
        "latency_ms_p95": round(pct(list(stats.latency_ms), 95), 1),
        "sink_latency_ms_p50": round(pct(probe.latencies_ms[n0:], 50), 1),
        "sink_latency_ms_p95": round(pct(probe.latencies_ms[n0:], 95), 1),
        "dropped": stats.dropped - d0,
        "late_over_50ms": stats.late_frames - l0,
    }


def run_window(source: Path, camera: Path, seconds: float, record: bool) -> dict:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.theme import apply_theme
    from app.window import MainWindow

    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    tmp = Path(tempfile.mkdtemp())
    win = MainWindow(store=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), clips_dir=tmp)
    win.show()
    win.start(SourceSpec("file", str(camera)), avatar=str(source))
    probe = ProbeSink()

    def wait(t):
        end = time.monotonic() + t
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.003)

    while win.worker.pipeline is None:
        wait(0.05)
    win.worker.add_sink(SinkRunner("probe", probe.write, maxsize=4))
    if record:
        win.set_recording(True)
    wait(1.0)
    st = win.stats
    st.latency_ms = type(st.latency_ms)(maxlen=100000)
    start, p0 = _counters(st, win.capture, probe), win.output_view.frames_shown
    t0 = time.monotonic()
    wait(seconds)
    dt = time.monotonic() - t0
    out = {"mode": "window (offscreen)", **_window_results(st, win.capture, probe, start, dt),
           "preview_fps": round((win.output_view.frames_shown - p0) / dt, 2)}
    win.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--camera", type=Path, default=DEFAULT_CAMERA)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--engine", default="mesh")
    p.add_argument("--window", action="store_true", help="run the real window (offscreen) with its previews")
    p.add_argument("--record", action="store_true", help="record a clip at the same time")
    p.add_argument("--camera-fps", type=float, help="replay the camera's frames at this rate (threads only)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.window:
        result = run_window(a.source, a.camera, a.seconds, a.record)
    else:
        result = run_threads(a.source, a.camera, a.seconds, a.record, a.engine, a.camera_fps)
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
