"""Virtual camera sink. The device itself cannot exist on a test machine, so only the device is
faked: a pyvirtualcam backend registered in pyvirtualcam.camera.BACKENDS, driven through the real
pyvirtualcam.Camera (its shape/format checks and its frame pacing included)."""
import glob
import sys
import threading
import time

import numpy as np
import pytest
import pyvirtualcam
import pyvirtualcam.camera

from engine.errors import OutputError, VirtualCameraUnavailable
from engine.sinks.virtual_camera import MODPROBE_LINE, VirtualCameraSink, virtual_camera_help

FAKE = "puppetcam-test-device"


class FakeBackend:
    """A pyvirtualcam backend that keeps what it receives instead of writing to /dev/video*."""

    instances: list["FakeBackend"] = []

    def __init__(self, *, width, height, fps, fourcc, device, fail_send=False, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames: list[np.ndarray] = []
        self.closed = False
        self.fail_send = fail_send
        self.name = device or "FakeCam0"
        FakeBackend.instances.append(self)

    def send(self, frame):
        if self.fail_send:
            raise RuntimeError("device went away")
        # pyvirtualcam hands over a flat C-contiguous buffer, as for the real devices.
        self.frames.append(frame.copy().reshape(self.height, self.width, 3))

    def close(self):
        self.closed = True

    def device(self):
        return self.name

    def native_fourcc(self):
        return self.fourcc


@pytest.fixture
def fake_device(monkeypatch):
    FakeBackend.instances = []
    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, FAKE, FakeBackend)

    def factory(width, height, fps, **kw):
        kw["backend"] = FAKE
        return pyvirtualcam.Camera(width, height, fps, **kw)

    return factory


def _backend() -> FakeBackend:
    assert len(FakeBackend.instances) == 1
    return FakeBackend.instances[0]


@pytest.mark.skipif(not sys.platform.startswith("linux") or glob.glob("/dev/video*"),
                    reason="needs a Linux machine without video devices (no v4l2loopback)")
def test_real_pyvirtualcam_without_device_says_what_to_install():
    sink = VirtualCameraSink()
    with pytest.raises(VirtualCameraUnavailable) as info:
        sink.open()
    msg = str(info.value)
    assert MODPROBE_LINE in msg
    assert "v4l2loopback-dkms" in msg
    assert "\n" not in msg and "Traceback" not in msg
    assert not sink.is_open and sink.device is None
    with pytest.raises(OutputError):
        sink.send(np.zeros((720, 1280, 3), np.uint8))


def test_unknown_backend_is_unavailable_not_keyerror():
    with pytest.raises(VirtualCameraUnavailable, match="no-such-backend"):
        VirtualCameraSink(backend="no-such-backend").open()


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_help_windows_macos_points_to_obs(platform):
    text = virtual_camera_help(platform)
    assert "OBS Studio" in text and "Virtual Camera" in text
    assert "modprobe" not in text


def test_help_linux_gives_exact_modprobe_line():
    text = virtual_camera_help("linux")
    assert 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Puppetcam"' in text
    assert "v4l2loopback-dkms" in text and "OBS" not in text


def test_frames_reach_device_as_rgb_of_the_right_size(fake_device):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    with VirtualCameraSink(camera_factory=fake_device) as sink:
        assert sink.device == "FakeCam0"
        sink.send(frame)
        sink.send(frame[:, :, ::-1])  # a non-contiguous view is fine too
        backend = _backend()
        assert (backend.width, backend.height, backend.fps) == (1280, 720, 30)
        assert backend.fourcc == pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
        assert sink.frames_sent == 2
    np.testing.assert_array_equal(backend.frames[0], frame)
    np.testing.assert_array_equal(backend.frames[1], frame[:, :, ::-1])


def test_device_name_is_passed_through(fake_device):
    with VirtualCameraSink(640, 480, 15, device="/dev/video7", camera_factory=fake_device) as sink:
        assert sink.device == "/dev/video7"
        assert (_backend().width, _backend().height, _backend().fps) == (640, 480, 15)


