"""Every fault the live app must survive: a message, the rest keeps working, never a traceback."""
from __future__ import annotations

import errno

import av
import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.threads import SourceSpec
from engine.errors import DrivingVideoError
from tests.app.conftest import (ReopenedSource, add_probe, driving_frames, paced_source, start_then_switch,
                                wait_frames, wait_ready)


def _assert_responsive(qtbot, w):
    """The GUI thread still handles input: switching avatars by key works."""
    row = w.gallery.currentRow()
    qtbot.keyClick(w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: w.gallery.currentRow() != row, timeout=5000)


def _camera_lost_then_reconnect(qtbot, w, expected: str, source: ReopenedSource):
    qtbot.waitUntil(lambda: "Camera lost" in w.messages.text("camera"), timeout=20000)
    assert expected in w.messages.text("camera")
    assert "Traceback" not in w.messages.text()
    held = w.output_view.frame
    assert held is not None and w.driving_view.frame is not None  # the last frame is held
    assert "last frame held" in w.driving_view.badge
    assert not w.capture.is_alive()
    _assert_responsive(qtbot, w)
    assert w.output_view.frame is not None
    # reconnect is offered, and works
    button = w.messages.action("camera", "Reconnect")
    assert button is not None
    probe = add_probe(w)
    button.click()
    assert "Camera lost" not in w.messages.text()
    wait_frames(qtbot, w, 3, probe)
    assert source.opened == 2  # Reconnect opened the source again


def test_video_file_ends_message_last_frame_held_reconnect(qtbot, make_window, media):
    w = make_window()
    frames = driving_frames(media, n=15)
    w.start(SourceSpec("demo"))
    wait_ready(qtbot, w)
    wait_frames(qtbot, w, 2)
    source = ReopenedSource(paced_source(frames, loop=False), frames)  # ends mid-run
    w.set_camera(SourceSpec("file", "short"), source)
    _camera_lost_then_reconnect(qtbot, w, "no more frames", source)


def test_camera_read_failure_message_last_frame_held_reconnect(qtbot, make_window, media):
    def fail():
        raise DrivingVideoError("camera 0 stopped delivering frames")

    w = make_window()
    w.start(SourceSpec("demo"))
    wait_ready(qtbot, w)
    wait_frames(qtbot, w, 2)
    frames = driving_frames(media, n=15)
    source = ReopenedSource(paced_source(frames, loop=False, then=fail), frames)
    w.set_camera(SourceSpec("camera", "0"), source)
    _camera_lost_then_reconnect(qtbot, w, "camera 0 stopped delivering frames", source)


def test_camera_that_cannot_open_at_all(qtbot, make_window):
    """A real camera index that does not exist (no camera here): a message, not a crash."""
    w = make_window()
    w.start(SourceSpec("camera", "7"))
    qtbot.waitUntil(lambda: "Camera lost" in w.messages.text("camera"), timeout=20000)
    assert "camera 7" in w.messages.text("camera")
    assert w.messages.action("camera", "Use demo driver") is not None


