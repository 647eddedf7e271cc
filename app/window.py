"""The main window: avatar gallery, camera picker, previews, live controls, status bar.

The window only wires widgets to the threads of ``app.threads``; the engine does all image work.
Thread callbacks reach the GUI through ``Bridge`` signals (queued onto the GUI thread). Faults show
as one line in the message bar (with an action where there is one), never as a traceback or a
frozen window.
"""
from __future__ import annotations

import importlib.util
import logging
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow,
                               QMessageBox, QPushButton, QScrollArea, QSplitter, QToolBar,
                               QVBoxLayout, QWidget)

from app import settings as settings_mod
from app.clips import default_clips_dir, format_duration, new_clip_path
from app.recording import Recording, default_audio_factory
from app.settings import AppSettings
from app.threads import (CaptureThread, LatestSlot, LiveStats, SinkRunner, SourceSpec, WorkerOutput,
                         WorkerThread, open_source)
from app.widgets.gallery import IMAGE_SUFFIXES, AvatarGallery, pretty_name
from app.widgets.message_bar import MessageBar
from app.widgets.preview import DrivingView, OutputView
from app.widgets.settings_panel import SettingsPanel
from app.widgets.stats_graph import Sparkline
from engine.errors import OutputError, PuppetcamError

log = logging.getLogger("puppetcam.app")

REPO = Path(__file__).resolve().parents[1]
BUNDLED_AVATARS = REPO / "assets" / "avatars"
VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v);;All files (*)"
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


class Bridge(QObject):
    """Signals emitted from the worker/capture/sink threads, delivered on the GUI thread."""

    output_ready = Signal()
    camera_lost = Signal(str)
    engine_error = Signal(str)
    engine_fatal = Signal(str)
    engine_ready = Signal()
    engine_switch_failed = Signal(str)
    cuda_probed = Signal(int)  # 1 when torch sees a CUDA GPU
    sink_error = Signal(str, str)
    avatar_loaded = Signal()  # a (path, Portrait | error text, select) result waits in the queue


def create_animator_for(engine: str, device: str, checkpoint: str = "", config: str = ""):
    """The engine the user picked (``engine.animators.create_animator``), with its options."""
    from engine.animators import create_animator

    if engine == "fomm":
        if not checkpoint or not config:
            raise PuppetcamError("the FOMM engine needs a checkpoint and its config: "
                                 "Engine ▸ Choose FOMM checkpoint…")
        return create_animator("fomm", checkpoint=checkpoint, config=config, device=device)
    return create_animator(engine)


def _preload_engine_libraries() -> None:
    """Import MediaPipe once on the GUI thread: the avatar loader and the worker would otherwise
    import it from two threads at once, and its package ``__init__`` is not safe against that
    (``NameError: name 'framework' is not defined``)."""
    try:
        importlib.import_module("mediapipe")
    except ImportError:
        log.exception("MediaPipe is missing: face tracking will not work")


