"""Soak benchmark: the live pipeline on a looping 30 fps file camera with recording on, for N
minutes; samples the process's memory (RSS) every interval and reports its growth and any dropped
or late frames.

    python benchmarks/soak.py [--minutes 30] [--sample-seconds 60] [--window] [--json]

``--window`` runs the real window offscreen (previews painted) instead of the bare threads.
Growth is measured from the first sample after the warm-up minute to the last one.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.bench import rss_mb  # noqa: E402

DEFAULT_SOURCE = REPO / "assets" / "avatars" / "mona-lisa.jpg"
DEFAULT_CAMERA = REPO.parent / "shared" / "media" / "driving" / "d9.mp4"


class ThreadsRig:
    def __init__(self, source, camera, clip):
        from app.recording import Recording
        from app.settings import AppSettings
        from app.threads import CaptureThread, LatestSlot, LiveStats, SourceSpec, WorkerThread, open_source
        from engine.animators import create_animator
        from engine.pipeline import Pipeline
        from engine.portrait import load_portrait

        settings = AppSettings().pipeline_settings()
        self.slot, self.stats = LatestSlot(), LiveStats()
        self.worker = WorkerThread(lambda: Pipeline(create_animator("mesh"), load_portrait(source), settings),
                                   self.slot, self.stats)
        self.worker.start()
        self.worker.wait_ready(120)
        self.recording = Recording(clip, 1280, 720, 30)
        self.worker.add_sink(self.recording.runner)
        self.capture = CaptureThread(lambda: open_source(SourceSpec("file", str(camera))), self.slot, self.stats)
        self.capture.start()

    def wait(self, seconds):
        time.sleep(seconds)

    def close(self):
        self.worker.remove_sink("recorder")
        self.recording.stop()
        self.capture.stop()
        self.worker.stop()


class WindowRig:
    def __init__(self, source, camera, clip):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from app.threads import SourceSpec
        from app.window import MainWindow

        self.app = QApplication.instance() or QApplication([])
        tmp = Path(tempfile.mkdtemp())
        self.win = MainWindow(store=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), clips_dir=tmp)
        self.win.show()
        self.win.start(SourceSpec("file", str(camera)), avatar=str(source))
        while self.win.worker.pipeline is None:
            self.wait(0.05)
        self.win.set_recording(True, clip)
        self.stats, self.worker, self.recording = self.win.stats, self.win.worker, self.win.recording

    def wait(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.004)

    def close(self):
        self.win.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--sample-seconds", type=float, default=60.0)
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--camera", type=Path, default=DEFAULT_CAMERA)
    p.add_argument("--window", action="store_true")
    p.add_argument("--keep-clip", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)

    clip = Path(tempfile.mkdtemp()) / "soak.mp4"
    rig = (WindowRig if a.window else ThreadsRig)(a.source, a.camera, clip)
    rig.wait(min(60.0, a.sample_seconds))  # warm-up: allocators and caches settle
    st = rig.stats
    start = {"t": time.monotonic(), "out": st.frames_out, "dropped": st.dropped, "late": st.late_frames}
    samples = [(0.0, round(rss_mb(), 1))]
    print(f"t=0s rss={samples[0][1]} MB", file=sys.stderr)
    end = start["t"] + a.minutes * 60
    while time.monotonic() < end:
        rig.wait(min(a.sample_seconds, max(0.0, end - time.monotonic())))
        t = time.monotonic() - start["t"]
        samples.append((round(t, 1), round(rss_mb(), 1)))
        print(f"t={t:.0f}s rss={samples[-1][1]} MB out={st.frames_out - start['out']} "
              f"dropped={st.dropped - start['dropped']} late={st.late_frames - start['late']}", file=sys.stderr)
    dt = time.monotonic() - start["t"]
    lat = sorted(st.latency_ms)
    result = {
        "mode": "window" if a.window else "threads",
        "minutes": round(dt / 60, 2),
        "rss_mb": samples,
        "rss_growth_mb": round(samples[-1][1] - samples[0][1], 1),
        "rss_growth_mb_per_hour": round((samples[-1][1] - samples[0][1]) / max(dt, 1) * 3600, 1),
        "frames_out": st.frames_out - start["out"],
        "output_fps": round((st.frames_out - start["out"]) / dt, 2),
        "dropped": st.dropped - start["dropped"],
        "late_over_50ms": st.late_frames - start["late"],
        "engine_errors": st.engine_errors,
        "latency_ms_p50_last": round(lat[len(lat) // 2], 1) if lat else None,
    }
    rig.close()
    result["clip_frames"] = rig.recording.recorder.frames_written
    result["clip_repeated_frames"] = rig.recording.repeated_frames
    result["clip_error"] = rig.recording.error or None
    result["clip_mb"] = round(clip.stat().st_size / 1e6, 1) if clip.exists() else 0
    if not a.keep_clip and clip.exists():
        clip.unlink()
    print(json.dumps(result) if a.json else "\n".join(f"{k:>24}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
