"""Bad input through the real command line, each made from real files: clear errors, no crashes."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine import cli
from engine.capture import VideoFileSource

REPO = Path(__file__).resolve().parents[2]


def run(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def decode(path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], fps


def assert_one_line_error(rc, err, *needles):
    assert rc == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def portrait_bgr(media):
    """A real portrait (the Mona Lisa) at 360x640: quick to animate."""
    image = cv2.imread(str(media / "sources" / "s9.jpg"))
    return cv2.resize(image, (360, 640), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def portrait_png(portrait_bgr, tmp_path_factory):
    path = tmp_path_factory.mktemp("portraits") / "mona.png"
    cv2.imwrite(str(path), portrait_bgr)
    return path


def test_source_without_a_face_exits_2_with_one_line(media, tmp_path):
    """The real program in a subprocess: one line on stderr, nothing from the native libraries."""
    out = tmp_path / "out.mp4"
    result = subprocess.run([sys.executable, "-m", "engine", "render", "--source",
                             str(media / "non-faces" / "cat.jpg"), "--driving", "demo", "-o", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "puppetcam render: error: no face found in source image cat.jpg"
    assert result.stdout == ""
    assert not out.exists()


def test_unreadable_and_truncated_images_exit_2(media, tmp_path, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture\n")
    rc, _, err = run(capsys, "render", "--source", text, "--driving", "demo", "-o", tmp_path / "a.mp4")
    assert_one_line_error(rc, err, "cannot read source image notes.jpg")
    data = (media / "sources" / "s9.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    rc, _, err = run(capsys, "render", "--source", cut, "--driving", "demo", "-o", tmp_path / "b.mp4")
    assert_one_line_error(rc, err, "cannot read source image cut.jpg")
    rc, _, err = run(capsys, "render", "--source", tmp_path / "missing.png", "--driving", "demo",
                     "-o", tmp_path / "c.mp4")
    assert_one_line_error(rc, err, "source image not found")


def _render_first_frame(capsys, source, out) -> np.ndarray:
    rc, stdout, err = run(capsys, "render", "--source", source, "--driving", "demo", "--max-frames", "3",
                          "-o", out, "--quiet")
    assert rc == 0, err
    assert "rendered 3 frames" in stdout
    frames, _ = decode(out)
    assert len(frames) == 3
    return frames[0]


def test_grayscale_rgba_and_16bit_portraits_render(portrait_bgr, portrait_png, tmp_path, capsys):
    reference = _render_first_frame(capsys, portrait_png, tmp_path / "ref.mp4")
    assert reference.shape == (640, 360, 3)

    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(portrait_bgr, cv2.COLOR_BGR2GRAY))
    frame = _render_first_frame(capsys, gray, tmp_path / "gray.mp4")
    assert frame.shape == reference.shape
    spread = np.abs(frame.astype(int) - frame.mean(axis=2, keepdims=True)).mean()
    assert spread < 3  # grey in, grey out

    rgba = tmp_path / "rgba.png"
    alpha = np.full(portrait_bgr.shape[:2], 255, np.uint8)
    alpha[:, :40] = 0  # a transparent strip on the left: composited on white
    cv2.imwrite(str(rgba), np.dstack([portrait_bgr, alpha]))
    frame = _render_first_frame(capsys, rgba, tmp_path / "rgba.mp4")
    assert frame.shape == reference.shape
    assert frame[100:500, 5:30].mean() > 235
    assert np.abs(frame[:, 60:].astype(int) - reference[:, 60:].astype(int)).mean() < 3

    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), portrait_bgr.astype(np.uint16) * 257)
    assert cv2.imread(str(deep), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    frame = _render_first_frame(capsys, deep, tmp_path / "deep.mp4")
    assert np.abs(frame.astype(int) - reference.astype(int)).mean() < 2  # same picture as 8-bit


def test_huge_image_renders_within_bounded_memory(portrait_bgr, tmp_path):
    """10000x10000 (300 MB as RGB): read, capped to 2048 px, animated; peak RSS stays bounded."""
    big = tmp_path / "huge.jpg"
    scaled = cv2.resize(portrait_bgr, (5625, 10000), interpolation=cv2.INTER_LINEAR)
    canvas = cv2.copyMakeBorder(scaled, 0, 0, 2187, 2188, cv2.BORDER_REPLICATE)
    del scaled
    assert canvas.shape[:2] == (10000, 10000)
    cv2.imwrite(str(big), canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])
    del canvas
    out = tmp_path / "huge.mp4"
    script = textwrap.dedent(f"""
        import json, sys
        from engine.bench import peak_rss_mb
        from engine.cli import main
        rc = main(["render", "--source", {str(big)!r}, "--driving", "demo", "--max-frames", "3",
                   "-o", {str(out)!r}, "--quiet"])
        print(json.dumps({{"rc": rc, "rss_mb": peak_rss_mb()}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                            timeout=180)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0, result.stderr
    assert report["rss_mb"] < 900, report  # the JPEG is decoded at 1/4 size, never at 300 MB
    frames, _ = decode(out)
    assert len(frames) == 3 and frames[0].shape == (2048, 2048, 3)


def _no_face_driving_video(media, path: Path) -> int:
    """Real frames of d0 with 10 cat frames in the middle (as if the face left the picture)."""
    real = [f.image for f in VideoFileSource(media / "driving" / "d0.mp4", max_frames=30)]
    cat = cv2.cvtColor(cv2.resize(cv2.imread(str(media / "non-faces" / "cat.jpg")), (512, 512)),
                       cv2.COLOR_BGR2RGB)
    frames = real[:15] + [cat] * 10 + real[15:30]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 512, 512, "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return len(frames)


def test_driving_frames_without_a_face_hold_the_last_pose(media, portrait_png, tmp_path, capsys):
    driving = tmp_path / "with-cat.mp4"
    total = _no_face_driving_video(media, driving)
    out = tmp_path / "out.mp4"
    rc, stdout, err = run(capsys, "render", "--source", portrait_png, "--driving", driving, "-o", out,
                          "--quiet")
    assert rc == 0, err
    held = int(stdout.split("frames without a face held: ")[1].split(";")[0].split()[0])
    assert 9 <= held <= 11  # the 10 cat frames (tracking may take a frame to drop or regain)
    frames, fps = decode(out)
    assert len(frames) == total and fps == pytest.approx(25)
    # Held frames repeat the last pose: they match the frame before the cat, while the face moved
    # elsewhere in the clip.
    held_diff = max(np.abs(frames[i].astype(int) - frames[14].astype(int)).mean() for i in range(16, 24))
    moving = max(np.abs(frames[i].astype(int) - frames[0].astype(int)).mean() for i in range(25, total))
    assert held_diff < 0.3
    assert moving > 2 * held_diff


def test_truncated_video_renders_what_is_readable(media, portrait_png, tmp_path, capsys):
    data = (media / "driving" / "d20.mp4").read_bytes()
    cut = tmp_path / "d20-cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    rc, stdout, err = run(capsys, "render", "--source", portrait_png, "--driving", cut, "-o", out, "--quiet")
    assert rc == 0, err
    assert "truncated input: d20-cut.mp4" in stdout
    rendered = int(stdout.split("rendered ")[1].split()[0])
    assert 40 < rendered < 175
    frames, fps = decode(out)
    assert len(frames) == rendered and fps == pytest.approx(25)

    # Cut before its index (moov at the end of d0.mp4): nothing readable, a clear error.
    data = (media / "driving" / "d0.mp4").read_bytes()
    cut0 = tmp_path / "d0-cut.mp4"
    cut0.write_bytes(data[: len(data) // 2])
    rc, _, err = run(capsys, "render", "--source", portrait_png, "--driving", cut0, "-o", tmp_path / "x.mp4")
    assert_one_line_error(rc, err, "cannot read driving video d0-cut.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_unwritable_output_fails_before_any_work(media, portrait_png, tmp_path, capsys, monkeypatch):
    import engine.capture
    import engine.portrait

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr(engine.portrait, "load_portrait", no_work)
    monkeypatch.setattr(engine.capture, "VideoFileSource", no_work)
    target = tmp_path / "no" / "such" / "dir" / "out.mp4"
    rc, _, err = run(capsys, "render", "--source", portrait_png, "--driving", media / "driving" / "d0.mp4",
                     "-o", target)
    assert_one_line_error(rc, err, f"cannot write clip to {target}", "No such file or directory")
    rc, _, err = run(capsys, "render", "--source", portrait_png, "--driving", "demo", "-o", tmp_path)
    assert_one_line_error(rc, err, "is a directory")


def test_dog_does_not_crash(media, tmp_path, capsys):
    """MediaPipe reports a 'face' on the dog: odd landmarks must still render."""
    out = tmp_path / "dog.mp4"
    rc, stdout, err = run(capsys, "render", "--source", media / "non-faces" / "dog.jpg",
                          "--driving", media / "driving" / "d0.mp4", "--max-frames", "8", "-o", out, "--quiet")
    assert rc == 0, err
    frames, _ = decode(out)
    assert len(frames) == 8


@pytest.mark.parametrize("driver", ["demo", "d9.mp4"])  # d9: MediaPipe is tracking the next frame when it fills
def test_disk_full_during_render_exits_2_and_keeps_a_playable_clip(portrait_png, tiny_disk, capsys, media, driver):
    out = tiny_disk(96) / "clip.mp4"
    driving = driver if driver == "demo" else media / "driving" / driver
    rc, stdout, err = run(capsys, "render", "--source", portrait_png, "--driving", driving, "-o", out, "--quiet")
    assert_one_line_error(rc, err, f"disk full while recording {out}", "playable")
    assert stdout == ""
    frames, fps = decode(out)
    assert 30 <= len(frames) < 300 and fps == pytest.approx(30)
