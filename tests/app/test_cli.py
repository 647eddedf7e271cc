"""The OBS-style command line: ``python -m app`` / ``puppetcam`` with flags, bad input, headless runs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from app.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]
AVATAR = REPO / "assets" / "avatars" / "astronaut.jpg"


def test_flags_parse():
    a = build_parser().parse_args(["--source", "x.jpg", "--camera", "demo", "--start-virtualcam",
                                   "--start-recording", "--record-to", "c.mp4", "--quit-after", "2.5",
                                   "--minimized"])
    assert (a.source, a.camera, a.start_virtualcam, a.start_recording, a.record_to, a.quit_after, a.minimized) == \
        ("x.jpg", "demo", True, True, "c.mp4", 2.5, True)


@pytest.mark.parametrize("args, message", [
    (["--source", "{media}/non-faces/cat.jpg"], "no face found in source image cat.jpg"),
    (["--source", "{tmp}/missing.png"], "source image not found"),
    (["--camera", "{tmp}/missing.mp4"], "driving video not found"),
    (["--record-to", "{tmp}/no/such/folder/clip.mp4"], "cannot write clip"),
])
def test_bad_input_exits_2_with_one_clear_line(args, message, media, tmp_path, capsys):
    args = [a.format(media=media, tmp=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def _env():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    return env


def _display_command(display: str, env: dict) -> list[str]:
    """How to start the app on ``display``: Qt's offscreen platform, or a real X server (Xvfb)."""
    if display == "offscreen":
        return []
    import shutil

    if shutil.which("xvfb-run") is None:
        msg = "xvfb-run is not installed (Debian package xvfb; .ci/run installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    env.pop("QT_QPA_PLATFORM", None)  # a real window on the xcb platform
    return ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"]


@pytest.mark.parametrize("display", ["offscreen", "xvfb"])
def test_headless_example_exits_0_with_a_playable_clip(media, tmp_path, display):
    """``python -m app --source ... --camera d9.mp4 --start-recording --record-to clip --quit-after N``."""
    clip = tmp_path / "clip.mp4"
    env = _env()
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # the run's settings stay out of the user's
    prefix = _display_command(display, env)
    proc = subprocess.run(prefix + [sys.executable, "-m", "app", "--source", str(AVATAR), "--camera",
                                    str(media / "driving" / "d9.mp4"), "--start-recording", "--record-to", str(clip),
                                    "--quit-after", "5"], cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    with av.open(str(clip)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height, float(v.average_rate)) == (1280, 720, 30.0)
        n = sum(1 for _ in c.decode(video=0))
    assert n >= 30  # seconds of real-time video (the engine starts in about a second)


def test_a_clip_stays_playable_when_the_app_is_killed_mid_recording(media, tmp_path):
    clip = tmp_path / "killed.mp4"
    env = _env()
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    proc = subprocess.Popen([sys.executable, "-m", "app", "--source", str(AVATAR), "--camera",
                             str(media / "driving" / "d9.mp4"), "--start-recording", "--record-to", str(clip),
                             "--quit-after", "60", "--minimized"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # wait for at least two complete one-second fragments on disk
        while time.monotonic() < deadline and (not clip.exists() or clip.stat().st_size < 250_000):
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert clip.stat().st_size >= 250_000, "the app never wrote the clip"
    with av.open(str(clip)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n >= 30
