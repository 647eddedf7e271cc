"""The threads that move frames: camera -> engine -> sinks. No Qt in here, only callbacks.

- ``CaptureThread`` reads a source (camera, looping video file, demo driver), stamps each frame with
  its capture time (the sources do it, ``time.monotonic()``) and keeps only the latest one in a
  ``LatestSlot``; a frame overwritten before the engine took it counts as dropped.
- ``WorkerThread`` owns the ``engine.pipeline.Pipeline``: it runs the newest frame and offers the
  result to every sink. Its helper thread takes the newest frame and tracks it (``Pipeline.track``)
  while the worker animates the frame before (``Pipeline.animate``): MediaPipe on one core, the warp
  on the other. Changes (avatar, settings, calibrate) are queued as commands and applied between
  frames, while the helper is idle, so no change ever meets a frame half done.
- ``SinkRunner`` runs one sink (virtual camera, recorder, a test probe) on its own thread behind a
  bounded queue; ``offer`` never blocks: when the queue is full the frame is dropped and counted.

Every thread is a daemon named ``puppetcam-...`` and ``stop()`` joins it within a deadline, so the
window closes within 2 s even when an engine is slow. The GUI wires the callbacks to Qt signals.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from engine.capture import Frame
from engine.errors import PuppetcamError

log = logging.getLogger("puppetcam.app")

THREAD_PREFIX = "puppetcam-"
JOIN_DEADLINE_S = 2.0


def live_threads() -> list[threading.Thread]:
    """Threads of ours that are still running (tests use it to check shutdown)."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


# ---------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourceSpec:
    """What drives the avatar: ``camera`` (index), ``file`` (path, real time, looping) or ``demo``."""

    kind: str
    value: str = ""
    loop: bool = True

    @staticmethod
    def parse(text: str) -> "SourceSpec":
        """``--camera`` syntax: an index, ``demo``, or a path; also the stored ``kind:value`` form."""
        text = (text or "").strip()
        if text in ("", "demo", "demo:"):
            return SourceSpec("demo")
        if text.isdigit():
            return SourceSpec("camera", text)
        for kind in ("camera", "file"):
            if text.startswith(kind + ":"):
                return SourceSpec(kind, text[len(kind) + 1:])
        return SourceSpec("file", text)

    def __str__(self) -> str:
        return "demo" if self.kind == "demo" else f"{self.kind}:{self.value}"

    @property
    def label(self) -> str:
        if self.kind == "demo":
            return "Demo driver"
        if self.kind == "camera":
            return f"Camera {self.value}"
        return f"Video file: {Path(self.value).name}"


def open_source(spec: SourceSpec) -> Iterable[Frame]:
    """An iterable of ``Frame`` for ``spec``; raises ``PuppetcamError`` with one clear line."""
    if spec.kind == "camera":
        from engine.capture import CameraSource

        return CameraSource(int(spec.value))
    if spec.kind == "file":
        from engine.capture import VideoFileSource

        return VideoFileSource(spec.value, realtime=True, loop=spec.loop)
    if spec.kind == "demo":
        try:
            from engine.demo_driver import DemoDriver
        except ImportError as exc:  # the demo driver lands with the CLI
            raise PuppetcamError(f"the demo driver is not available in this build ({exc})") from None
        return DemoDriver(n_frames=None, realtime=True)
    raise PuppetcamError(f"unknown camera kind {spec.kind!r}")


# ---------------------------------------------------------------------------------------- slots
class LatestSlot:
    """A one-item mailbox: ``put`` replaces what is there (counting it as dropped), ``take`` waits."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item: Any = None
        self._has = False
        self.dropped = 0
        self.put_count = 0

    def put(self, item) -> None:
        with self._cond:
            if self._has:
                self.dropped += 1
            self._item, self._has = item, True
            self.put_count += 1
            self._cond.notify_all()

    def take(self, timeout: float | None = None):
        """The newest item, or None after ``timeout`` (or on ``wake``)."""
        with self._cond:
            if not self._has:
                self._cond.wait(timeout)
            if not self._has:
                return None
            item, self._item, self._has = self._item, None, False
            return item

    def peek_take(self):
        """Like ``take`` without waiting."""
        return self.take(0)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class RunningMean:
    """An exponential moving average (``value`` 0 until the first sample)."""

    def __init__(self, weight: float = 0.2):
        self.weight = weight
        self.value = 0.0
        self._started = False

    def add(self, x: float) -> None:
        self.value = x if not self._started else self.value + self.weight * (x - self.value)
        self._started = True


class RateMeter:
    """Events per second over the last ``window`` seconds (thread-safe enough for stats)."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._times: collections.deque[float] = collections.deque(maxlen=512)

    def tick(self, t: float | None = None) -> None:
        self._times.append(time.monotonic() if t is None else t)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        times = [t for t in list(self._times) if now - t <= self.window]
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0


