"""Clip recorder: H.264 MP4 (PyAV) with an optional AAC audio track, playable even after a kill.

The MP4 is *fragmented* (``movflags=frag_keyframe+empty_moov+default_base_moof``): the header holds
no sample table, and every GOP (one second by default) is written and flushed as a self-contained
``moof``+``mdat`` fragment. A process killed mid-clip therefore leaves a file that plays up to its
last complete fragment; ``close()`` only adds the final fragment and an index.

Timestamps: video frames and audio blocks carry capture times (seconds on one clock, e.g.
``time.monotonic()``); both are placed relative to the recording's start, so audio and video stay in
sync even when frames are dropped. Without times, frames are numbered at the nominal fps and audio
is laid end to end.

A full disk or an unwritable path raises ``OutputError`` (one clear line). After a disk-full error
the file is cut back to its last complete fragment, so the part written so far stays playable.
"""
from __future__ import annotations

import errno
import functools
import os
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.errors import OutputError

#: MP4 muxer options that make a clip playable up to its last complete fragment at any moment.
FRAGMENTED_MP4 = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "flush_packets": "1",  # hand each finished fragment to the OS at once
    "max_interleave_delta": "1000000",  # us: never hold more than ~1 s waiting for the other stream
}


def even_size(width: int, height: int) -> tuple[int, int]:
    """H.264 in 4:2:0 needs even dimensions: drop the odd last column/row."""
    return max(2, int(width) - int(width) % 2), max(2, int(height) - int(height) % 2)