class _MissingCamera:
    """Raises what pyvirtualcam raises on Linux without v4l2loopback."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99]")


def test_missing_virtual_camera_says_what_to_install_and_the_rest_works(qtbot, make_window, media, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    w = make_window(vcam_factory=_MissingCamera)
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    probe = add_probe(w)
    qtbot.keyClick(w, Qt.Key.Key_V)
    text = w.messages.text("virtualcam")
    assert "v4l2loopback" in text and "modprobe" in text and "Traceback" not in text
    assert not w.vcam_action.isChecked() and w.worker.sink("virtualcam") is None
    wait_frames(qtbot, w, 5, probe)  # the previews and other sinks keep going
    assert w.set_recording(True)
    qtbot.waitUntil(lambda: w.recording.recorder.frames_written >= 3, timeout=10000)
    w.set_recording(False)
    assert w.last_clip.stat().st_size > 0


def test_disk_full_stops_recording_with_message_and_the_clip_so_far_plays(qtbot, make_window, media, monkeypatch, tmp_path):
    from engine.sinks import recorder as rec_mod

    written = {"n": 0}
    real_write = rec_mod._TrackedFile.write

    def write(self, data):  # the disk fills up after ~150 kB
        if written["n"] > 150_000:
            self.error = OSError(errno.ENOSPC, "No space left on device")
            raise self.error
        written["n"] += len(data)
        return real_write(self, data)

    monkeypatch.setattr(rec_mod._TrackedFile, "write", write)
    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    probe = add_probe(w)
    target = tmp_path / "full.mp4"
    assert w.set_recording(True, target)
    qtbot.waitUntil(lambda: "Recording stopped" in w.messages.text("recording"), timeout=30000)
    assert "disk full" in w.messages.text("recording")
    assert not w.record_action.isChecked() and w.recording is None
    assert w.worker.sink("recorder") is None
    with av.open(str(target)) as c:  # what was written plays
        n = sum(1 for _ in c.decode(video=0))
    assert n >= 1
    wait_frames(qtbot, w, 3, probe)  # live output goes on


def test_unwritable_clips_folder_message_and_no_recording(qtbot, make_window, media, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    w = make_window(clips_dir=blocker / "clips")
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_R)
    assert "Cannot record" in w.messages.text("recording") and "clips folder" in w.messages.text("recording")
    assert not w.record_action.isChecked() and w.recording is None
    assert w.messages.action("recording", "Change folder…") is not None


def test_no_face_in_the_driving_frame_holds_the_last_pose(qtbot, make_window, media, store):
    store.setValue("auto_calibrate", False)  # the reference stays frame 0; the last pose is turned
    face = driving_frames(media, name="d10.mp4", n=200)
    blank = np.full_like(face[0], 90)
    frames = face[:30] + [face[-1]] * 10 + [blank] * 100000
    w = make_window()
    start_then_switch(qtbot, w, face[0], paced_source(frames, loop=False))
    probe = add_probe(w)
    qtbot.waitUntil(lambda: w.stats.held_frames >= 5, timeout=20000)
    qtbot.waitUntil(lambda: "No face" in w.driving_view.badge, timeout=5000)
    wait_frames(qtbot, w, 3, probe)
    a = probe.last.copy()
    wait_frames(qtbot, w, 3, probe)
    assert np.array_equal(a, probe.last)  # the pose is held, not reset
    from engine.compositing import Compositor

    rest = Compositor(w.worker.pipeline.settings.compositor).compose(w.worker.pipeline.portrait.image)
    assert np.abs(a.astype(int) - rest).mean() > 0.5  # ... and it is the last driven pose, not the rest pose
    assert w.stats.engine_errors == 0


@pytest.mark.parametrize("step", ["track", "animate"])  # the helper thread's step, the worker's step
def test_an_engine_error_on_one_frame_is_logged_and_the_show_goes_on(qtbot, make_window, media, caplog, step):
    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    probe = add_probe(w)
    calls = {"n": 0}

    def break_one_frame(pipeline):
        real = getattr(pipeline, step)

        def fails_once(item):
            calls["n"] += 1
            if calls["n"] == 3:
                raise FloatingPointError("simulated engine failure")
            return real(item)

        setattr(pipeline, step, fails_once)

    w.worker.submit(break_one_frame, "inject a fault")
    qtbot.waitUntil(lambda: "engine error" in w.messages.text("engine").lower(), timeout=20000)
    assert "simulated engine failure" in w.messages.text("engine") and "still running" in w.messages.text("engine")
    assert w.stats.engine_errors == 1
    assert any("engine error on frame" in r.message and r.exc_info for r in caplog.records)  # with its traceback
    wait_frames(qtbot, w, 5, probe)
    assert w.worker.is_alive() and w.stats.engine_errors == 1


def test_an_engine_that_cannot_start_falls_back_to_mesh(qtbot, make_window, media, store):
    store.setValue("engine", "fomm")
    store.setValue("fomm_checkpoint", "")  # no checkpoint chosen
    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    qtbot.waitUntil(lambda: "mesh engine" in w.messages.text("engine"), timeout=20000)
    assert "checkpoint" in w.messages.text("engine")
    wait_ready(qtbot, w)
    wait_frames(qtbot, w, 3)
    assert w.settings.engine == "mesh" and w.settings_panel.engine.currentData() == "mesh"
    # the stand-in running does not wipe the notice: the user must still be able to read why
    assert "Cannot start the fomm engine" in w.messages.text("engine")


def test_switching_to_an_engine_that_cannot_load_keeps_the_running_one(qtbot, make_window, media):
    import importlib.util

    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    if not w.settings_panel.engine.model().item(1).isEnabled():
        import pytest

        pytest.skip("torch is not installed: the FOMM engine cannot be picked")
    assert importlib.util.find_spec("torch") is not None
    probe = add_probe(w)
    mesh = w.worker.pipeline
    w.settings_panel.engine.setCurrentIndex(w.settings_panel.engine.findData("fomm"))  # no checkpoint chosen
    qtbot.waitUntil(lambda: "checkpoint" in w.messages.text("engine"), timeout=20000)
    qtbot.waitUntil(lambda: w.settings_panel.engine.currentData() == "mesh", timeout=5000)
    assert w.worker.pipeline is mesh and w.settings.engine == "mesh"
    wait_frames(qtbot, w, 3, probe)


def test_the_real_virtual_camera_backend_either_opens_or_says_what_to_install(qtbot, make_window, media):
    """No fake: pyvirtualcam itself. Here (no v4l2loopback) that is the missing-device message."""
    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    probe = add_probe(w)
    opened = w.set_virtual_camera(True)
    if opened:
        assert w.vcam_action.isChecked() and w.worker.sink("virtualcam") is not None
        qtbot.waitUntil(lambda: w.virtual_camera.frames_sent >= 3, timeout=20000)
    else:
        text = w.messages.text("virtualcam")
        assert "Virtual camera unavailable" in text and "Traceback" not in text
        assert "OBS" in text or "v4l2loopback" in text  # what to install, for this OS
        assert not w.vcam_action.isChecked()
    wait_frames(qtbot, w, 3, probe)
