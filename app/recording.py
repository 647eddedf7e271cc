"""One recording: a ClipRecorder fed by a sink thread, plus (optionally) microphone audio.

Clips are constant frame rate: when the engine skipped a frame slot (a late frame), the previous
frame is repeated in it (up to ``MAX_FILL_S``), so every editor and player sees a plain 30 fps clip
whose duration is the recording's real duration. The recorder is not thread-safe, so video frames *and* audio blocks are written on the sink's own
thread: the audio callback only appends to a bounded deque, which the sink drains before each frame
and when idle. The clip's timeline starts at the first video frame; audio captured before it is cut.
"""
from __future__ import annotations

import collections
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from app.threads import SinkRunner
from engine.errors import PuppetcamError
from engine.sinks.recorder import ClipRecorder

log = logging.getLogger("puppetcam.app")

AUDIO_RATE = 48000
# Live clips share 2 cores with the engine: x264 "superfast" costs ~8 ms of CPU per 720p frame here
# against ~14 ms for "veryfast" (files ~30 % larger), which keeps the live output at 30 fps.
LIVE_PRESET = "superfast"
MAX_FILL_S = 1.0  # a longer stall (a frozen camera) leaves a gap instead of a burst of repeats


def default_audio_factory(callback):
    from engine.audio import MicrophoneSource

    return MicrophoneSource(samplerate=AUDIO_RATE, channels=1, callback=callback)


class Recording:
    """``Recording(path, w, h, fps, audio_factory=None)``; ``runner`` goes to the worker; ``stop()``.

    ``audio_factory(callback)`` returns an audio source (``engine.audio.MicrophoneSource`` or a
    ``ToneSource`` in tests) or None for a silent clip. When the microphone cannot be opened the
    clip is recorded without sound and ``warning`` says why. ``OutputError`` when the file cannot
    be created.
    """

    def __init__(self, path, width: int, height: int, fps: float,
                 audio_factory: Callable | None = None,
                 on_error: Callable[[str, str], None] | None = None, queue_size: int = 8):
        self.path = Path(path)
        self.warning = ""
        self.started = time.monotonic()
        self.fps = float(fps)
        self.repeated_frames = 0  # slots filled with the previous frame
        self._t0: float | None = None
        self._last_slot = -1
        self._last_image: np.ndarray | None = None
        self._audio_blocks: collections.deque = collections.deque(maxlen=400)  # ~8 s at 1024/48k
        self.audio = None
        audio_rate = None
        if audio_factory is not None:
            try:
                self.audio = audio_factory(self._on_audio)
                self.audio.start()
                audio_rate = self.audio.samplerate
            except PuppetcamError as exc:
                self.audio = None
                self.warning = f"recording without sound: {exc}"
            except Exception as exc:  # noqa: BLE001 - a sound driver can raise anything
                log.exception("cannot open the microphone")
                self.audio = None
                self.warning = f"recording without sound: the microphone failed ({exc})"
        try:
            self.recorder = ClipRecorder(self.path, width, height, fps, audio_rate=audio_rate, preset=LIVE_PRESET)
        except Exception:
            self._stop_audio()
            raise
        self.runner = SinkRunner("recorder", self._write, close_fn=self._close, maxsize=queue_size,
                                 on_error=on_error, idle=self._drain_audio if self.audio else None)

    @property
    def has_audio(self) -> bool:
        return self.recorder.has_audio

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def error(self) -> str:
        return self.runner.error

    def _on_audio(self, block: np.ndarray, t: float) -> None:  # audio thread: keep it short
        self._audio_blocks.append((block, t))

    def _drain_audio(self, final: bool = False) -> None:
        """Write the audio that the video already covers (audio never runs ahead of the video on
        the clip's timeline, so both end together); ``final`` cuts the last block at the video's end."""
        if self._t0 is None or self.recorder.error is not None:  # the clip starts with its first frame
            return
        rate = self.recorder.audio_rate
        video_end = self._t0 + (self._last_slot + 1) / self.fps
        while self._audio_blocks:
            block, t = self._audio_blocks[0]
            if t + len(block) / rate > video_end:
                if not final:
                    return
                keep = int(round((video_end - t) * rate))
                if keep > 0:
                    self.recorder.write_audio(block[:keep], t)
                self._audio_blocks.clear()
                return
            self._audio_blocks.popleft()
            self.recorder.write_audio(block, t)

    def _write(self, image: np.ndarray, t: float) -> None:
        if self._t0 is None:
            self._t0 = t
        slot = round((t - self._t0) * self.fps)
        if self._last_image is not None and slot - self._last_slot - 1 <= MAX_FILL_S * self.fps:
            for k in range(self._last_slot + 1, slot):  # a skipped slot: hold the previous frame
                self.recorder.write(self._last_image, self._t0 + k / self.fps)
                self.repeated_frames += 1
        self.recorder.write(image, t)
        if slot > self._last_slot:
            self._last_slot, self._last_image = slot, image

    def _close(self) -> None:
        self._stop_audio()
        if self.recorder.error is None and not self.recorder.closed and self.recorder.has_audio:
            self._drain_audio(final=True)
        self.recorder.close()

    def _stop_audio(self) -> None:
        audio, self.audio = self.audio, None
        if audio is not None:
            try:
                audio.stop()
            except Exception:  # noqa: BLE001
                log.exception("stopping the microphone failed")

    def stop(self, timeout: float = 2.0) -> bool:
        """Finish the queued frames and finalize the clip (on the sink thread), then join it."""
        self._stop_audio()
        return self.runner.stop(timeout)
