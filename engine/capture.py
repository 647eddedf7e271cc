"""Capture: where driving frames come from (video files, cameras), as timestamped ``Frame`` objects.

A video file can play as fast as it decodes (offline render) or in real time, looping (a file that
acts as a camera). Decoding uses PyAV; a truncated or corrupt file yields what is readable and sets
``truncated`` instead of raising half-way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.errors import DrivingVideoError


@dataclass(frozen=True)
class Frame:
    """One driving frame: RGB uint8 (H, W, 3) and its capture time in ``time.monotonic()`` seconds
    (a file or the demo driver read faster than real time: on the media's own clock, from its start)."""

    image: np.ndarray
    t_capture: float
    index: int = 0
    landmarks: object | None = None  # FaceLandmarks given by a synthetic source (demo driver)


@dataclass
class VideoInfo:
    path: Path
    fps: float
    frame_count: int  # from the container; 0 when unknown
    width: int
    height: int


def probe_video(path) -> VideoInfo:
    import av

    path = Path(path)
    if not path.is_file():
        raise DrivingVideoError(f"driving video not found: {path}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 30)
            return VideoInfo(path, fps, int(stream.frames or 0), stream.codec_context.width,
                             stream.codec_context.height)
    except (av.FFmpegError, IndexError) as exc:
        raise DrivingVideoError(f"cannot read driving video {path.name}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


@dataclass
class VideoFileSource:
    """Frames of a video file. ``realtime`` paces them at the file's fps; ``loop`` restarts at the end."""

    path: Path
    realtime: bool = False
    loop: bool = False
    max_frames: int | None = None
    info: VideoInfo = field(init=False)
    truncated: bool = field(init=False, default=False)  # decoding stopped on a damaged stream
    error: str = field(init=False, default="")
    frames_read: int = field(init=False, default=0)

    def __post_init__(self):
        self.path = Path(self.path)
        self.info = probe_video(self.path)

    @property
    def fps(self) -> float:
        return self.info.fps

    def __iter__(self) -> Iterator[Frame]:
        period = 1.0 / self.fps if self.fps > 0 else 1 / 30
        start = None  # the clock starts at the first decoded frame, not at file open
        index = 0
        while True:
            produced = 0
            for image in self._decode():
                if self.max_frames is not None and index >= self.max_frames:
                    return
                if start is None:
                    start = time.monotonic() - index * period
                due = start + index * period
                if self.realtime:
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                # Read as fast as it decodes (render, bench), a frame is stamped on the video's own
                # clock: the landmark filter then smooths the same way however fast the machine is,
                # and the same command renders the same clip. Paced (a file as a camera): when it came.
                t_capture = time.monotonic() if self.realtime else due
                yield Frame(image=image, t_capture=t_capture, index=index)
                index += 1
                produced += 1
                self.frames_read = index
            if not self.loop or produced == 0:
                return

    def _decode(self) -> Iterator[np.ndarray]:
        import av

        try:
            container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise DrivingVideoError(f"cannot read driving video {self.path.name}: {_reason(exc)}") from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        yield frame.to_ndarray(format="rgb24")
            except (av.FFmpegError, EOFError) as exc:
                self.truncated = True
                self.error = _reason(exc)
        if self.info.frame_count and self.frames_read < self.info.frame_count and not self.loop:
            # The container promised more frames than the stream held: a cut-off file.
            if self.max_frames is None or self.frames_read < self.max_frames:
                self.truncated = True


class CameraSource:
    """A physical camera via OpenCV. Raises ``DrivingVideoError`` when it cannot be opened."""

    def __init__(self, index: int, width: int = 1280, height: int = 720, fps: int = 30):
        import cv2

        self.index = index
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            raise DrivingVideoError(f"camera {index} cannot be opened (unplugged, or used by another app?)")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_FPS, fps)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or fps)

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        index = 0
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                raise DrivingVideoError(f"camera {self.index} stopped delivering frames")
            yield Frame(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t_capture=time.monotonic(), index=index)
            index += 1

    def close(self) -> None:
        self._cap.release()


def list_cameras(max_index: int = 6) -> list[int]:
    """Indices of cameras that open. Cheap on Linux (checks /dev/video*), probes elsewhere."""
    import sys

    if sys.platform.startswith("linux"):
        return sorted(int(p.name[5:]) for p in Path("/dev").glob("video[0-9]*") if p.name[5:].isdigit())
    import cv2

    found = []
    for i in range(max_index):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append(i)
        cap.release()
    return found