class LiveStats:
    """What the status bar shows: fps, glass-to-output latency, drops. Written by the threads."""

    def __init__(self, keep: int = 300):
        self.capture = RateMeter()
        self.engine = RateMeter()
        self.latency_ms: collections.deque[float] = collections.deque(maxlen=keep)
        self.engine_errors = 0
        self.frames_out = 0
        self.held_frames = 0
        self.late_frames = 0  # output later than LATE_MS after capture
        self.sink_drops: dict[str, int] = {}
        self.capture_dropped = 0  # frames the engine never saw because a newer one arrived

    LATE_MS = 50.0

    def add_output(self, latency_ms: float, held: bool) -> None:
        self.engine.tick()
        self.latency_ms.append(latency_ms)
        self.frames_out += 1
        self.held_frames += bool(held)
        self.late_frames += latency_ms > self.LATE_MS

    @property
    def dropped(self) -> int:
        return self.capture_dropped + sum(self.sink_drops.values())

    def latency_percentiles(self) -> tuple[float, float]:
        values = list(self.latency_ms)
        if not values:
            return 0.0, 0.0
        p50, p95 = np.percentile(values, [50, 95])
        return float(p50), float(p95)


# ---------------------------------------------------------------------------------------- capture
class CaptureThread(threading.Thread):
    """Reads ``source_factory()`` and keeps only the newest frame in ``slot``.

    When the source ends or fails, ``on_lost(message)`` is called once and the thread ends; the
    worker keeps the last frame it rendered (the previews hold it), and the GUI offers to reconnect.
    """

    def __init__(self, source_factory: Callable[[], Iterable[Frame]], slot: LatestSlot,
                 stats: LiveStats | None = None, on_lost: Callable[[str], None] | None = None,
                 on_frame: Callable[[Frame], None] | None = None, name: str = "source"):
        super().__init__(name=f"{THREAD_PREFIX}capture", daemon=True)
        self._factory = source_factory
        self.slot = slot
        self.stats = stats or LiveStats()
        self.on_lost = on_lost
        self.on_frame = on_frame
        self.source_name = name
        self._halt = threading.Event()
        self.frames = 0
        self.lost_message = ""
        self._source = None

    def run(self) -> None:
        try:
            self._source = self._factory()
            for frame in self._source:
                if self._halt.is_set():
                    return
                self.slot.put(frame)
                self.frames += 1
                self.stats.capture.tick(frame.t_capture)
                self.stats.capture_dropped = self.slot.dropped
                if self.on_frame is not None:
                    self.on_frame(frame)
            if not self._halt.is_set():
                self._lost(f"{self.source_name} ended: no more frames")
        except PuppetcamError as exc:
            if not self._halt.is_set():
                self._lost(str(exc))
        except Exception as exc:  # noqa: BLE001 - a camera driver can raise anything
            log.exception("capture failed")
            if not self._halt.is_set():
                self._lost(f"{self.source_name} stopped: {exc or type(exc).__name__}")
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001
                    log.exception("closing the camera failed")

    def _lost(self, message: str) -> None:
        self.lost_message = message
        log.warning("camera lost: %s", message)
        if self.on_lost is not None:
            self.on_lost(message)

    def stop(self, timeout: float = JOIN_DEADLINE_S) -> bool:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
        return not self.is_alive()


# ---------------------------------------------------------------------------------------- sinks
_STOP = object()


