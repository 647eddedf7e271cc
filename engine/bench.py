"""Benchmark of the whole per-frame path: decode -> track -> motion -> animate -> composite -> encode.

Two passes over the same driver and pipeline:

1. One frame at a time, every stage timed: each stage's median (ms), the median of the engine's
   per-frame path (track + motion + animate + composite, ``ms_per_frame``: what one frame costs from
   camera image to output, the latency the engine adds), ``sequential_fps`` (1000 / its mean), the
   wall-clock throughput including decoding and encoding (``wall_fps``) and the peak resident memory.
2. The engine path as render and the live app run it (``Pipeline.run``: the next frame is tracked
   while this one is animated, on the second core), on frames decoded beforehand so that decoding
   and encoding stay out of it: ``fps``, frames out per second of wall-clock time.

The first ``warmup`` frames (model start-up, first detection) are left out of the statistics.
"""
from __future__ import annotations

import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

STAGES = ("decode", "track", "motion", "animate", "composite", "encode")
ENGINE_STAGES = ("track", "motion", "animate", "composite")


@dataclass
class BenchResult:
    engine: str
    source: str
    driving: str
    frames: int  # frames timed (after warm-up)
    warmup: int
    output_size: tuple[int, int]
    stages: dict[str, float]  # stage -> median ms
    ms_per_frame: float  # median of track + motion + animate + composite per frame
    fps: float  # frames per second of the engine path, tracking overlapped with animating (pass 2)
    sequential_fps: float  # frames per second of the engine path one frame at a time (1000 / mean ms)
    wall_fps: float  # frames per second of everything one frame at a time, decode and encode included
    peak_rss_mb: float  # after pass 1 (pass 2 holds its decoded frames)
    frames_without_face: int = 0
    p95_ms_per_frame: float = 0.0
    stage_p95: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_size"] = list(self.output_size)
        return d

    def summary_lines(self) -> list[str]:
        w, h = self.output_size
        lines = [f"bench: {self.engine} engine, {self.source} x {self.driving}, {self.frames} frames "
                 f"(+{self.warmup} warm-up), output {w}x{h}",
                 "stage        median ms    p95 ms"]
        for name in STAGES:
            if name in self.stages:
                lines.append(f"  {name:<10} {self.stages[name]:>9.2f} {self.stage_p95.get(name, 0.0):>9.2f}")
        lines.append(f"engine path (track+motion+animate+composite): {self.ms_per_frame:.2f} ms median, "
                     f"{self.p95_ms_per_frame:.2f} ms p95 a frame; {self.sequential_fps:.1f} fps one frame "
                     f"at a time")
        lines.append(f"engine path, next frame tracked while this one is animated: {self.fps:.1f} fps")
        lines.append(f"one frame at a time with decode and encode: {self.wall_fps:.1f} fps; "
                     f"peak RSS {self.peak_rss_mb:.0f} MB")
        if self.frames_without_face:
            lines.append(f"frames without a face (pose held): {self.frames_without_face}")
        return lines


