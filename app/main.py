"""``puppetcam`` / ``python -m app``: the live window, with OBS-style flags for scripting.

    puppetcam [--source IMG] [--camera INDEX|PATH|demo] [--start-virtualcam] [--start-recording]
              [--record-to FILE] [--quit-after SECONDS] [--minimized]

Exit codes: 0 ok; 1 a recording asked for on the command line failed; 2 bad input (one line on
stderr, e.g. ``no face found in source image cat.jpg``).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

log = logging.getLogger("puppetcam.app")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="puppetcam", description="Animate a portrait live from a camera.")
    p.add_argument("--source", metavar="IMG", help="portrait to animate (added to the gallery)")
    p.add_argument("--camera", metavar="INDEX|PATH|demo",
                   help="camera index, a video file played as a camera (real time, looping), or 'demo'")
    p.add_argument("--start-virtualcam", action="store_true", help="turn the virtual camera on at start")
    p.add_argument("--start-recording", action="store_true", help="start recording a clip at start")
    p.add_argument("--record-to", metavar="FILE", help="the clip's file (default: a new file in the clips folder)")
    p.add_argument("--quit-after", metavar="SECONDS", type=float, help="close the app after this many seconds")
    p.add_argument("--minimized", action="store_true", help="start with the window minimized")
    return p


def _fail(message: str) -> int:
    print(f"puppetcam: error: {message}", file=sys.stderr)
    return 2


def _check_args(args) -> tuple[int, object]:
    """Validate the inputs before any window opens; returns (exit code, camera spec)."""
    from app.threads import SourceSpec
    from engine.errors import PuppetcamError

    if args.source:
        from engine.portrait import load_portrait

        try:
            load_portrait(args.source)  # the face is checked at once: a clear line, exit 2
        except PuppetcamError as exc:
            return _fail(str(exc)), None
    spec = None
    if args.camera is not None:
        spec = SourceSpec.parse(args.camera)
        if spec.kind == "file":
            from engine.capture import probe_video

            try:
                probe_video(spec.value)
            except PuppetcamError as exc:
                return _fail(str(exc)), None
            spec = SourceSpec("file", str(Path(spec.value).resolve()))
    if args.record_to:
        from engine.sinks.recorder import ensure_writable

        try:
            ensure_writable(args.record_to)
        except PuppetcamError as exc:
            return _fail(str(exc)), None
    if args.quit_after is not None and args.quit_after < 0:
        return _fail("--quit-after must be >= 0"), None
    return 0, spec


def _choose_platform() -> None:
    """No display at all (a server, CI): run offscreen rather than abort inside Qt."""
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM") \
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        log.info("no display: running offscreen")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="puppetcam: %(message)s")
    for noisy in ("PIL", "matplotlib", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    code, spec = _check_args(args)
    if code:
        return code

    _choose_platform()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.theme import apply_theme
    from app.window import MainWindow

    app = QApplication.instance() or QApplication(["puppetcam"])
    app.setApplicationName("Puppetcam")
    app.setOrganizationName("Puppetcam")
    apply_theme(app)
    window = MainWindow()

    previous_hook = sys.excepthook

    def excepthook(kind, value, tb):  # an unexpected error: log it, tell the user in one line
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        try:
            window.messages.show_message("unexpected", f"Unexpected error: {value or kind.__name__} "
                                         "(details in the log). Puppetcam keeps running.", "error")
        except Exception:  # noqa: BLE001
            pass

    sys.excepthook = excepthook
    try:
        window.restore_geometry()
        if args.record_to:
            window.record_to = Path(args.record_to).resolve()
        window.start(camera=spec, avatar=args.source)
        if args.minimized:
            window.showMinimized()
        else:
            window.show()
        if args.start_virtualcam:
            window.set_virtual_camera(True)
        if args.start_recording:
            window.set_recording(True)
        if args.quit_after is not None:
            QTimer.singleShot(int(args.quit_after * 1000), window.close)
        app.exec()
    finally:
        window.shutdown()
        sys.excepthook = previous_hook
    if args.start_recording and window.recording_failed:
        return 1
    if window.last_clip is not None:
        print(f"puppetcam: clip saved: {window.last_clip}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