class SinkRunner(threading.Thread):
    """Runs ``write(image, t_capture)`` for each offered frame on its own thread.

    ``offer`` never blocks: with ``maxsize`` frames already waiting the new one is dropped and
    counted. An exception from ``write`` (disk full, device gone) stops this sink only:
    ``on_error(message)`` is called and later offers are ignored. ``close_fn`` runs on this thread
    when the runner stops, so a recorder is finalized where it was written.
    """

    def __init__(self, name: str, write: Callable[[np.ndarray, float], None],
                 close_fn: Callable[[], None] | None = None, maxsize: int = 4,
                 on_error: Callable[[str, str], None] | None = None,
                 idle: Callable[[], None] | None = None, idle_interval: float = 0.05):
        super().__init__(name=f"{THREAD_PREFIX}sink-{name}", daemon=True)
        self.sink_name = name
        self._write = write
        self._close_fn = close_fn
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.on_error = on_error
        self._idle = idle
        self._idle_interval = idle_interval
        self.dropped = 0
        self.written = 0
        self.error = ""
        self._closed = threading.Event()

    @property
    def failed(self) -> bool:
        return bool(self.error)

    def offer(self, image: np.ndarray, t_capture: float) -> bool:
        if self.error or self._closed.is_set():
            return False
        try:
            self._queue.put_nowait((image, t_capture))
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self._idle_interval if self._idle else None)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    return
                if self.error:
                    continue
                try:
                    if self._idle is not None:
                        self._idle()  # e.g. the recorder's audio blocks, on this same thread
                    if item is None:
                        continue
                    self._write(*item)
                    self.written += 1
                except Exception as exc:  # noqa: BLE001 - every sink error becomes one message
                    if not isinstance(exc, PuppetcamError):
                        log.exception("sink %s failed", self.sink_name)
                    self._fail(str(exc) or type(exc).__name__)
        finally:
            if self._close_fn is not None:
                try:
                    self._close_fn()
                except Exception as exc:  # noqa: BLE001
                    if not isinstance(exc, PuppetcamError):
                        log.exception("closing sink %s failed", self.sink_name)
                    if not self.error:
                        self._fail(str(exc) or type(exc).__name__)

    def _fail(self, message: str) -> None:
        self.error = message
        log.warning("sink %s stopped: %s", self.sink_name, message)
        if self.on_error is not None:
            self.on_error(self.sink_name, message)

    def stop(self, timeout: float = JOIN_DEADLINE_S) -> bool:
        """Finish what is queued (the recorder's last frames), close the sink, join."""
        self._closed.set()
        while True:
            try:
                self._queue.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                if not self.is_alive():
                    break
        if timeout > 0 and self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
        return not self.is_alive()


class ProbeSink:
    """An in-memory sink (tests, benchmarks): keeps the last frames and their latencies."""

    def __init__(self, keep: int = 8):
        self.frames: collections.deque[np.ndarray] = collections.deque(maxlen=keep)
        self.count = 0
        self.latencies_ms: list[float] = []
        self._lock = threading.Lock()

    def write(self, image: np.ndarray, t_capture: float) -> None:
        with self._lock:
            self.frames.append(image)
            self.count += 1
            self.latencies_ms.append((time.monotonic() - t_capture) * 1e3)

    @property
    def last(self) -> np.ndarray | None:
        with self._lock:
            return self.frames[-1] if self.frames else None


# ---------------------------------------------------------------------------------------- worker
@dataclass(frozen=True)
class WorkerOutput:
    """What the previews get for one frame."""

    frame: Frame  # the driving frame (already mirrored when mirror-input is on? no: as captured)
    output: np.ndarray  # what the sinks got
    face: Any  # FaceLandmarks | NoFace of the driving frame (in the mirrored image if mirrored)
    held: bool
    calibrated_now: bool
    alignment: float | None  # 0..100 pose match between driver and avatar, None without a face
    latency_ms: float
    passthrough: bool
    timings_ms: dict | None = None  # the pipeline's per-stage times for this frame
    wait_ms: float = 0.0  # capture stamp -> the engine (its helper) picked the frame up


@dataclass(frozen=True)
class TakenFrame:
    """What the worker's helper hands over: the newest camera frame, tracked unless passing through."""

    frame: Frame
    wait_ms: float  # capture stamp -> the helper picked the frame up
    tracked: Any = None  # engine.pipeline.TrackedFrame; None in pass-through
    error: Exception | None = None  # the tracker failed on this frame


