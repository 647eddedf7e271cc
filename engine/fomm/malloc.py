"""Process-wide glibc malloc tuning for the FOMM runtime (Linux/glibc only; a no-op elsewhere).

Each FOMM frame allocates and frees tensors of several MB (up to ~17 MB at 256x256). With glibc's
defaults, freed memory at the top of the heap is given back to the kernel (trim) and the largest
blocks are mmap'ed afresh, so the next frame page-faults the same memory in again. Keeping freed
memory (no trim) and serving blocks up to 32 MiB (glibc's maximum) from the heap removes that cost.
The price is that the process keeps its peak heap size (a few hundred MB for vox-256).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
TRIM_NEVER = 2**31 - 1  # mallopt takes an int; ~2 GiB of free heap top is kept before trimming

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the tuning once per process; True when it is in effect (glibc found and accepted it)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only (musl has no mallopt tuning of this kind)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
    ok = (mallopt(M_TRIM_THRESHOLD, TRIM_NEVER) == 1) and ok
    _applied = ok
    if not ok:
        log.debug("glibc mallopt tuning was refused")
    return ok
