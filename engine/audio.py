"""Audio sources for clips: the microphone (sounddevice/PortAudio) and a test tone.

Both deliver float32 blocks of shape ``(n, channels)`` to ``callback(block, t)``, where ``t`` is
the capture time of the block's first sample on the ``time.monotonic()`` clock, the clock the
video frames are stamped with, so :meth:`engine.sinks.recorder.ClipRecorder.write_audio` can
place audio and video on one timeline. The callback runs on the audio thread: keep it short
(hand the block to a queue). A block passed to the callback is the callback's to keep.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.errors import PuppetcamError

log = logging.getLogger(__name__)

AudioCallback = Callable[[np.ndarray, float], None]


class AudioUnavailable(PuppetcamError):
    """No audio input: PortAudio is missing, there is no microphone, or it refuses the format."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int  # the most input channels it has
    default_samplerate: float
    hostapi: str
    is_default: bool


def _sounddevice():
    """Import sounddevice, turning a missing PortAudio library into AudioUnavailable."""
    try:
        import sounddevice
    except OSError as e:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise AudioUnavailable(
            "Microphone audio needs the PortAudio library, which is not installed "
            "(on Debian/Ubuntu: sudo apt install libportaudio2)." + _detail(e)) from e
    return sounddevice


def _detail(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f" ({text})" if text else ""


def list_input_devices() -> list[InputDevice]:
    """The audio inputs PortAudio sees (empty when there is none). Raises AudioUnavailable only
    when PortAudio itself is missing."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except sd.PortAudioError as e:
        raise AudioUnavailable("Cannot list audio devices." + _detail(e)) from e
    try:
        default_in = sd.default.device[0]
    except Exception:  # noqa: BLE001
        default_in = -1
    out = []
    for d in devices:
        if d["max_input_channels"] <= 0:
            continue
        api = hostapis[d["hostapi"]]["name"] if 0 <= d["hostapi"] < len(hostapis) else ""
        out.append(InputDevice(index=d["index"], name=d["name"],
                               channels=int(d["max_input_channels"]),
                               default_samplerate=float(d["default_samplerate"]), hostapi=api,
                               is_default=d["index"] == default_in))
    return out


def capture_time(now: float, stream_now: float, adc_time: float, frames: int,
                 samplerate: float) -> float:
    """Monotonic capture time of a block's first sample.

    ``now`` is ``time.monotonic()`` in the callback; ``stream_now`` and ``adc_time`` are the
    stream's clock at the callback and at the ADC capture of the first sample (PortAudio's
    ``currentTime`` and ``inputBufferAdcTime``). Some host APIs report 0 (or nonsense) for these;
    then the block is taken to have ended just now.
    """
    lag = stream_now - adc_time
    if adc_time > 0 and stream_now > 0 and 0 <= lag < 2.0:
        return now - lag
    return now - frames / samplerate


class _Source:
    """What both sources share: the callback, start/stop, a context manager."""

    def __init__(self, samplerate: int, channels: int, callback: AudioCallback | None):
        if not callable(callback):
            raise TypeError("an audio source needs callback(block, t)")
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1, not {channels}")
        if samplerate <= 0:
            raise ValueError(f"samplerate must be > 0, not {samplerate}")
        self.samplerate = int(samplerate)
        self.channels = int(channels)
        self.callback = callback
        self.blocks_delivered = 0
        self.callback_errors = 0

    def _deliver(self, block: np.ndarray, t: float) -> None:
        try:
            self.callback(block, t)
        except Exception:  # noqa: BLE001 - a failing consumer must not kill the audio thread
            self.callback_errors += 1
            if self.callback_errors == 1:
                log.exception("audio callback failed (further failures are only counted)")
        self.blocks_delivered += 1

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class MicrophoneSource(_Source):
    """The microphone through sounddevice.InputStream.

    ``device`` is a sounddevice device index or (part of a) name; None = the system default
    input. ``block`` is the block size in frames (None: PortAudio's choice, lowest latency).
    ``start()`` raises :class:`AudioUnavailable` when PortAudio or the input device is missing
    or refuses the format. ``overflows`` counts blocks PortAudio reported as overflowed (samples
    lost because the callback was late).
    """

    def __init__(self, samplerate: int = 48000, channels: int = 1, device: int | str | None = None,
                 callback: AudioCallback | None = None, block: int | None = None):
        super().__init__(samplerate, channels, callback)
        self.device = device
        self.block = block
        self.overflows = 0
        self._stream = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._stream is not None

    def start(self) -> None:
        with self._lock:
            if self._stream is not None:
                return
            sd = _sounddevice()
            what = "the default microphone" if self.device is None else \
                f"microphone {self.device!r}"
            try:
                info = sd.query_devices(self.device, "input")
            except (sd.PortAudioError, ValueError) as e:
                raise AudioUnavailable(f"No audio input device: {what} cannot be found"
                                       f"{_detail(e)}. Connect a microphone or pick another "
                                       "input, or turn recording audio off.") from e
            try:
                stream = sd.InputStream(samplerate=self.samplerate, channels=self.channels,
                                        device=self.device, dtype="float32",
                                        blocksize=self.block or 0, callback=self._on_audio)
                stream.start()
            except (sd.PortAudioError, ValueError) as e:
                raise AudioUnavailable(
                    f"Cannot record from {info['name']!r} at {self.samplerate} Hz, "
                    f"{self.channels} channel(s){_detail(e)}.") from e
            self._stream = stream

    def stop(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    def _on_audio(self, indata, frames, time_info, status) -> None:
        now = time.monotonic()
        if status and status.input_overflow:
            self.overflows += 1
        t = capture_time(now, time_info.currentTime, time_info.inputBufferAdcTime, frames,
                         self.samplerate)
        self._deliver(np.array(indata, dtype=np.float32, copy=True), t)


class ToneSource(_Source):
    """A sine test signal produced in real time by a thread, block by block.

    Block ``k`` holds samples ``k*block ... (k+1)*block-1`` of
    ``amplitude * sin(2*pi*freq*n/samplerate)`` (the same in every channel); it is delivered once
    it has "been captured", at ``t0 + (k+1)*block/samplerate``, with capture time
    ``t0 + k*block/samplerate`` (``t0`` = ``time.monotonic()`` at ``start()``). A late thread
    catches up by delivering the overdue blocks at once, as a sound card's buffer would.
    """

    def __init__(self, freq: float = 440.0, samplerate: int = 48000, channels: int = 1,
                 block: int = 1024, callback: AudioCallback | None = None,
                 amplitude: float = 0.25):
        super().__init__(samplerate, channels, callback)
        if block < 1:
            raise ValueError(f"block must be >= 1, not {block}")
        self.freq = float(freq)
        self.block = int(block)
        self.amplitude = float(amplitude)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ToneSource", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _run(self) -> None:
        t0 = time.monotonic()
        n = self.block
        step = 2 * math.pi * self.freq / self.samplerate
        k = 0
        while not self._stop.is_set():
            due = t0 + (k + 1) * n / self.samplerate
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            idx = np.arange(k * n, (k + 1) * n, dtype=np.float64)
            wave = (self.amplitude * np.sin(idx * step)).astype(np.float32)
            block = np.repeat(wave[:, None], self.channels, axis=1)
            self._deliver(block, t0 + k * n / self.samplerate)
            k += 1