class MainWindow(QMainWindow):
    """``MainWindow(store, clips_dir, ...)``; then ``start(camera, avatar)``; closing stops everything.

    ``vcam_factory`` and ``audio_factory`` replace pyvirtualcam's camera and the microphone (tests).
    """

    def __init__(self, store: QSettings | None = None, clips_dir: Path | None = None,
                 avatars_dir: Path | None = BUNDLED_AVATARS, vcam_factory: Callable | None = None,
                 audio_factory: Callable | None = None, list_cameras: Callable[[], list[int]] | None = None):
        super().__init__()
        _preload_engine_libraries()
        self.store = store if store is not None else settings_mod.default_store()
        self.settings: AppSettings = settings_mod.load_settings(self.store)
        if clips_dir is not None:
            self.settings.clips_dir = str(clips_dir)
        self._vcam_factory = vcam_factory
        self._audio_factory = audio_factory or default_audio_factory
        self._list_cameras = list_cameras
        self.bridge = Bridge()
        self.stats = LiveStats()
        self.frame_slot = LatestSlot()  # capture -> worker
        self._preview_slot = LatestSlot()  # worker -> GUI previews
        self._preview_pending = False
        self.capture: CaptureThread | None = None
        self.worker: WorkerThread | None = None
        self.recording: Recording | None = None
        self.record_to: Path | None = None  # --record-to: the next recording's file
        self.last_clip: Path | None = None
        self.recording_failed = False
        self.camera_spec: SourceSpec | None = None
        self.portraits: dict = {}  # path -> Portrait (face checked)
        self._pending_avatar = ""
        self._loaded: queue.SimpleQueue = queue.SimpleQueue()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="puppetcam-avatars")
        self._closed = False
        self._fallback_from: str | None = None  # engine that could not start; its notice stays up
        self.last_output: WorkerOutput | None = None

        self.setWindowTitle("Puppetcam")
        self.setAcceptDrops(True)
        self._build_ui()
        self._build_actions()
        self._connect()
        self._fill_gallery(avatars_dir)
        self._fill_cameras()
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(250)
        self._stats_timer.timeout.connect(self._update_stats)
        self._stats_timer.start()
        self.resize(1360, 840)

    # ================================================================================== UI
    def _build_ui(self) -> None:
        central = QWidget(self)
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        self.messages = MessageBar(central)
        root.addWidget(self.messages)

        split = QSplitter(Qt.Orientation.Horizontal, central)
        split.setChildrenCollapsible(False)
        root.addWidget(split, 1)

        # left: avatars
        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(10, 10, 4, 10)
        title = QLabel("Avatars")
        title.setObjectName("sectionTitle")
        lay.addWidget(title)
        self.gallery = AvatarGallery()
        lay.addWidget(self.gallery, 1)
        self.add_avatar_button = QPushButton("+  Add image…")
        self.add_avatar_button.setToolTip("Add your own portrait (or drop image files on the gallery)")
        lay.addWidget(self.add_avatar_button)
        left.setMinimumWidth(262)
        split.addWidget(left)

        # centre: the animated output, large
        centre = QWidget()
        lay = QVBoxLayout(centre)
        lay.setContentsMargins(6, 10, 6, 10)
        self.output_title = QLabel("Output")
        self.output_title.setObjectName("sectionTitle")
        lay.addWidget(self.output_title)
        self.output_view = OutputView()
        lay.addWidget(self.output_view, 1)
        split.addWidget(centre)

        # right: the driving camera, calibration, settings
        right = QWidget()
        lay = QVBoxLayout(right)
        lay.setContentsMargins(4, 10, 10, 10)
        cam_title = QLabel("Camera")
        cam_title.setObjectName("sectionTitle")
        lay.addWidget(cam_title)
        row = QHBoxLayout()
        self.camera_combo = QComboBox()
        self.camera_combo.setToolTip("What drives the avatar")
        self.camera_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.setToolTip("Open the camera again (F5)")
        row.addWidget(self.camera_combo, 1)
        row.addWidget(self.reconnect_button)
        lay.addLayout(row)
        self.driving_view = DrivingView()
        self.driving_view.setMinimumHeight(220)
        lay.addWidget(self.driving_view, 0)
        row = QHBoxLayout()
        self.calibrate_button = QPushButton("Calibrate  (C)")
        self.calibrate_button.setObjectName("primary")
        self.calibrate_button.setToolTip("Use the current driving pose as the reference")
        self.alignment_label = QLabel("Pose match —")
        self.alignment_label.setObjectName("alignment")
        self.alignment_label.setToolTip("How well your pose matches the avatar's: calibrate when it is high")
        row.addWidget(self.calibrate_button)
        row.addWidget(self.alignment_label, 1, Qt.AlignmentFlag.AlignRight)
        lay.addLayout(row)
        self.settings_panel = SettingsPanel(self.settings)
        self.settings_panel.set_clips_dir(str(self.clips_dir))
        self.settings_panel.set_fomm_available(importlib.util.find_spec("torch") is not None,
                                               "needs the neural extra: pip install 'puppetcam[neural]'")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.settings_panel)
        lay.addWidget(scroll, 1)
        right.setMinimumWidth(340)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([262, 748, 380])
        self.setCentralWidget(central)

        # status bar
        sb = self.statusBar()
        self.camera_fps_label = QLabel("Camera — fps")
        self.engine_fps_label = QLabel("Engine — fps")
        self.latency_label = QLabel("Latency — ms")
        self.dropped_label = QLabel("Dropped 0")
        self.graph = Sparkline()
        for w in (self.camera_fps_label, self.engine_fps_label, self.latency_label, self.dropped_label):
            sb.addPermanentWidget(w)
        sb.addPermanentWidget(self.graph)
        self.latency_label.setToolTip("Glass-to-output latency: capture stamp to output frame, p50 / p95")

    def _build_actions(self) -> None:
        menu = self.menuBar()
        tb = QToolBar("Live", self)
        tb.setObjectName("liveToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)

        def action(text, shortcut=None, slot=None, checkable=False, tip=""):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.setCheckable(checkable)
            if tip:
                a.setToolTip(f"{tip} ({a.shortcut().toString()})" if shortcut else tip)
            if slot is not None:
                (a.toggled if checkable else a.triggered).connect(slot)
            self.addAction(a)
            return a

        f = menu.addMenu("&File")
        self.add_avatar_action = action("Add avatar image…", "Ctrl+O", self._choose_avatar_files)
        self.open_clips_action = action("Open clips folder", "Ctrl+Shift+O", self.open_clips_folder)
        self.quit_action = action("Quit", "Ctrl+Q", self.close)
        for a in (self.add_avatar_action, self.open_clips_action):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.quit_action)

        m = menu.addMenu("&Avatar")
        self.prev_avatar_action = action("Previous avatar", "Left", lambda: self.step_avatar(-1))
        self.next_avatar_action = action("Next avatar", "Right", lambda: self.step_avatar(1))
        m.addAction(self.prev_avatar_action)
        m.addAction(self.next_avatar_action)
        m.addSeparator()
        self.number_actions = []
        for i in range(9):
            a = action(f"Avatar {i + 1}", str(i + 1), lambda _=False, i=i: self.select_avatar(i))
            m.addAction(a)
            self.number_actions.append(a)

        c = menu.addMenu("&Camera")
        self.reconnect_action = action("Reconnect", "F5", self.reconnect)
        self.demo_action = action("Demo driver", "Ctrl+D", lambda: self.set_camera(SourceSpec("demo")))
        self.video_action = action("Video file…", "Ctrl+Shift+V", self._choose_video_file)
        for a in (self.reconnect_action, self.demo_action, self.video_action):
            c.addAction(a)

        live = menu.addMenu("&Live")
        self.calibrate_action = action("Calibrate", "C", self.calibrate, tip="Use the current pose as the reference")
        self.vcam_action = action("◉  Virtual camera", "V", self.set_virtual_camera, checkable=True,
                                  tip="Send the output to Zoom, Meet, OBS…")
        self.record_action = action("●  Record", "R", self.set_recording, checkable=True,
                                    tip="Record a clip into the clips folder")
        self.passthrough_action = action("Pass-through", "P", self._on_passthrough_action, checkable=True,
                                         tip="Show the real camera instead of the avatar")
        self.landmarks_action = action("Show landmarks", "L", self._on_landmarks_action, checkable=True)
        self.overlay_action = action("See-through avatar", "O", self._on_overlay_action, checkable=True)
        for a in (self.calibrate_action, self.vcam_action, self.record_action, self.passthrough_action):
            live.addAction(a)
        live.addSeparator()
        live.addAction(self.landmarks_action)
        live.addAction(self.overlay_action)
        self.passthrough_action.setChecked(self.settings.passthrough)
        self.landmarks_action.setChecked(self.settings.show_landmarks)
        self.overlay_action.setChecked(self.settings.show_overlay)

        h = menu.addMenu("&Help")
        h.addAction(action("Keyboard shortcuts", "F1", self._show_shortcuts))
        h.addAction(action("About Puppetcam", None, self._show_about))

        tb.addAction(self.calibrate_action)
        tb.addSeparator()
        tb.addAction(self.vcam_action)
        tb.addAction(self.record_action)
        self.record_timer_label = QLabel("")
        self.record_timer_label.setObjectName("recTimer")
        tb.addWidget(self.record_timer_label)
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy())
        tb.addWidget(spacer)
        tb.addAction(self.passthrough_action)
        tb.addAction(self.landmarks_action)
        tb.addAction(self.overlay_action)
        for a, name in ((self.vcam_action, "toggle-virtual-camera"), (self.record_action, "toggle-record")):
            w = tb.widgetForAction(a)
            if w is not None:
                w.setObjectName(name)

    def _connect(self) -> None:
        b = self.bridge
        b.output_ready.connect(self._on_output_ready)
        b.camera_lost.connect(self._on_camera_lost)
        b.engine_error.connect(self._on_engine_error)
        b.engine_fatal.connect(self._on_engine_fatal)
        b.engine_ready.connect(self._on_engine_ready)
        b.engine_switch_failed.connect(self._on_engine_switch_failed)
        b.cuda_probed.connect(lambda ok: self.settings_panel.set_cuda_available(bool(ok)))
        b.sink_error.connect(self._on_sink_error)
        b.avatar_loaded.connect(self._on_avatar_loaded)
        self.gallery.currentItemChanged.connect(self._on_gallery_current)
        self.gallery.files_dropped.connect(self.add_avatar_files)
        self.add_avatar_button.clicked.connect(self._choose_avatar_files)
        self.calibrate_button.clicked.connect(self.calibrate)
        self.reconnect_button.clicked.connect(self.reconnect)
        self.camera_combo.activated.connect(self._on_camera_combo)
        self.settings_panel.changed.connect(self._on_setting_changed)
        self.settings_panel.open_clips_requested.connect(self.open_clips_folder)
        self.settings_panel.choose_clips_requested.connect(self._choose_clips_dir)
        self.settings_panel.choose_checkpoint_requested.connect(self._choose_checkpoint)
        self.driving_view.show_landmarks = self.settings.show_landmarks
        self.driving_view.show_overlay = self.settings.show_overlay

    # ================================================================================== avatars
    def _fill_gallery(self, avatars_dir: Path | None) -> None:
        bundled = sorted(p for p in Path(avatars_dir).iterdir()
                         if p.suffix.lower() in IMAGE_SUFFIXES) if avatars_dir and Path(avatars_dir).is_dir() else []
        for p in bundled:
            self.gallery.add_avatar(str(p), bundled=True)
        for p in self.settings.user_avatars:
            if Path(p).is_file():
                self.gallery.add_avatar(p, bundled=False)
        for p in self.gallery.paths():
            self._load_avatar(p, select=False)

    def _load_avatar(self, path: str, select: bool) -> None:
        """Check the face in the background; ``avatar_loaded`` brings the Portrait or the error."""
        def job():
            from engine.portrait import load_portrait

            try:
                result = load_portrait(path)
            except PuppetcamError as exc:
                result = str(exc)
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a refused image
                log.exception("cannot load avatar %s", path)
                result = f"cannot use {Path(path).name}: {exc}"
            if not self._closed:
                # Python objects travel in a queue, not as signal arguments (PySide would have to
                # keep them alive inside Qt events, which is fragile when the app closes).
                self._loaded.put((path, result, select))
                self.bridge.avatar_loaded.emit()

        if not self._closed:
            self._loader.submit(job)

    def _on_avatar_loaded(self) -> None:
        while True:
            try:
                path, result, select = self._loaded.get_nowait()
            except queue.Empty:
                return
            if not self._closed:
                self._avatar_result(path, result, select)

    def _avatar_result(self, path: str, result, select: bool) -> None:
        item = self.gallery.item_for(path)
        if isinstance(result, str):
            bundled = bool(item.data(Qt.ItemDataRole.UserRole + 1)) if item is not None else False
            if item is not None and not bundled:
                self.gallery.remove_avatar(path)
                self._forget_user_avatar(path)
            elif item is not None:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.messages.show_message("avatar", f"Avatar refused: {result}. Pick a photo or painting "
                                       "with one clearly visible face.", "warning")
            return
        self.portraits[path] = result
        self.gallery.set_portrait(path, result.image, result.landmarks.bbox())
        if item is not None and not item.data(Qt.ItemDataRole.UserRole + 1):
            if path not in self.settings.user_avatars:
                self.settings.user_avatars.append(path)
        if select:
            self.messages.clear("avatar")
            self.select_avatar(path)
        elif path == self._pending_avatar:
            self._apply_avatar(path)

    def add_avatar_files(self, paths: list[str]) -> None:
        """User images (button, drop, --source): the face is checked at once, in the background."""
        for i, p in enumerate(paths):
            p = str(Path(p).resolve())
            if not Path(p).is_file():
                self.messages.show_message("avatar", f"Avatar refused: {p} does not exist.", "warning")
                continue
            self.gallery.add_avatar(p, bundled=False)
            self._load_avatar(p, select=i == len(paths) - 1)

    def _forget_user_avatar(self, path: str) -> None:
        if path in self.settings.user_avatars:
            self.settings.user_avatars.remove(path)

    def select_avatar(self, which) -> None:
        """By gallery row (0-based) or path; ←/→ and 1–9 land here."""
        if isinstance(which, int):
            if not 0 <= which < self.gallery.count():
                return
            item = self.gallery.item(which)
        else:
            item = self.gallery.item_for(str(which))
        if item is not None and item.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.gallery.setCurrentItem(item)

    def step_avatar(self, step: int) -> None:
        n = self.gallery.count()
        if n:
            row = self.gallery.currentRow()
            for k in range(1, n + 1):
                item = self.gallery.item((row + step * k) % n)
                if item.flags() & Qt.ItemFlag.ItemIsEnabled:
                    self.gallery.setCurrentItem(item)
                    return

    def _on_gallery_current(self, item, _previous=None) -> None:
        if item is None:
            return
        path = item.data(Qt.ItemDataRole.UserRole)
        self.settings.avatar = path
        self._pending_avatar = path
        if path in self.portraits:
            self._apply_avatar(path)

    def _apply_avatar(self, path: str) -> None:
        portrait = self.portraits[path]
        self._pending_avatar = ""
        self.driving_view.set_avatar(portrait.image)
        self.output_title.setText(f"Output — {pretty_name(path)}")
        if self.worker is not None and self.worker.pipeline is not None and \
                getattr(self.worker.pipeline, "portrait", None) is not portrait:
            self.worker.set_portrait(portrait)
        if self.last_output is None:
            self.output_view.set_frame(portrait.image)

    def _choose_avatar_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add avatar images", str(Path.home()), IMAGE_FILTER)
        if paths:
            self.add_avatar_files(paths)

    # ================================================================================== cameras
    def _fill_cameras(self) -> None:
        combo = self.camera_combo
        combo.clear()
        try:
            if self._list_cameras is not None:
                cams = self._list_cameras()
            else:
                from engine.capture import list_cameras

                cams = list_cameras()
        except Exception:  # noqa: BLE001 - probing cameras must never stop the app
            log.exception("listing cameras failed")
            cams = []
        self.real_cameras = list(cams)
        for i in cams:
            combo.addItem(f"Camera {i}", str(SourceSpec("camera", str(i))))
        if not cams:
            combo.addItem("No camera found", None)
            combo.model().item(0).setEnabled(False)
        combo.insertSeparator(combo.count())
        combo.addItem("Demo driver", "demo")
        combo.addItem("Video file…", "choose-file")
        if self.camera_spec is not None and self.camera_spec.kind == "file":
            combo.insertItem(combo.count() - 1, self.camera_spec.label, str(self.camera_spec))
        self._sync_camera_combo()

    def _sync_camera_combo(self) -> None:
        if self.camera_spec is None:
            return
        key = str(self.camera_spec)
        for i in range(self.camera_combo.count()):
            if self.camera_combo.itemData(i) == key:
                self.camera_combo.setCurrentIndex(i)
                return
        if self.camera_spec.kind == "file":
            self.camera_combo.insertItem(self.camera_combo.count() - 1, self.camera_spec.label, key)
            self.camera_combo.setCurrentIndex(self.camera_combo.count() - 2)

    def _on_camera_combo(self, index: int) -> None:
        data = self.camera_combo.itemData(index)
        if data == "choose-file":
            self._choose_video_file()
        elif data:
            self.set_camera(SourceSpec.parse(data))

    def _choose_video_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Play a video file as the camera", str(Path.home()), VIDEO_FILTER)
        if path:
            self.set_camera(SourceSpec("file", path))
        else:
            self._sync_camera_combo()

    def default_camera(self) -> SourceSpec:
        if self.settings.camera:
            spec = SourceSpec.parse(self.settings.camera)
            if spec.kind != "file" or Path(spec.value).is_file():
                if spec.kind != "camera" or int(spec.value) in self.real_cameras:
                    return spec
        if self.real_cameras:
            return SourceSpec("camera", str(self.real_cameras[0]))
        return SourceSpec("demo")

    def set_camera(self, spec: SourceSpec, source_factory: Callable | None = None) -> None:
        """Switch what drives the avatar. ``source_factory`` (tests) replaces ``open_source(spec)``."""
        self._stop_capture()
        self.camera_spec = spec
        self._source_factory = source_factory
        self.settings.camera = str(spec)
        self.messages.clear("camera")
        self.driving_view.badge = ""
        self._sync_camera_combo()
        factory = source_factory or (lambda: open_source(spec))
        self.capture = CaptureThread(factory, self.frame_slot, self.stats,
                                     on_lost=self.bridge.camera_lost.emit, name=spec.label)
        self.capture.start()

    def reconnect(self) -> None:
        if self.camera_spec is not None:
            self.set_camera(self.camera_spec, getattr(self, "_source_factory", None))

    def _on_camera_lost(self, message: str) -> None:
        if self._closed:
            return
        self.driving_view.badge = "Signal lost — last frame held"
        self.driving_view.update()
        self.messages.show_message(
            "camera", f"Camera lost: {message}. The last frame is held.", "error",
            [("Reconnect", self.reconnect), ("Use demo driver", lambda: self.set_camera(SourceSpec("demo")))])

    def _stop_capture(self, timeout: float = 2.0) -> None:
        if self.capture is not None:
            if not self.capture.stop(timeout):
                log.warning("the camera thread did not stop in time")
            self.capture = None

    # ================================================================================== engine
    def start(self, camera: SourceSpec | None = None, avatar: str | None = None,
              source_factory: Callable | None = None) -> None:
        """Start the engine with ``avatar`` (default: the last one) and the camera."""
        if avatar:
            avatar = str(Path(avatar).resolve())
            if self.gallery.item_for(avatar) is None:
                self.gallery.add_avatar(avatar, bundled=False)
                self._load_avatar(avatar, select=False)
        paths = [p for p in self.gallery.paths() if Path(p).is_file()]
        path = avatar or (self.settings.avatar if self.settings.avatar in paths else (paths[0] if paths else ""))
        if not path:
            self.messages.show_message("avatar", "No avatar: add a portrait with + Add image…", "warning")
        else:
            self.gallery.blockSignals(True)
            self.select_avatar(path)
            self.gallery.blockSignals(False)
            self.settings.avatar = path
            self.output_title.setText(f"Output — {pretty_name(path)}")
            self._start_worker(path)
        self.set_camera(camera or self.default_camera(), source_factory)

    def _start_worker(self, avatar_path: str) -> None:
        s = self.settings
        engine, device, checkpoint, config = s.engine, s.device, s.fomm_checkpoint, s.fomm_config
        pipeline_settings = s.pipeline_settings()
        cached = self.portraits.get(avatar_path)

        def build():
            from engine.pipeline import Pipeline
            from engine.portrait import load_portrait

            portrait = cached or load_portrait(avatar_path)
            animator = create_animator_for(engine, device, checkpoint, config)
            if engine == "fomm":
                self._probe_cuda()
            return Pipeline(animator, portrait, pipeline_settings)

        self.worker = WorkerThread(build, self.frame_slot, self.stats, on_output=self._on_worker_output,
                                   on_error=self.bridge.engine_error.emit, on_ready=self.bridge.engine_ready.emit,
                                   on_fatal=self.bridge.engine_fatal.emit,
                                   auto_calibrate_on_steady=s.auto_calibrate)
        self.worker.passthrough = s.passthrough
        self.worker.start()

    def _on_worker_output(self, out: WorkerOutput) -> None:  # worker thread
        self._preview_slot.put(out)
        self.stats.sink_drops["preview"] = self._preview_slot.dropped
        if not self._preview_pending:
            self._preview_pending = True
            self.bridge.output_ready.emit()

    def _on_output_ready(self) -> None:
        self._preview_pending = False
        out = self._preview_slot.take(0)
        if out is None or self._closed:
            return
        self.last_output = out
        self.output_view.set_frame(out.output)
        face = out.face
        xy = getattr(face, "xy", None)
        synthetic = out.frame.landmarks is not None
        self.driving_view.mirrored = self.settings.mirror_input and not synthetic
        self.driving_view.set_landmarks(xy)
        if not self.messages.text("camera"):
            self.driving_view.badge = "No face — holding the last pose" if out.held else ""
        self.driving_view.set_frame(out.frame.image)
        self.output_view.badge = "Pass-through" if out.passthrough else ""
        if out.alignment is not None:
            a = out.alignment
            color = "#5fd49a" if a >= 70 else "#ffcf70" if a >= 40 else "#ff8a8a"
            self.alignment_label.setText(f"Pose match <b style='color:{color}'>{a:.0f}%</b>")
        if out.calibrated_now:
            self.statusBar().showMessage("Calibrated: this pose is the reference now", 3000)

    def _on_engine_ready(self) -> None:
        w = self.worker
        if w is None or w.pipeline is None:
            return
        portrait = w.pipeline.portrait
        path = self.settings.avatar
        if path and path not in self.portraits and Path(path).stem == portrait.name:
            self.portraits[path] = portrait
            self.gallery.set_portrait(path, portrait.image, portrait.landmarks.bbox())
        self.driving_view.set_avatar(portrait.image)
        animator = w.pipeline.animator
        # The notice that an engine could not start (and the mesh engine stands in) stays until that
        # engine does start: the stand-in becoming ready must not wipe it a second after it appeared.
        if self._fallback_from is None or animator.name == self._fallback_from:
            self.messages.clear("engine")
            self._fallback_from = None
        runs_on = getattr(animator, "provider", "")  # neural engines say what runs them (e.g. ONNX provider)
        self.statusBar().showMessage(f"{animator.name} engine ready" + (f" · {runs_on}" if runs_on else ""), 8000)
        if self._pending_avatar and self._pending_avatar in self.portraits:
            self._apply_avatar(self._pending_avatar)
        if self._pending_recording is not None:
            path, self._pending_recording = self._pending_recording, None
            self.set_recording(True, path)

    _pending_recording = None

    def _on_engine_error(self, message: str) -> None:
        if not self._closed:
            self.messages.show_message("engine", f"{message[0].upper()}{message[1:]}", "warning")

    def _on_engine_fatal(self, message: str) -> None:
        if self._closed:
            return
        if self.settings.engine != "mesh":
            self.messages.show_message("engine", f"Cannot start the {self.settings.engine} engine: {message}. "
                                       "Using the built-in mesh engine.", "warning")
            self._fallback_from = self.settings.engine
            self.settings.engine = "mesh"
            self.settings_panel.load(self.settings)
            self._start_worker(self.settings.avatar)
        else:
            self.messages.show_message("engine", f"Cannot start the engine: {message}", "error")

    def _on_engine_switch_failed(self, message: str) -> None:
        """The previous engine keeps running: show its name again in the panel."""
        if self._closed or self.worker is None or self.worker.pipeline is None:
            return
        self.settings.engine = getattr(self.worker.pipeline.animator, "name", "") or "mesh"
        self.settings_panel.load(self.settings)

    def calibrate(self) -> None:
        if self.worker is not None:
            self.worker.calibrate()
            self.statusBar().showMessage("Calibrating on the next frame with a face…", 2000)

    def _on_setting_changed(self, name: str) -> None:
        self.settings_panel.store(self.settings)
        s = self.settings
        if name in ("relative", "adapt_scale", "smoothing", "mirror_input", "mirror_output", "output_size"):
            if self.worker is not None:
                self.worker.update_settings(s.pipeline_settings())
        if name == "passthrough":
            self.passthrough_action.setChecked(s.passthrough)
        elif name == "show_landmarks":
            self.landmarks_action.setChecked(s.show_landmarks)
        elif name == "show_overlay":
            self.overlay_action.setChecked(s.show_overlay)
        elif name == "auto_calibrate" and self.worker is not None:
            self.worker.auto_calibrate_on_steady = s.auto_calibrate
        elif name in ("output_size", "output_fps") and self.vcam_action.isChecked():
            self.set_virtual_camera(False)
            self.vcam_action.setChecked(True)  # reopens at the new format
        elif name in ("engine", "device"):
            self._switch_engine()

    def _switch_engine(self) -> None:
        s = self.settings
        if self.worker is None:
            return
        engine, device, ps = s.engine, s.device, s.pipeline_settings()
        checkpoint, config = s.fomm_checkpoint, s.fomm_config

        def build(old):  # on the worker thread: loading torch and a model never freezes the window
            from engine.pipeline import Pipeline

            animator = create_animator_for(engine, device, checkpoint, config)
            if engine == "fomm":
                self._probe_cuda()
            return Pipeline(animator, old.portrait, ps)

        self.worker.rebuild(build, f"switch to the {engine} engine", on_failed=self.bridge.engine_switch_failed.emit)
        self.statusBar().showMessage(f"Loading the {engine} engine…", 3000)

    _cuda: bool | None = None

    def _probe_cuda(self) -> None:
        """Worker thread: does torch see a CUDA GPU? (The device picker offers CUDA only then.)"""
        if self._cuda is None:
            try:
                import torch

                self._cuda = bool(torch.cuda.is_available())
            except Exception:  # noqa: BLE001 - no torch, a broken driver: CPU only
                self._cuda = False
            if not self._closed:
                self.bridge.cuda_probed.emit(int(self._cuda))

    def _choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "FOMM checkpoint", str(Path.home()),
                                              "Checkpoints (*.pth *.pt *.tar *.safetensors);;All files (*)")
        if not path:
            return
        configs = sorted(Path(path).parent.glob("*.yaml")) + sorted(Path(path).parent.glob("*.yml"))
        config = str(configs[0]) if len(configs) == 1 else ""
        if not config:
            config, _ = QFileDialog.getOpenFileName(self, "FOMM config (e.g. vox-256.yaml)", str(Path(path).parent),
                                                    "Config (*.yaml *.yml);;All files (*)")
        if config:
            self.settings.fomm_checkpoint, self.settings.fomm_config = path, config
            if self.settings.engine == "fomm":
                self._switch_engine()

    def _on_passthrough_action(self, on: bool) -> None:
        self.settings.passthrough = on
        self.settings_panel.passthrough.blockSignals(True)
        self.settings_panel.passthrough.setChecked(on)
        self.settings_panel.passthrough.blockSignals(False)
        if self.worker is not None:
            self.worker.passthrough = on

    def _on_landmarks_action(self, on: bool) -> None:
        self._set_driving_view_flag("show_landmarks", on)

    def _on_overlay_action(self, on: bool) -> None:
        self._set_driving_view_flag("show_overlay", on)

    def _set_driving_view_flag(self, name: str, on: bool) -> None:
        """A menu toggle of the driving preview: settings, view and the panel's checkbox agree
        (the checkbox is set quietly, so it does not echo back here)."""
        setattr(self.settings, name, on)
        setattr(self.driving_view, name, on)
        box = getattr(self.settings_panel, name)
        box.blockSignals(True)
        box.setChecked(on)
        box.blockSignals(False)
        self.driving_view.update()

    # ================================================================================== sinks
    def set_virtual_camera(self, on: bool) -> bool:
        """Virtual camera on/off; when no device exists, say what to install (and stay off)."""
        if not on:
            if self.worker is not None:
                self.worker.remove_sink("virtualcam")
            self.vcam_action.blockSignals(True)
            self.vcam_action.setChecked(False)
            self.vcam_action.blockSignals(False)
            return False
        from engine.sinks.virtual_camera import VirtualCameraSink

        s = self.settings
        try:
            extra = {"camera_factory": self._vcam_factory} if self._vcam_factory is not None else {}
            sink = VirtualCameraSink(s.output_width, s.output_height, s.output_fps, **extra)
            sink.open()
        except (OutputError, ValueError) as exc:
            self.messages.show_message("virtualcam", f"Virtual camera unavailable: {exc}", "warning")
            self.set_virtual_camera(False)
            return False
        except Exception as exc:  # noqa: BLE001 - pyvirtualcam backends can raise anything
            log.exception("cannot open the virtual camera")
            self.messages.show_message("virtualcam", f"Virtual camera unavailable: {exc}", "warning")
            self.set_virtual_camera(False)
            return False
        self.messages.clear("virtualcam")
        self.virtual_camera = sink
        runner = SinkRunner("virtualcam", lambda image, t: sink.send(image), close_fn=sink.close,
                            maxsize=2, on_error=self.bridge.sink_error.emit)
        if self.worker is None:
            sink.close()
            return False
        self.worker.add_sink(runner)
        self.vcam_action.blockSignals(True)
        self.vcam_action.setChecked(True)
        self.vcam_action.blockSignals(False)
        self.statusBar().showMessage(f"Virtual camera on: {sink.device or 'ready'} "
                                     f"({s.output_width}×{s.output_height} @ {s.output_fps})", 5000)
        return True

    @property
    def clips_dir(self) -> Path:
        return Path(self.settings.clips_dir) if self.settings.clips_dir else default_clips_dir()

    def set_recording(self, on: bool, path: str | Path | None = None) -> bool:
        """Record on/off. A clip goes to ``path``, ``--record-to``, or a new file in the clips folder."""
        if not on:
            self._finish_recording()
            return False
        if self.recording is not None:
            return True
        if self.worker is None or self.worker.pipeline is None:
            # The engine is still loading: start as soon as it is ready (frames come only then).
            self._pending_recording = path or self.record_to or ""
            self._check_record_action(True)
            return True
        s = self.settings
        try:
            target = Path(path) if path else self.record_to
            if target is None:
                try:
                    self.clips_dir.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise OutputError(f"cannot create the clips folder {self.clips_dir}: "
                                      f"{exc.strerror or exc}") from None
                target = new_clip_path(self.clips_dir)
            audio = self._audio_factory if s.record_audio else None
            self.recording = Recording(target, s.output_width, s.output_height, s.output_fps,
                                       audio_factory=audio, on_error=self.bridge.sink_error.emit)
        except (OutputError, OSError) as exc:
            self.recording_failed = True
            self.messages.show_message("recording", f"Cannot record: {exc}", "error",
                                       [("Change folder…", self._choose_clips_dir)])
            self._check_record_action(False)
            return False
        self.messages.clear("recording")
        if self.recording.warning:
            self.messages.show_message("audio", self.recording.warning.capitalize(), "warning")
        self.worker.add_sink(self.recording.runner)
        self._check_record_action(True)
        self.statusBar().showMessage(f"Recording to {self.recording.path}", 4000)
        return True

    def _check_record_action(self, on: bool) -> None:
        self.record_action.blockSignals(True)
        self.record_action.setChecked(on)
        self.record_action.blockSignals(False)
        self._update_record_timer()

    def _finish_recording(self, timeout: float = 2.0) -> None:
        self._pending_recording = None
        rec, self.recording = self.recording, None
        self._check_record_action(False)
        if rec is None:
            return
        if self.worker is not None and self.worker.sink("recorder") is rec.runner:
            self.worker.remove_sink("recorder", timeout=0)  # no more frames; finalized just below
        if not rec.stop(timeout):
            log.warning("the clip %s was still being finalized when the time ran out", rec.path)
        self.last_clip = rec.path
        if rec.error:
            self.recording_failed = True
            self.messages.show_message("recording", f"Recording stopped: {rec.error}", "error",
                                       [("Open clips folder", lambda: self._open_folder(rec.path.parent))])
        elif not self._closed:
            self.messages.show_message(
                "recording", f"Saved {rec.path.name} ({format_duration(rec.recorder.duration)}) in {rec.path.parent}",
                "info", [("Open folder", lambda: self._open_folder(rec.path.parent))])

    def _on_sink_error(self, name: str, message: str) -> None:
        if self._closed:
            return
        if name == "virtualcam":
            self.set_virtual_camera(False)
            self.messages.show_message("virtualcam", f"Virtual camera stopped: {message}", "warning")
        elif name == "recorder" and self.recording is not None and self.recording.runner.error:
            self._finish_recording()

    def _update_record_timer(self) -> None:
        rec = self.recording
        if rec is not None:
            self.record_timer_label.setText(f"  ● REC {format_duration(rec.elapsed)}  ")
            self.record_timer_label.setToolTip(str(rec.path))
        elif self._pending_recording is not None:
            self.record_timer_label.setText("  ● REC starting…  ")
        else:
            self.record_timer_label.setText("")

    def open_clips_folder(self) -> None:
        try:
            self.clips_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.messages.show_message("recording", f"Cannot create the clips folder {self.clips_dir}: "
                                       f"{exc.strerror or exc}", "error")
            return
        self._open_folder(self.clips_dir)

    @staticmethod
    def _open_folder(folder: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _choose_clips_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Clips folder", str(self.clips_dir))
        if folder:
            self.settings.clips_dir = folder
            self.settings_panel.set_clips_dir(folder)
            self.messages.clear("recording")

    # ================================================================================== status
    def _update_stats(self) -> None:
        st = self.stats
        cam, eng = st.capture.rate(), st.engine.rate()
        live = self.capture is not None and self.capture.is_alive()
        self.camera_fps_label.setText(f"Camera {cam:4.1f} fps" if live else "Camera —")
        self.engine_fps_label.setText(f"Engine {eng:4.1f} fps")
        recent = list(st.latency_ms)[-60:]
        if recent and eng > 0:
            import numpy as np

            p50, p95 = np.percentile(recent, [50, 95])
            self.latency_label.setText(f"Latency {p50:.0f} / {p95:.0f} ms")
            self.graph.add(float(recent[-1]))
        else:
            self.latency_label.setText("Latency —")
        self.dropped_label.setText(f"Dropped {st.dropped}")
        self._update_record_timer()

    def _show_shortcuts(self) -> None:
        lines = [f"{a.shortcut().toString():>12}   {a.text()}" for a in self.actions() if not a.shortcut().isEmpty()]
        QMessageBox.information(self, "Keyboard shortcuts", "\n".join(lines))

    def _show_about(self) -> None:
        QMessageBox.about(self, "About Puppetcam",
                          "<b>Puppetcam</b><br>Animate a portrait live from your webcam and use it as "
                          "a camera in Zoom, Meet or OBS.")

    # ================================================================================== drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - the whole window accepts images
        self.gallery.dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.gallery.dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        self.gallery.dropEvent(event)

    # ================================================================================== shutdown
    def shutdown(self) -> None:
        """Stop every thread (each joined within the 2 s budget) and save the settings."""
        if self._closed:
            return
        self._closed = True
        t0 = time.monotonic()
        self._stats_timer.stop()
        try:
            self.settings_panel.store(self.settings)
            self.settings.user_avatars = self.gallery.user_paths()
            settings_mod.save_settings(self.store, self.settings)
            self.store.setValue("window/geometry", self.saveGeometry())
            self.store.sync()
        except Exception:  # noqa: BLE001 - never block closing on the settings file
            log.exception("saving settings failed")
        deadline = t0 + 2.0  # everything stops within 2 s, whatever the engine is doing
        self._stop_capture(0.5)  # no new frames (a frame period, unless a camera driver hangs)
        self._finish_recording(timeout=max(0.3, deadline - 0.5 - time.monotonic()))
        if self.worker is not None:
            self.worker.stop(max(0.2, deadline - time.monotonic()))
        self._loader.shutdown(wait=True, cancel_futures=True)
        log.info("closed in %.0f ms", (time.monotonic() - t0) * 1e3)

    def restore_geometry(self) -> None:
        geometry = self.store.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