def test_square_frame_is_pillarboxed_not_stretched(fake_device):
    color = (200, 50, 10)
    square = np.empty((480, 480, 3), np.uint8)
    square[:] = color
    with VirtualCameraSink(1280, 720, camera_factory=fake_device) as sink:
        sink.send(square)
    out = _backend().frames[0]
    assert out.shape == (720, 1280, 3)
    # 480x480 scaled to 720x720, centred: columns 280..999 are the image, the rest is bars.
    assert (out[:, 282:998] == color).all()
    assert (out[:, :278] == (16, 16, 16)).all() and (out[:, 1002:] == (16, 16, 16)).all()


def test_wide_frame_is_letterboxed(fake_device):
    wide = np.zeros((200, 800, 3), np.uint8)
    wide[:, :400] = (255, 0, 0)
    wide[:, 400:] = (0, 0, 255)
    with VirtualCameraSink(640, 480, camera_factory=fake_device) as sink:
        sink.send(wide)
    out = _backend().frames[0]
    # 800x200 -> 640x160, centred vertically: rows 160..319.
    assert (out[:158] == (16, 16, 16)).all() and (out[322:] == (16, 16, 16)).all()
    assert (out[162:318, :318] == (255, 0, 0)).all()  # left half stays red: RGB order kept
    assert (out[162:318, 322:] == (0, 0, 255)).all()


def test_send_does_not_pace_the_caller(fake_device):
    # At 2 fps, pyvirtualcam's sleep_until_next_frame would hold each send ~0.5 s. The sink runs
    # on a sink thread fed at the engine's rate; it must hand frames over and return.
    frame = np.zeros((90, 160, 3), np.uint8)
    with VirtualCameraSink(160, 90, fps=2, camera_factory=fake_device) as sink:
        t0 = time.perf_counter()
        for _ in range(5):
            sink.send(frame)
        elapsed = time.perf_counter() - t0
    assert len(_backend().frames) == 5
    assert elapsed < 0.2, f"5 sends took {elapsed:.3f} s"


def test_close_closes_the_device_and_refuses_more_frames(fake_device):
    sink = VirtualCameraSink(160, 90, camera_factory=fake_device).open()
    backend = _backend()
    sink.send(np.zeros((90, 160, 3), np.uint8))
    sink.close()
    assert backend.closed and not sink.is_open
    sink.close()  # twice is fine
    with pytest.raises(OutputError, match="not open"):
        sink.send(np.zeros((90, 160, 3), np.uint8))
    assert sink.frames_sent == 1


def test_context_manager_closes_on_error(fake_device):
    with pytest.raises(ZeroDivisionError):
        with VirtualCameraSink(160, 90, camera_factory=fake_device):
            1 / 0
    assert _backend().closed


def test_device_failure_while_sending_is_an_output_error(fake_device):
    def failing(width, height, fps, **kw):
        return fake_device(width, height, fps, fail_send=True, **kw)

    with VirtualCameraSink(160, 90, camera_factory=failing) as sink:
        with pytest.raises(OutputError, match="device went away"):
            sink.send(np.zeros((90, 160, 3), np.uint8))
        assert sink.frames_sent == 0


@pytest.mark.parametrize("bad", [np.zeros((90, 160), np.uint8), np.zeros((90, 160, 4), np.uint8),
                                 np.zeros((90, 160, 3), np.float32)])
def test_rejects_frames_that_are_not_rgb_uint8(fake_device, bad):
    with VirtualCameraSink(160, 90, camera_factory=fake_device) as sink:
        with pytest.raises(ValueError):
            sink.send(bad)


def test_close_from_another_thread_while_sending(fake_device):
    sink = VirtualCameraSink(160, 90, camera_factory=fake_device).open()
    frame = np.zeros((90, 160, 3), np.uint8)
    errors, stop = [], threading.Event()

    def feed():
        while not stop.is_set():
            try:
                sink.send(frame)
            except OutputError:
                stop.set()
            except Exception as e:  # noqa: BLE001 - anything else is a bug
                errors.append(e)
                stop.set()

    t = threading.Thread(target=feed)
    t.start()
    time.sleep(0.05)
    sink.close()
    t.join(2)
    assert not t.is_alive() and not errors
    assert _backend().closed and len(_backend().frames) == sink.frames_sent > 0
