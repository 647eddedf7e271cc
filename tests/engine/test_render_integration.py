"""`puppetcam render` on real shared media with the real mesh engine, decoded again and measured.

The output clip is decoded with PyAV and tracked with MediaPipe: its eye and mouth openness must
follow the driver's over driver segments that contain blinks (d9) and a mouth opening (d0), and
the demo driver's own blinks and talking must reach the output too.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine import cli
from engine.capture import VideoFileSource
from engine.demo_driver import DemoDriver
from engine.metrics import amplitude_ratio, correlation, eye_aspect_ratio, mouth_aspect_ratio
from engine.tracking import FaceLandmarks, FaceTracker


def decode(path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        fps = float(stream.average_rate)
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], fps


def openness(images) -> tuple[np.ndarray, np.ndarray]:
    """Eye and mouth aspect ratio per image (NaN where no face is found), raw tracking."""
    eyes, mouths = [], []
    with FaceTracker(still=False) as tracker:
        for image in images:
            face = tracker.track(image)
            ok = isinstance(face, FaceLandmarks)
            eyes.append(eye_aspect_ratio(face.points) if ok else np.nan)
            mouths.append(mouth_aspect_ratio(face.points) if ok else np.nan)
    return np.array(eyes), np.array(mouths)


def render(capsys, source, driving, out: Path, frames: int) -> str:
    rc = cli.main(["render", "--source", str(source), "--driving", str(driving), "-o", str(out),
                   "--max-frames", str(frames), "--engine", "mesh", "--quiet"])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    return stdout


def test_mona_lisa_follows_a_mouth_opening(media, tmp_path, capsys):
    """s9 x d0, 40 frames: the man's mouth opens at frame ~18 and stays open."""
    out = tmp_path / "s9-d0.mp4"
    summary = render(capsys, media / "sources" / "s9.jpg", media / "driving" / "d0.mp4", out, 40)
    assert summary.startswith("rendered 40 frames, 720x1280 at 25 fps")
    frames, fps = decode(out)
    assert len(frames) == 40 and fps == pytest.approx(25)
    assert frames[0].shape == (1280, 720, 3)  # the portrait's own resolution
    driver = [f.image for f in VideoFileSource(media / "driving" / "d0.mp4", max_frames=40)]
    _, drv_mouth = openness(driver)
    _, out_mouth = openness(frames)
    assert np.isfinite(out_mouth).all()  # a face in every output frame
    assert np.nanmax(drv_mouth) > 0.15  # the segment really has a mouth opening
    assert correlation(out_mouth, drv_mouth) > 0.85
    assert 0.5 < amplitude_ratio(out_mouth, drv_mouth) < 2.0


def test_mona_lisa_follows_blinks(media, tmp_path, capsys):
    """s9 x d9, 48 frames: two blinks (frames ~12-16 and ~36-46)."""
    out = tmp_path / "s9-d9.mp4"
    render(capsys, media / "sources" / "s9.jpg", media / "driving" / "d9.mp4", out, 48)
    frames, fps = decode(out)
    assert len(frames) == 48 and fps == pytest.approx(30)
    driver = [f.image for f in VideoFileSource(media / "driving" / "d9.mp4", max_frames=48)]
    drv_eye, _ = openness(driver)
    out_eye, _ = openness(frames)
    assert np.isfinite(out_eye).all()
    assert np.nanmin(drv_eye) < 0.6 * np.nanmax(drv_eye)  # the segment really has blinks
    assert correlation(out_eye, drv_eye) > 0.8
    assert np.nanmin(out_eye) < 0.75 * np.nanmax(out_eye)  # the portrait's eyes close too


def test_demo_driver_blinks_and_talks_through_the_portrait(media, tmp_path, capsys):
    """The built-in driver animates a bundled avatar: its blinks and mouth reach the output."""
    avatar = Path(__file__).resolve().parents[2] / "assets" / "avatars" / "mona-lisa.jpg"
    out = tmp_path / "demo.mp4"
    summary = render(capsys, avatar, "demo", out, 75)
    assert summary.startswith("rendered 75 frames, 576x1024 at 30 fps")
    frames, fps = decode(out)
    assert len(frames) == 75 and fps == pytest.approx(30)
    demo = list(DemoDriver(fps=30, n_frames=75, draw=False))
    demo_eye = np.array([eye_aspect_ratio(f.landmarks.points) for f in demo])
    demo_mouth = np.array([mouth_aspect_ratio(f.landmarks.points) for f in demo])
    out_eye, out_mouth = openness(frames)
    assert np.isfinite(out_eye).all()
    assert demo_eye.min() < 0.3 * demo_eye.max() and demo_mouth.max() > 0.15  # blinks and talks
    assert correlation(out_eye, demo_eye) > 0.75
    assert correlation(out_mouth, demo_mouth) > 0.8