def _proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (Linux), in MB; None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _ru_maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MB.

    On Linux this is VmHWM of /proc/self/status: ``ru_maxrss`` also counts the memory of the parent
    this process was forked from (a test runner of 2 GB makes every child report 2 GB).
    """
    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else _ru_maxrss_mb()


def rss_mb() -> float:
    """Resident set size of this process now, MB (the peak where the current value is unknown)."""
    now = _proc_status_mb("VmRSS")
    return now if now is not None else _ru_maxrss_mb()


def warmup_frames(frames: int, warmup: int = 10) -> int:
    """The frames left out of the statistics at the start: ``warmup``, at most a fifth of ``frames``."""
    return max(0, min(int(warmup), max(1, int(frames)) // 5))


def progress_steps(frames: int, warmup: int = 10) -> int:
    """How many times ``run_bench`` calls ``progress``: every frame of both passes."""
    return 2 * (max(1, int(frames)) + warmup_frames(frames, warmup))


def run_bench(source, driving, engine: str = "mesh", frames: int = 300,
              output_size: tuple[int, int] | None = (1280, 720), encode: bool = True,
              engine_options: dict | None = None, settings=None, warmup: int = 10,
              progress: Callable[[int], None] | None = None) -> BenchResult:
    """Run the pipeline on ``frames`` driving frames and time every stage.

    ``source``: portrait path; ``driving``: video path or ``"demo"``. A video shorter than
    ``frames`` loops. ``settings``: a ``PipelineSettings`` (its compositor's output size is replaced
    by ``output_size``). ``progress(n)`` is called after each frame of both passes (2 x (frames +
    warm-up) calls). Raises ``PuppetcamError`` subclasses on bad input.
    """
    from dataclasses import replace

    from engine.animators import create_animator
    from engine.compositing import CompositorSettings
    from engine.pipeline import Pipeline, PipelineSettings
    from engine.portrait import load_portrait
    from engine.sinks.recorder import ClipRecorder

    frames = max(1, int(frames))
    warmup = warmup_frames(frames, warmup)
    total = frames + warmup
    portrait = load_portrait(source)
    driver = open_driver(driving, total, loop=True)
    settings = settings or PipelineSettings()
    settings = replace(settings, compositor=replace(settings.compositor or CompositorSettings(),
                                                    output_size=tuple(output_size) if output_size else None))
    animator = create_animator(engine, **(engine_options or {}))
    pipeline = Pipeline(animator, portrait, settings)
    times = {name: [] for name in STAGES}
    recorder = None
    tmpdir = tempfile.TemporaryDirectory(prefix="puppetcam-bench-") if encode else None
    n = 0
    wall_start = None
    try:
        iterator = iter(driver)
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(iterator)
            except StopIteration:
                break
            t1 = time.perf_counter()
            result = pipeline.process(frame)
            t2 = time.perf_counter()
            if encode:
                if recorder is None:
                    h, w = result.output.shape[:2]
                    # One encoder thread: its whole cost lands in the encode stage instead of
                    # running on in the background while the next frame's stages are timed.
                    recorder = ClipRecorder(Path(tmpdir.name) / "bench.mp4", w, h, fps=driver.fps, threads=1)
                recorder.write(result.output)
            t3 = time.perf_counter()
            if n == warmup:
                wall_start = t0
            if n >= warmup:
                times["decode"].append((t1 - t0) * 1e3)
                for name in ENGINE_STAGES:
                    times[name].append(result.timings_ms.get(name, 0.0))
                times["encode"].append((t3 - t2) * 1e3)
            n += 1
            if progress is not None:
                progress(n)
        wall_end = time.perf_counter()
        if recorder is not None:
            recorder.close()
        peak_mb = peak_rss_mb()
        overlapped_fps = _overlapped_fps(pipeline, open_driver(driving, min(total, OVERLAP_POOL), loop=True),
                                         frames, warmup, progress)
    finally:
        if recorder is not None and not recorder.closed:
            recorder.close()
        pipeline.close()
        if tmpdir is not None:
            tmpdir.cleanup()
    timed = max(0, n - warmup)
    if timed == 0:
        from engine.errors import DrivingVideoError

        raise DrivingVideoError(f"no frames could be read from the driving video {Path(str(driving)).name}")
    if not encode:
        times.pop("encode")
    per_frame = np.sum([times[name] for name in ENGINE_STAGES], axis=0)
    wall = wall_end - wall_start if wall_start is not None else float("nan")
    out_size = tuple(output_size) if output_size else portrait.size
    return BenchResult(
        engine=engine, source=Path(str(source)).name, driving=Path(str(driving)).name,
        frames=timed, warmup=warmup, output_size=out_size,
        stages={name: float(np.median(v)) for name, v in times.items()},
        stage_p95={name: float(np.percentile(v, 95)) for name, v in times.items()},
        ms_per_frame=float(np.median(per_frame)),
        p95_ms_per_frame=float(np.percentile(per_frame, 95)),
        fps=overlapped_fps,
        sequential_fps=float(1000.0 / max(np.mean(per_frame), 1e-9)),
        wall_fps=float(timed / wall) if wall > 0 else float("nan"),
        peak_rss_mb=peak_mb,
        frames_without_face=pipeline.frames_without_face,
    )


OVERLAP_POOL = 120  # frames decoded up front for pass 2 (88 MB of 512x480 video), replayed in a loop


def _overlapped_fps(pipeline, driver, frames: int, warmup: int,
                    progress: Callable[[int], None] | None = None) -> float:
    """Pass 2: wall-clock frames per second of ``pipeline.run`` over already decoded frames.
    ``progress(n)`` counts on from pass 1's ``frames + warmup``."""
    from dataclasses import replace

    pool = list(driver)
    if not pool:
        return float("nan")
    fps = getattr(driver, "fps", None) or 30.0
    # Replayed frames get fresh stamps: the landmark filter expects time to go on.
    replay = (replace(pool[i % len(pool)], t_capture=i / fps, index=i) for i in range(frames + warmup))
    stamps = []
    for _ in pipeline.run(replay):
        stamps.append(time.perf_counter())
        if progress is not None:
            progress(frames + warmup + len(stamps))
    timed = stamps[warmup:]
    return float((len(timed) - 1) / (timed[-1] - timed[0])) if len(timed) > 1 else float("nan")


def open_driver(driving, max_frames: int | None, loop: bool = False, seed: int = 0, draw: bool = False):
    """A driving source by name: ``"demo"`` (the procedural driver) or a video file path.

    The result iterates ``Frame`` objects and has ``fps`` and ``truncated``. The demo driver makes
    10 s at 30 fps unless ``max_frames`` says otherwise; ``draw`` draws its landmark preview.
    """
    if str(driving) == "demo":
        from engine.demo_driver import DemoDriver

        return DemoDriver(fps=30.0, n_frames=max_frames if max_frames is not None else 300, seed=seed,
                          draw=draw)
    from engine.capture import VideoFileSource

    return VideoFileSource(Path(driving), realtime=False, loop=loop, max_frames=max_frames)
