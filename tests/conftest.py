"""Shared test fixtures. ``../shared`` (real media and FOMM reference data) sits beside the repo."""
import os
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    msg = f"missing shared test data: {path} (expected ../shared beside the repository)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def media(shared) -> Path:
    return _require(shared / "media")


@pytest.fixture(scope="session")
def fomm_fixtures(shared) -> Path:
    return _require(shared / "fixtures" / "fomm")


@pytest.fixture
def tiny_disk(tmp_path):
    """``tiny_disk(size_kb)`` -> a folder on a tmpfs of that size: a disk that fills up for real.
    Mounting needs root (as in CI); elsewhere the test is skipped with the reason."""
    import subprocess

    mounts = []

    def make(size_kb: int) -> Path:
        mount_point = tmp_path / f"tiny{len(mounts)}"
        mount_point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount_point)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): {result.stderr.strip()}")
        mounts.append(mount_point)
        return mount_point

    yield make
    for mount_point in mounts:
        subprocess.run(["umount", str(mount_point)], check=False)


def record_spans(pipeline, step: str, spans: list) -> None:
    """Record when and on which thread ``pipeline.<step>`` runs, as (step, thread name, start, end);
    the step still does its real work."""
    real = getattr(pipeline, step)

    def recorded(item):
        t0 = time.perf_counter()
        try:
            return real(item)
        finally:
            spans.append((step, threading.current_thread().name, t0, time.perf_counter()))

    setattr(pipeline, step, recorded)
