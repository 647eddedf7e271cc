"""Work-arounds for bugs in the libraries under the app.

PySide6 6.12.0 on Python 3.11 loses a reference to ``None`` on (almost) every call of a void Qt
method and one to ``True`` per signal emission (measured: drawImage, setText, QPainter calls each
-1 on ``sys.getrefcount(None)``). At 30 fps the live window drops ~550 references to ``None`` a
second, and the interpreter aborts ("Fatal Python error: none_dealloc / bool_dealloc") after a
minute or at exit. Python 3.12 made these singletons immortal, so the bug is harmless there, and
PySide6 <= 6.11 does not have it. The proper fix is the dependency pin
``PySide6-Essentials<6.12; python_version < "3.12"``; until then, on exactly that combination, the
singletons are given the immortality Python 3.12 gives them.
"""
from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("puppetcam.app")

_done = False
# a reference count no program reaches by leaking one per call (2**40 calls ~ 60 years at 550/s)
_IMMORTAL = 1 << 40


def pyside_leaks_singletons() -> bool:
    if sys.version_info >= (3, 12):
        return False
    try:
        import PySide6
    except ImportError:
        return False
    return PySide6.__version__.startswith("6.12.")


def guard_singleton_refcounts() -> bool:
    """Make None/True/False effectively immortal when the PySide6 bug above is present."""
    global _done
    if _done or not pyside_leaks_singletons() or sys.implementation.name != "cpython":
        return _done
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _IMMORTAL
    _done = True
    import PySide6

    log.info("PySide6 %s on Python %d.%d loses references to None/True: guarded (install "
             "PySide6-Essentials<6.12 to avoid it)", PySide6.__version__, *sys.version_info[:2])
    return True
