"""Where recorded clips go: the user's Videos folder (platformdirs), subfolder ``Puppetcam``."""
from __future__ import annotations

import time
from pathlib import Path

APP_NAME = "Puppetcam"


def default_clips_dir() -> Path:
    from platformdirs import user_videos_dir

    return Path(user_videos_dir()) / APP_NAME


def new_clip_path(folder: Path, now: float | None = None) -> Path:
    """``Puppetcam 2024-05-01 12-30-05.mp4`` in ``folder``, never overwriting an existing clip."""
    stamp = time.strftime("%Y-%m-%d %H-%M-%S", time.localtime(now))
    path = Path(folder) / f"{APP_NAME} {stamp}.mp4"
    n = 2
    while path.exists():
        path = Path(folder) / f"{APP_NAME} {stamp} ({n}).mp4"
        n += 1
    return path


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
