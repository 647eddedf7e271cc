"""The live window with a real file-backed camera: frames flow, avatars switch, calibration works."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.threads import SourceSpec
from tests.app.conftest import (FakeVirtualCamera, add_probe, driving_frames, paced_source, start_then_switch,
                                wait_frames, wait_ready)


def _diff(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_frames_flow_from_a_file_camera_to_preview_sink_and_status(qtbot, make_window, media):
    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    probe = add_probe(w)
    wait_frames(qtbot, w, 10, probe)
    assert w.capture.is_alive() and w.capture.frames >= 10
    # the sink got composited output frames at the output size (1280x720 by default)
    assert probe.last.shape == (720, 1280, 3)
    assert w.output_view.frame.shape == (720, 1280, 3)
    # the driving preview shows the camera (512x480) with its landmarks
    assert w.driving_view.frame.shape == (480, 512, 3)
    assert w.driving_view._landmarks is not None and len(w.driving_view._landmarks) == 478
    # capture stamps travel with the frames: latency is measured, and reasonable
    assert all(0 < ms < 5000 for ms in probe.latencies_ms)
    w._update_stats()
    assert "fps" in w.camera_fps_label.text() and "Latency" in w.latency_label.text()
    assert "ms" in w.latency_label.text()
    assert w.alignment_label.text().startswith("Pose match") and "%" in w.alignment_label.text()
    assert w.stats.engine_errors == 0


def test_switching_avatar_by_click_keys_and_arrows_changes_the_output(qtbot, make_window, media):
    w = make_window()
    w.start(source_factory=paced_source(driving_frames(media, n=1)), camera=SourceSpec("file", "still"),
            avatar=None)
    wait_ready(qtbot, w)
    qtbot.waitUntil(lambda: len(w.portraits) == 3, timeout=20000)
    probe = add_probe(w)
    wait_frames(qtbot, w, 3, probe)
    first_name = w.worker.pipeline.portrait.name
    before = probe.last.copy()

    qtbot.keyClick(w, Qt.Key.Key_2)  # 1-9 pick a gallery row
    qtbot.waitUntil(lambda: w.worker.pipeline.portrait.name != first_name, timeout=10000)
    assert w.gallery.currentRow() == 1
    wait_frames(qtbot, w, 3, probe)
    assert _diff(before, probe.last) > 10  # another face entirely

    qtbot.keyClick(w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: w.gallery.currentRow() == 2
                    and w.worker.pipeline.portrait is w.portraits[w.gallery.current_path()], timeout=10000)
    qtbot.keyClick(w, Qt.Key.Key_Right)  # wraps around
    qtbot.waitUntil(lambda: w.gallery.currentRow() == 0
                    and w.worker.pipeline.portrait.name == first_name, timeout=10000)
    qtbot.keyClick(w, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: w.gallery.currentRow() == 2, timeout=10000)

    rect = w.gallery.visualItemRect(w.gallery.item(1))  # a click works too
    qtbot.mouseClick(w.gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: w.worker.pipeline.portrait is w.portraits[w.gallery.item(1).data(Qt.ItemDataRole.UserRole)],
                    timeout=10000)


# d10's frame 90: the head has turned ~9° from frame 0, lips together (mouth aspect 0.003). At rest
# with the lips apart the portrait would keep the driver's opening: the mesh engine's reference pose
# has the mouth closed (calibrating mid-word still opens the portrait's mouth fully; test_mesh.py).
TURNED_LIPS_TOGETHER = 90


def _two_poses(media):
    """Frame A (the pipeline calibrates on it) and frame B (d10: the head has turned by then)."""
    frames = driving_frames(media, name="d10.mp4", n=TURNED_LIPS_TOGETHER + 1)
    return frames[0], frames[TURNED_LIPS_TOGETHER]


def _rest_output(w):
    from engine.compositing import Compositor

    p = w.worker.pipeline
    return Compositor(p.settings.compositor).compose(p.portrait.image)


def test_calibrate_makes_the_current_pose_the_reference(qtbot, make_window, media, store):
    store.setValue("auto_calibrate", False)
    w = make_window()
    a, b = _two_poses(media)
    start_then_switch(qtbot, w, a, paced_source([b]))  # calibrated on A, now driven by B, held still
    probe = add_probe(w)
    wait_frames(qtbot, w, 10, probe)
    rest = _rest_output(w)
    moved = _diff(probe.last, rest)  # driven by B relative to A: the portrait is posed
    assert moved > 0.5

    qtbot.keyClick(w, Qt.Key.Key_C)  # B becomes the reference: the portrait returns to rest
    qtbot.waitUntil(lambda: probe.count > 0 and _diff(probe.last, rest) < 0.1, timeout=10000)
    w.calibrate_button.click()  # the button does the same, and stays at rest
    wait_frames(qtbot, w, 5, probe)
    assert _diff(probe.last, rest) < 0.1


def test_auto_calibrates_on_the_first_steady_frame(qtbot, make_window, media, store):
    store.setValue("auto_calibrate", True)
    w = make_window()
    # A moving driver (real video) never settles; then B held still: the first steady B calibrates.
    moving = driving_frames(media, name="d10.mp4", n=TURNED_LIPS_TOGETHER + 1)
    # A talking, turning driver never settles (the pipeline calibrates on its first frame) ...
    start_then_switch(qtbot, w, paced_source(moving[:40]), paced_source([moving[TURNED_LIPS_TOGETHER]]))
    assert not w.worker._steady.done
    # ... then B is held still: the first steady B frame becomes the reference by itself.
    probe = add_probe(w)
    qtbot.waitUntil(lambda: w.worker._steady.done, timeout=20000)
    wait_frames(qtbot, w, 10, probe)
    assert _diff(probe.last, _rest_output(w)) < 0.1  # uncalibrated, B against A differs by > 0.5 (above)


def test_passthrough_sends_the_real_camera(qtbot, make_window, media):
    from engine.compositing import Compositor

    w = make_window()
    still = driving_frames(media, n=1)
    w.start(SourceSpec("file", "still"), source_factory=paced_source(still))
    wait_ready(qtbot, w)
    probe = add_probe(w)
    wait_frames(qtbot, w, 3, probe)
    assert _diff(probe.last, Compositor(w.worker.pipeline.settings.compositor).compose(still[0])) > 10
    qtbot.keyClick(w, Qt.Key.Key_P)
    assert w.settings_panel.passthrough.isChecked()
    wait_frames(qtbot, w, 5, probe)
    expected = Compositor(w.worker.pipeline.settings.compositor).compose(still[0])
    assert _diff(probe.last, expected) < 0.5
    assert w.output_view.badge == "Pass-through"


def test_virtual_camera_gets_fitted_frames_at_the_chosen_size(qtbot, make_window, media):
    FakeVirtualCamera.instances.clear()
    w = make_window(vcam_factory=FakeVirtualCamera)
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_V)
    assert w.vcam_action.isChecked()
    cam = FakeVirtualCamera.instances[-1]
    assert (cam.width, cam.height, cam.fps) == (1280, 720, 30)
    qtbot.waitUntil(lambda: len(cam.frames) >= 5, timeout=20000)
    assert set(cam.frames) == {(720, 1280, 3)}
    # another size: the camera reopens at it
    w.settings_panel.size.setCurrentIndex(w.settings_panel.size.findData("640x480"))
    qtbot.waitUntil(lambda: FakeVirtualCamera.instances[-1] is not cam, timeout=5000)
    cam2 = FakeVirtualCamera.instances[-1]
    qtbot.waitUntil(lambda: len(cam2.frames) >= 3, timeout=20000)
    assert cam2.frames[-1] == (480, 640, 3) and cam.closed
    qtbot.keyClick(w, Qt.Key.Key_V)
    assert not w.vcam_action.isChecked()
    qtbot.waitUntil(lambda: cam2.closed, timeout=5000)


def test_shortcuts_are_shown_in_the_menus(make_window):
    w = make_window()
    shortcuts = {}
    for menu_action in w.menuBar().actions():
        for a in menu_action.menu().actions():
            if not a.shortcut().isEmpty():
                shortcuts[a.shortcut().toString()] = a.text()
    for key in ["C", "R", "V", "P", "Left", "Right", "F5", "Ctrl+O"] + [str(i) for i in range(1, 10)]:
        assert key in shortcuts, f"{key} missing from the menus"
    assert shortcuts["C"] == "Calibrate" and shortcuts["R"].endswith("Record")


def test_user_images_are_checked_at_once_and_a_faceless_one_is_refused(qtbot, make_window, media):
    w = make_window()
    w.start(SourceSpec("file", "still"), source_factory=paced_source(driving_frames(media, n=1)))
    wait_ready(qtbot, w)
    n = w.gallery.count()
    w.add_avatar_files([str(media / "non-faces" / "cat.jpg")])
    qtbot.waitUntil(lambda: "no face" in w.messages.text("avatar"), timeout=10000)
    assert "cat.jpg" in w.messages.text("avatar") and "Traceback" not in w.messages.text()
    assert w.gallery.count() == n  # refused: not in the gallery

    # drag-and-drop a real photo: added, face box drawn, selected and animated
    good = str((media / "sources" / "s42.jpg").resolve())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(good)])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    w.gallery.dropEvent(event)
    qtbot.waitUntil(lambda: good in w.portraits, timeout=10000)
    assert w.gallery.count() == n + 1 and w.gallery.current_path() == good
    assert "face found" in w.gallery.item_for(good).toolTip()
    qtbot.waitUntil(lambda: w.worker.pipeline.portrait is w.portraits[good], timeout=10000)
    assert good in w.settings.user_avatars


def test_settings_persist_between_runs(qtbot, make_window, store, media):
    w = make_window()
    w.start(SourceSpec("demo"))
    w.settings_panel.smoothing.setValue(80)
    w.settings_panel.mirror_output.setChecked(True)
    w.settings_panel.relative.setChecked(False)
    w.settings_panel.fps.setCurrentIndex(w.settings_panel.fps.findData(25))
    qtbot.keyClick(w, Qt.Key.Key_L)  # landmarks off
    w.select_avatar(2)
    chosen = w.gallery.current_path()
    w.close()

    w2 = make_window()
    s = w2.settings
    assert (s.smoothing, s.mirror_output, s.relative, s.output_fps, s.show_landmarks) == (80, True, False, 25, False)
    assert s.camera == "demo" and s.avatar == chosen
    assert w2.settings_panel.smoothing.value() == 80 and w2.settings_panel.mirror_output.isChecked()
    assert not w2.landmarks_action.isChecked()
    ps = s.pipeline_settings()
    assert ps.compositor.mirror and not ps.motion.relative and ps.smoothing.min_cutoff < 1.0


def test_without_a_camera_the_demo_driver_drives_the_avatar(qtbot, make_window):
    pytest.importorskip("engine.demo_driver")
    w = make_window()  # no camera on this machine (list_cameras -> [])
    w.start()  # the app still starts: it falls back to the demo driver
    assert w.camera_spec == SourceSpec("demo")
    labels = [w.camera_combo.itemText(i) for i in range(w.camera_combo.count())]
    assert labels[0] == "No camera found" and "Video file…" in labels
    wait_ready(qtbot, w)
    probe = add_probe(w)
    wait_frames(qtbot, w, 10, probe)
    assert probe.last.shape == (720, 1280, 3)
    assert w.camera_combo.currentText() == "Demo driver"
    assert w.stats.engine_errors == 0
