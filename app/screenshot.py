"""Take the README's screenshot of the live window: ``xvfb-run -s "-screen 0 1600x1000x24" python -m
app.screenshot docs/screenshot.png [--avatar mona-lisa.jpg] [--camera demo]``.

Runs the real window with a bundled avatar and the demo driver (no camera needed, nothing that is
not ours on screen), waits until the engine has calibrated and animated a while, and grabs it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--avatar", default="mona-lisa.jpg")
    p.add_argument("--camera", default="demo")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--size", default="1440x900")
    a = p.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.theme import apply_theme
    from app.threads import SourceSpec
    from app.window import BUNDLED_AVATARS, MainWindow

    app = QApplication.instance() or QApplication(["puppetcam"])
    apply_theme(app)
    tmp = Path(tempfile.mkdtemp())
    store = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    store.setValue("clips_dir", str(Path.home() / "Videos" / "Puppetcam"))
    w = MainWindow(store=store, list_cameras=lambda: [0])  # a webcam shows in the picker, as on a laptop
    width, height = (int(v) for v in a.size.split("x"))
    w.resize(width, height)
    w.show()
    w.start(SourceSpec.parse(a.camera), avatar=str(BUNDLED_AVATARS / a.avatar))

    def pump(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    end = time.monotonic() + 60
    while (w.worker is None or w.worker.pipeline is None or len(w.portraits) < w.gallery.count()) \
            and time.monotonic() < end:
        pump(0.05)
    pump(a.seconds)
    w.statusBar().clearMessage()
    w.messages.clear("recording")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    ok = w.grab().save(str(a.out))
    w.close()
    print(f"screenshot {'saved' if ok else 'FAILED'}: {a.out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
