"""Fixtures for the live app: an offscreen window with its own settings file, clips folder and a
small avatar gallery, and real driving frames from ``../shared/media/driving``."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app.threads import live_threads  # noqa: E402
from engine.capture import Frame, VideoFileSource  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
AVATARS = REPO / "assets" / "avatars"
TEST_AVATARS = ["astronaut.jpg", "lady-agnew.jpg", "woman-in-black-dress.jpg"]


@pytest.fixture
def avatars_dir(tmp_path) -> Path:
    """Three bundled portraits (the gallery checks each face in the background)."""
    d = tmp_path / "avatars"
    d.mkdir()
    for name in TEST_AVATARS:
        shutil.copy(AVATARS / name, d / name)
    return d


@pytest.fixture
def store(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


_FRAMES: dict = {}


def driving_frames(media: Path, name: str = "d9.mp4", n: int = 60, start: int = 0) -> list[np.ndarray]:
    key = (name, n, start)
    if key not in _FRAMES:
        src = VideoFileSource(media / "driving" / name, max_frames=start + n)
        _FRAMES[key] = [f.image for f in src][start:]
    return _FRAMES[key]


def paced_source(images, fps: float = 30.0, loop: bool = True, then=None):
    """A camera made of real frames: real time, fresh capture stamps; ``then()`` runs at the end
    (e.g. raises like a camera that fails); without it a non-looping source just ends."""
    def factory():
        def gen():
            t0 = time.monotonic()
            i = 0
            while True:
                for image in images:
                    delay = t0 + i / fps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    yield Frame(image=image, t_capture=time.monotonic(), index=i)
                    i += 1
                if not loop:
                    break
            if then is not None:
                then()
        return gen()
    return factory


class ReopenedSource:
    """A camera factory whose first opening is ``first`` (one that ends or fails) and whose later
    openings (Reconnect) are a healthy looping camera of ``images``; counts the openings. Reconnect
    must then show frames again however slowly the machine runs: a second short-lived source could
    end again before a loaded machine showed a few of its frames."""

    def __init__(self, first, images):
        self.first, self.healthy, self.opened = first, paced_source(images), 0

    def __call__(self):
        self.opened += 1
        return self.first() if self.opened == 1 else self.healthy()


class FakeVirtualCamera:
    """Stands in for pyvirtualcam.Camera: keeps what it was sent."""

    instances: list = []

    def __init__(self, width, height, fps, fmt=None, device=None, backend=None):
        self.width, self.height, self.fps = width, height, fps
        self.device = "/dev/video-fake"
        self.frames = []
        self.closed = False
        FakeVirtualCamera.instances.append(self)

    def send(self, frame):
        self.frames.append(frame.shape)
        self.last = frame

    def close(self):
        self.closed = True


@pytest.fixture
def make_window(qtbot, store, tmp_path, avatars_dir):
    """``make_window(**kwargs)`` -> a shown MainWindow (not started); closed after the test, and
    the test fails if any of its threads outlives it."""
    from app.window import MainWindow

    windows = []

    def make(**kwargs):
        kwargs.setdefault("store", store)
        kwargs.setdefault("clips_dir", tmp_path / "clips")
        kwargs.setdefault("avatars_dir", avatars_dir)
        kwargs.setdefault("list_cameras", lambda: [])
        w = MainWindow(**kwargs)
        qtbot.addWidget(w)
        w.show()
        w.activateWindow()  # shortcuts go to the active window, as they do for a user
        qtbot.waitUntil(w.isActiveWindow, timeout=5000)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
    assert not live_threads(), f"threads outlived the window: {live_threads()}"


def wait_frames(qtbot, window, n: int = 5, probe=None, timeout: int = 20000) -> None:
    """Wait until ``n`` more frames reached the preview (and the probe sink, when given)."""
    shown = window.output_view.frames_shown
    count = probe.count if probe is not None else 0
    qtbot.waitUntil(lambda: window.output_view.frames_shown >= shown + n
                    and (probe is None or probe.count >= count + n), timeout=timeout)


def add_probe(window):
    from app.threads import ProbeSink, SinkRunner

    probe = ProbeSink(keep=64)
    window.worker.add_sink(SinkRunner("probe", probe.write, maxsize=8))
    return probe


def wait_ready(qtbot, window, timeout: int = 30000) -> None:
    qtbot.waitUntil(lambda: window.worker is not None and window.worker.pipeline is not None, timeout=timeout)


def start_then_switch(qtbot, window, first, factory, spec=None):
    """Start the engine on ``first`` (a still image, or a source factory; its first face becomes
    the reference pose), wait until it runs, then switch to ``factory``'s frames: none of them is
    lost to the engine's start-up."""
    from app.threads import SourceSpec

    first = first if callable(first) else paced_source([first])
    window.start(SourceSpec("file", "first"), source_factory=first)
    wait_ready(qtbot, window)
    wait_frames(qtbot, window, 2)
    window.set_camera(spec or SourceSpec("file", "sequence"), factory)