class WorkerThread(threading.Thread):
    """Runs the pipeline on the newest frame, never a backlog; offers results to the sinks.

    ``pipeline_factory()`` builds the pipeline on this thread (models load off the GUI thread).
    ``on_output(WorkerOutput)`` is called per frame (the GUI keeps only the newest for its preview);
    ``on_error(message)`` for engine errors (one frame fails: logged, counted, the loop goes on);
    ``on_ready()`` once the pipeline exists; ``on_fatal(message)`` when it cannot be built.
    """

    def __init__(self, pipeline_factory: Callable[[], Any], slot: LatestSlot, stats: LiveStats | None = None,
                 on_output: Callable[[WorkerOutput], None] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 on_ready: Callable[[], None] | None = None,
                 on_fatal: Callable[[str], None] | None = None,
                 auto_calibrate_on_steady: bool = True):
        super().__init__(name=f"{THREAD_PREFIX}worker", daemon=True)
        self._factory = pipeline_factory
        self.slot = slot
        self.stats = stats or LiveStats()
        self.on_output = on_output
        self.on_error = on_error
        self.on_ready = on_ready
        self.on_fatal = on_fatal
        self.pipeline = None
        self.passthrough = False
        self.auto_calibrate_on_steady = auto_calibrate_on_steady
        self._sinks: dict[str, SinkRunner] = {}
        self._sinks_lock = threading.Lock()
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._halt = threading.Event()
        self._ready = threading.Event()
        self.frames_processed = 0
        self.last_error = ""
        self._steady = None
        self._alignment = None
        self._idle = threading.Event()  # clear while this thread animates a frame
        self._idle.set()
        self._busy_ms = RunningMean()  # what animating a frame takes on this thread
        self._track_ms = RunningMean()  # what tracking one takes on the helper

    # -- sinks (any thread) ---------------------------------------------------------------------
    def add_sink(self, runner: SinkRunner) -> SinkRunner:
        if not runner.is_alive():
            runner.start()
        with self._sinks_lock:
            old = self._sinks.pop(runner.sink_name, None)
            self._sinks[runner.sink_name] = runner
        if old is not None:
            old.stop()
        return runner

    def remove_sink(self, name: str, timeout: float = JOIN_DEADLINE_S) -> SinkRunner | None:
        with self._sinks_lock:
            runner = self._sinks.pop(name, None)
        if runner is not None:
            self.stats.sink_drops[f"{name}#{id(runner)}"] = runner.dropped
            runner.stop(timeout)
        return runner

    def sink(self, name: str) -> SinkRunner | None:
        with self._sinks_lock:
            return self._sinks.get(name)

    # -- commands (any thread; applied on this thread between frames) ----------------------------
    def submit(self, fn: Callable[[Any], None], description: str = "") -> None:
        """Run ``fn(pipeline)`` on the worker thread before the next frame."""
        self._commands.put((fn, description))
        self.slot.wake()

    def calibrate(self) -> None:
        self.submit(lambda p: p.calibrate(), "calibrate")

    def set_portrait(self, portrait) -> None:
        self.submit(lambda p: p.set_portrait(portrait), f"switch avatar to {portrait.name}")

    def update_settings(self, settings) -> None:
        self.submit(lambda p: p.update_settings(settings), "update settings")

    def rebuild(self, factory: Callable[[Any], Any], description: str = "switch engine",
                on_failed: Callable[[str], None] | None = None) -> None:
        """Replace the pipeline by ``factory(old_pipeline)`` (e.g. another engine); on failure the
        old one stays, the error is reported and ``on_failed(message)`` is called."""
        def swap(old):
            try:
                new = factory(old)
            except Exception as exc:
                if on_failed is not None:
                    on_failed(str(exc) or type(exc).__name__)
                raise
            from engine.alignment import PoseAlignment

            self.pipeline = new
            self._alignment = PoseAlignment(new.portrait.landmarks)
            try:
                old.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the old pipeline failed")

        self.submit(swap, description)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.pipeline = self._factory()
            from engine.alignment import PoseAlignment, SteadyDetector

            self._steady = SteadyDetector()
            self._alignment = PoseAlignment(self.pipeline.portrait.landmarks)
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, PuppetcamError):
                log.exception("cannot start the engine")
            self.last_error = str(exc) or type(exc).__name__
            if self.on_fatal is not None:
                self.on_fatal(self.last_error)
            return
        finally:
            self._ready.set()
        if self.on_ready is not None:
            self.on_ready()
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{THREAD_PREFIX}tracker") as helper:
                taken = None
                while True:
                    self._apply_commands()  # the helper is idle here: a command may touch the tracker
                    if self._halt.is_set():
                        break
                    # The helper takes the next frame as late as lets its tracking end with this
                    # frame's animation: a slow engine (FOMM on a CPU) still animates a fresh frame.
                    lead_s = max(0.0, self._busy_ms.value - self._track_ms.value) / 1e3 if taken else 0.0
                    if taken is not None:
                        self._idle.clear()  # before the helper starts: it must see this frame's animation
                    ahead = helper.submit(self._take, self.pipeline, self.passthrough, lead_s)
                    if taken is not None:
                        t0 = time.perf_counter()
                        self._process(taken)  # while the helper takes and tracks the next frame
                        self._idle.set()
                        self._busy_ms.add((time.perf_counter() - t0) * 1e3)
                    taken = ahead.result()
                    if taken is not None and taken.tracked is not None:
                        self._track_ms.add(taken.tracked.track_ms)
        finally:
            try:
                self.pipeline.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the pipeline failed")

    def _take(self, pipeline, passthrough: bool, lead_s: float = 0.0) -> TakenFrame | None:
        """On the helper thread, after ``lead_s`` or once the worker is done animating, whichever
        comes first: the newest frame (None after 0.1 s without one), and its face."""
        if lead_s > 0:
            self._idle.wait(lead_s)
        frame = self.slot.take(timeout=0.1)
        if frame is None or self._halt.is_set():
            return None
        wait_ms = (time.monotonic() - frame.t_capture) * 1e3
        if passthrough:
            return TakenFrame(frame, wait_ms)
        try:
            return TakenFrame(frame, wait_ms, tracked=pipeline.track(frame))
        except Exception as exc:  # noqa: BLE001 - reported by the worker like any engine error
            return TakenFrame(frame, wait_ms, error=exc)

    def _apply_commands(self) -> None:
        while True:
            try:
                fn, description = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fn(self.pipeline)
                if self._alignment is not None and "avatar" in description:
                    from engine.alignment import PoseAlignment

                    self._alignment = PoseAlignment(self.pipeline.portrait.landmarks)
                if description == "calibrate" and self._steady is not None:
                    self._steady.done = True  # a manual calibration wins over the automatic one
            except Exception as exc:  # noqa: BLE001
                if not isinstance(exc, PuppetcamError):
                    log.exception("command failed: %s", description)
                self._report_error(f"cannot {description or 'apply the change'}: {exc}")

    def _process(self, taken: TakenFrame) -> None:
        frame, timings = taken.frame, None
        passthrough = taken.tracked is None and taken.error is None
        try:
            if taken.error is not None:
                raise taken.error
            if passthrough:
                output = self.pipeline.compositor.compose(frame.image)
                face, held, calibrated_now = None, False, False
            else:
                result = self.pipeline.animate(taken.tracked)
                output, face, held, calibrated_now = result.output, result.face, result.held, result.calibrated_now
                timings = result.timings_ms
                if self.auto_calibrate_on_steady and self._steady is not None and not held:
                    if self._steady.update(face):  # the first steady frame becomes the reference
                        self.pipeline.calibrate()
                        calibrated_now = True
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the show
            self.stats.engine_errors += 1
            log.exception("engine error on frame %d", frame.index)
            self._report_error(f"engine error on a frame ({type(exc).__name__}: {exc}); still running")
            return
        now = time.monotonic()
        latency_ms = (now - frame.t_capture) * 1e3
        self.frames_processed += 1
        self.stats.add_output(latency_ms, held)
        with self._sinks_lock:
            sinks = list(self._sinks.values())
        for runner in sinks:
            runner.offer(output, frame.t_capture)
            self.stats.sink_drops[runner.sink_name] = runner.dropped
        alignment = None
        if face is not None and not held and self._alignment is not None:
            try:
                alignment = self._alignment.score(face)
            except Exception:  # noqa: BLE001 - a score is nice to have
                alignment = None
        if self.on_output is not None:
            self.on_output(WorkerOutput(frame=frame, output=output, face=face, held=held,
                                        calibrated_now=calibrated_now, alignment=alignment,
                                        latency_ms=latency_ms, passthrough=passthrough,
                                        timings_ms=timings, wait_ms=taken.wait_ms))

    def _report_error(self, message: str) -> None:
        self.last_error = message
        if self.on_error is not None:
            self.on_error(message)

    def stop(self, timeout: float = JOIN_DEADLINE_S) -> bool:
        deadline = time.monotonic() + timeout
        self._halt.set()
        self.slot.wake()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(max(0.05, deadline - time.monotonic() - 0.5))
        with self._sinks_lock:
            names = list(self._sinks)
        for name in names:
            self.remove_sink(name, max(0.05, deadline - time.monotonic()))
        return not self.is_alive()