def _strerror(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def ensure_writable(path) -> Path:
    """Fail early (``OutputError``) when ``path`` cannot be created; leaves no file behind.

    Used by the CLI before any work is done, so a typo in ``-o`` costs nothing.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write clip to {path}: it is a directory")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write clip to {path}: {_strerror(exc)}") from None
    if not existed:
        try:
            path.unlink()
        except OSError:
            pass
    return path


def _drop_priming(packets):
    """Drop AAC's priming packet (pts < 0: the encoder's delay, decoded as silence).

    A fragmented MP4 has no edit list to skip it, so the muxer would instead shift *every* stream
    by 1024 samples: the video would start at 21 ms and report a wrong average fps. Without it the
    audio lands exactly on its timestamps; only its first 21 ms decode slightly faded in.
    """
    return [p for p in packets if p.pts is None or p.pts >= 0]


class _TrackedFile:
    """Unbuffered file for PyAV that remembers the first write error (disk full, I/O error)."""

    def __init__(self, path: Path):
        self._f = open(path, "wb", buffering=0)
        self.error: OSError | None = None

    def write(self, data) -> int:
        if self.error is not None:
            raise self.error
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                n = self._f.write(view[done:])
                if not n:
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
                done += n
        except OSError as exc:
            self.error = exc
            raise
        return done

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def flush(self) -> None:
        pass

    def truncate(self, size: int) -> None:
        self._f.truncate(size)

    def close(self) -> None:
        self._f.close()

    @property
    def closed(self) -> bool:
        return self._f.closed


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


class ClipRecorder:
    """Writes RGB frames (and optionally float32 audio) to a fragmented H.264/AAC MP4.

    ``ClipRecorder(path, width, height, fps=30.0, audio_rate=None, audio_channels=1)``; then
    ``write(image, t=None)`` per frame, ``write_audio(samples, t=None)`` per audio block, ``close()``.
    Frames of another size than (width, height) are fitted in (aspect kept, letterboxed).
    ``start_time``: the capture time that is 0 s in the clip (default: the first ``t`` written).
    ``threads``: encoder threads (0 = automatic). Raises ``OutputError`` when the file cannot be
    written, at creation or later (disk full); the part written so far then stays playable.
    ``write``, ``write_audio`` and ``close`` may be called from different threads (a video sink
    and an audio callback): they take turns on an internal lock.
    """

    def __init__(self, path, width: int, height: int, fps: float = 30.0, *,
                 audio_rate: int | None = None, audio_channels: int = 1,
                 crf: int = 20, preset: str = "veryfast", gop_seconds: float = 1.0,
                 start_time: float | None = None, threads: int = 0):
        import av

        self.path = Path(path)
        self.width, self.height = even_size(width, height)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames_written = 0
        self.audio_samples_written = 0
        self.error: OutputError | None = None
        self.closed = False
        self._t0 = start_time
        self._last_pts = -1
        self._good_size = 0  # file size at the end of the last complete fragment
        self._compositor = None
        self._lock = threading.RLock()

        try:
            self._file = _TrackedFile(self.path)
        except OSError as exc:
            raise OutputError(f"cannot write clip to {self.path}: {_strerror(exc)}") from None
        try:
            self._container = av.open(self._file, mode="w", format="mp4", options=dict(FRAGMENTED_MP4))
            rate = Fraction(self.fps).limit_denominator(1001)
            self._time_base = Fraction(1, 1) / rate  # one tick per nominal frame
            vs = self._container.add_stream("libx264", rate=rate)
            vs.width, vs.height = self.width, self.height
            vs.pix_fmt = "yuv420p"
            vs.time_base = self._time_base
            vs.codec_context.time_base = self._time_base
            vs.codec_context.gop_size = max(1, round(self.fps * gop_seconds))
            # No B-frames: a fragmented MP4 has no edit list to hide their decoding delay, so
            # the video would start 2 frames late against the audio; also lower latency.
            vs.codec_context.max_b_frames = 0
            vs.options = {"crf": str(crf), "preset": preset}
            if threads:
                vs.codec_context.thread_count = int(threads)  # 0 = as many as the encoder likes
            self._video = vs
            self._audio = None
            if audio_rate:
                self.audio_rate = int(audio_rate)
                self.audio_channels = int(audio_channels)
                layout = {1: "mono", 2: "stereo"}.get(self.audio_channels)
                if layout is None:
                    raise ValueError(f"audio_channels must be 1 or 2, not {audio_channels}")
                self._audio_layout = layout
                aus = self._container.add_stream("aac", rate=self.audio_rate, layout=layout)
                aus.time_base = Fraction(1, self.audio_rate)
                # FFmpeg's AAC encoder defaults to ~69 kb/s here, where it audibly clicks on
                # clean tones; 128 kb/s per channel (up to 256) is clean.
                aus.bit_rate = min(256_000, 128_000 * self.audio_channels)
                self._audio = aus
                self._audio_buffer = np.zeros((0, self.audio_channels), np.float32)
                self._audio_pos = 0  # samples placed on the timeline so far (incl. buffered)
                self._audio_frame_size = 1024
            self._container.start_encoding()
            self._good_size = self._file.tell()
        except OutputError:
            self._file.close()
            raise
        except (OSError, av.FFmpegError) as exc:
            self._abort()
            raise OutputError(f"cannot write clip to {self.path}: {_strerror(exc)}") from None

    # ------------------------------------------------------------------ properties
    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    @property
    def duration(self) -> float:
        """Seconds of video written so far (at the nominal fps)."""
        return (self._last_pts + 1) / self.fps if self._last_pts >= 0 else 0.0

    # ------------------------------------------------------------------ video
    @_locked
    def write(self, image: np.ndarray, t: float | None = None) -> None:
        """Encode one RGB uint8 (H, W, 3) frame. ``t``: its capture time (seconds), or None.

        Frames that land on an already used frame slot (faster than ``fps``) are dropped.
        """
        import av

        self._check_open()
        if t is None:
            pts = self._last_pts + 1
        else:
            if self._t0 is None:
                self._t0 = t
            pts = max(0, round((t - self._t0) * self.fps))
            if pts <= self._last_pts:
                return
        frame = av.VideoFrame.from_ndarray(self._fit(image), format="rgb24")
        frame.pts = pts
        frame.time_base = self._time_base
        self._mux(self._video.encode(frame))
        self._last_pts = pts
        self.frames_written += 1

    def _fit(self, image: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"ClipRecorder.write expects RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        if (w, h) == (self.width, self.height):
            return np.ascontiguousarray(image)
        if (w - w % 2, h - h % 2) == (self.width, self.height):  # odd size: drop the last row/column
            return np.ascontiguousarray(image[:self.height, :self.width])
        if self._compositor is None:
            from engine.compositing import Compositor, CompositorSettings

            self._compositor = Compositor(CompositorSettings(output_size=(self.width, self.height),
                                                             background=(0, 0, 0)))
        return self._compositor.compose(image)

    # ------------------------------------------------------------------ audio
    @_locked
    def write_audio(self, samples: np.ndarray, t: float | None = None) -> None:
        """Add audio: float32 samples in [-1, 1], shape (n, channels) (or (n,) for mono).

        ``t`` is the capture time of the first sample on the same clock as the frames' ``t``. A
        block that starts later than the audio so far fills the gap with silence; one that overlaps
        loses its overlapping start. Without ``t`` blocks are laid end to end.
        """
        self._check_open()
        if self._audio is None:
            raise RuntimeError("this ClipRecorder was created without audio (audio_rate=None)")
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"audio samples must be (n, channels), got shape {x.shape}")
        if x.shape[1] != self.audio_channels:
            if x.shape[1] == 1:
                x = np.repeat(x, self.audio_channels, axis=1)
            else:
                x = x.mean(axis=1, keepdims=True).repeat(self.audio_channels, axis=1)
        if t is not None:
            if self._t0 is None:
                self._t0 = t
            start = round((t - self._t0) * self.audio_rate)
            if start > self._audio_pos + self._audio_frame_size // 4:  # a gap: fill with silence
                pad = np.zeros((start - self._audio_pos, self.audio_channels), np.float32)
                x = np.concatenate([pad, x])
            elif start < self._audio_pos - self._audio_frame_size // 4:  # overlap: drop the past
                x = x[self._audio_pos - start:]
        if not len(x):
            return
        self._audio_pos += len(x)
        self._audio_buffer = np.concatenate([self._audio_buffer, np.clip(x, -1.0, 1.0)])
        n = self._audio_frame_size
        full = len(self._audio_buffer) // n * n
        if full:
            chunk, self._audio_buffer = self._audio_buffer[:full], self._audio_buffer[full:]
            for i in range(0, full, n):
                self._encode_audio(chunk[i:i + n])

    def _encode_audio(self, block: np.ndarray) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T), format="fltp",
                                           layout=self._audio_layout)
        frame.sample_rate = self.audio_rate
        frame.pts = self.audio_samples_written
        frame.time_base = Fraction(1, self.audio_rate)
        self.audio_samples_written += len(block)
        self._mux(_drop_priming(self._audio.encode(frame)))

    # ------------------------------------------------------------------ muxing / errors
    def _mux(self, packets) -> None:
        import av

        try:
            if packets:
                self._container.mux(packets)
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        if self._file.error is not None:
            self._fail(self._file.error)
        self._good_size = self._file.tell()

    def _fail(self, exc: BaseException) -> None:
        cause = self._file.error or exc
        if getattr(cause, "errno", None) == errno.ENOSPC or "No space" in _strerror(cause):
            msg = (f"disk full while recording {self.path}: recording stopped after "
                   f"{self.duration:.1f} s; the part written so far is playable")
        else:
            msg = (f"cannot write clip {self.path}: {_strerror(cause)}; recording stopped after "
                   f"{self.duration:.1f} s")
        self.error = OutputError(msg)
        self._abort()
        raise self.error

    def _check_open(self) -> None:
        if self.error is not None:
            raise self.error
        if self.closed:
            raise OutputError(f"clip {self.path} is already closed")

    def _abort(self) -> None:
        """After a write error: cut the file back to its last complete fragment, release it."""
        self.closed = True
        container, self._container = getattr(self, "_container", None), None
        if container is not None:
            try:
                container.close()  # may fail again on a full disk: the file is cut back below
            except Exception:  # noqa: BLE001 - whatever the muxer says, the cut below decides
                pass
        f = getattr(self, "_file", None)
        if f is not None and not f.closed:
            try:
                f.truncate(self._good_size)
            except OSError:
                pass
            f.close()

    @_locked
    def close(self) -> None:
        """Flush the encoders and finalize the file. Safe to call twice, or after an error."""
        import av

        if self.closed:
            return
        try:
            if self._audio is not None and len(self._audio_buffer):
                block, self._audio_buffer = self._audio_buffer, self._audio_buffer[:0]
                self._encode_audio(block)
            self._mux(self._video.encode(None))
            if self._audio is not None:
                self._mux(_drop_priming(self._audio.encode(None)))
            self._container.close()
        except OutputError:
            raise
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        finally:
            self.closed = True
            if not self._file.closed:
                if self._file.error is not None:
                    try:
                        self._file.truncate(self._good_size)
                    except OSError:
                        pass
                self._file.close()
        if self._file.error is not None and self.error is None:
            self._fail(self._file.error)

    def __enter__(self) -> "ClipRecorder":
        return self

    def __exit__(self, *exc) -> None:
        if self.error is None:
            self.close()
        else:
            with self._lock:
                self._abort()
