"""Virtual camera sink: output frames become a webcam other apps (Zoom, Meet, OBS) can pick.

Wraps :mod:`pyvirtualcam`. Frames of another size than the camera's are fitted (letterboxed or
pillarboxed, never stretched) by :class:`engine.compositing.Compositor`.

``send`` never paces: it hands the frame to the device and returns. The pipeline's sink thread
delivers frames at the engine's rate; sleeping here (``sleep_until_next_frame``) would only stall
that thread and make its queue drop frames.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable

import numpy as np
import pyvirtualcam
from pyvirtualcam.camera import BACKENDS

from engine.compositing import Compositor, CompositorSettings
from engine.errors import OutputError, VirtualCameraUnavailable

MODPROBE_LINE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Puppetcam"'


def virtual_camera_help(platform: str = sys.platform) -> str:
    """What to install so a virtual camera exists on ``platform`` (a ``sys.platform`` value)."""
    if platform.startswith("win") or platform == "cygwin":
        return ("Install OBS Studio (https://obsproject.com), then open it once and click "
                "'Start Virtual Camera' so its OBS Virtual Camera is registered; restart Puppetcam.")
    if platform == "darwin":
        return ("Install OBS Studio (https://obsproject.com), then open it once and click "
                "'Start Virtual Camera' (allow the system extension in System Settings when asked); "
                "restart Puppetcam.")
    if platform.startswith("linux"):
        return ("Install v4l2loopback (package v4l2loopback-dkms, e.g. 'sudo apt install "
                f"v4l2loopback-dkms'), then run: {MODPROBE_LINE}")
    return "No virtual camera backend exists for this operating system (pyvirtualcam supports " \
           "Windows, macOS and Linux)."


class VirtualCameraSink:
    """A pyvirtualcam camera fed with RGB uint8 frames.

    ``camera_factory`` is called as ``camera_factory(width, height, fps, fmt=PixelFormat.RGB,
    device=device, backend=backend)`` and must return an object with pyvirtualcam.Camera's
    ``send``/``close``/``device``. Tests inject a camera whose device is fake.

    Thread-safety: ``send`` may run on a sink thread while ``close`` is called from another; a
    send after close raises :class:`OutputError`.
    """

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30,
                 backend: str | None = None, device: str | None = None,
                 camera_factory: Callable[..., Any] = pyvirtualcam.Camera,
                 background: tuple[int, int, int] = (16, 16, 16)):
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"bad virtual camera format {width}x{height} at {fps} fps")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.backend = backend
        self._requested_device = device
        self._factory = camera_factory
        self._compositor = Compositor(CompositorSettings(output_size=(self.width, self.height),
                                                         background=background))
        self._camera: Any = None
        self._device: str | None = None
        self._frames_sent = 0
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------------------------
    @property
    def device(self) -> str | None:
        """The device name pyvirtualcam reports (e.g. ``/dev/video10``, ``OBS Virtual Camera``);
        None until opened."""
        return self._device

    @property
    def frames_sent(self) -> int:
        return self._frames_sent

    @property
    def is_open(self) -> bool:
        return self._camera is not None

    # -- lifecycle -----------------------------------------------------------------------------
    def open(self) -> "VirtualCameraSink":
        """Open the virtual camera. Raises :class:`VirtualCameraUnavailable` (with what to
        install for this OS) when no backend or device exists."""
        with self._lock:
            if self._camera is not None:
                return self
            if self._factory is pyvirtualcam.Camera:
                self._check_backend_name()
            try:
                camera = self._factory(self.width, self.height, self.fps,
                                       fmt=pyvirtualcam.PixelFormat.RGB,
                                       device=self._requested_device, backend=self.backend)
            except (RuntimeError, OSError, KeyError) as e:
                raise VirtualCameraUnavailable(self._unavailable_message(e)) from e
            except ValueError as e:  # e.g. a size/fps the device refuses
                raise OutputError(f"The virtual camera refused {self.width}x{self.height} at "
                                  f"{self.fps:g} fps: {_one_line(e)}") from e
            self._camera = camera
            try:
                self._device = str(camera.device)
            except Exception:  # noqa: BLE001 - a name is nice to have, not required
                self._device = self._requested_device
            self._frames_sent = 0
        return self

    def close(self) -> None:
        """Release the device. Safe to call more than once."""
        with self._lock:
            camera, self._camera = self._camera, None
        if camera is not None:
            camera.close()

    def __enter__(self) -> "VirtualCameraSink":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames --------------------------------------------------------------------------------
    def send(self, frame: np.ndarray) -> None:
        """Send one RGB uint8 (H, W, 3) frame; fitted to the camera size when it differs.
        Returns at once (no frame pacing)."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {frame.dtype} "
                             f"{frame.shape}")
        out = self._compositor.compose(frame)
        out = np.ascontiguousarray(out)
        with self._lock:
            if self._camera is None:
                raise OutputError("The virtual camera is not open.")
            try:
                self._camera.send(out)
            except (RuntimeError, OSError) as e:
                raise OutputError(f"The virtual camera stopped accepting frames: "
                                  f"{_one_line(e)}") from e
            self._frames_sent += 1

    # -- helpers -------------------------------------------------------------------------------
    def _check_backend_name(self) -> None:
        if self.backend is None:
            return
        if self.backend not in BACKENDS:
            known = ", ".join(sorted(BACKENDS)) or "none"
            raise VirtualCameraUnavailable(
                f"Virtual camera backend '{self.backend}' does not exist on this system "
                f"(available: {known}). {virtual_camera_help()}")

    def _unavailable_message(self, error: BaseException) -> str:
        where = f" '{self._requested_device}'" if self._requested_device else ""
        detail = _one_line(error)
        detail = f" ({detail})" if detail else ""
        return f"No virtual camera{where} is available{detail}. {virtual_camera_help()}"


def _one_line(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())
