"""Shared test fixtures. ``../shared`` (real media and FOMM reference data) sits beside the repo."""
import os
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
