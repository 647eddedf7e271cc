"""ClipRecorder: real frames in, decoded again with PyAV; kills, unwritable paths and full disks."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest

from engine.capture import VideoFileSource
from engine.errors import OutputError
from engine.sinks import recorder as recorder_module
from engine.sinks.recorder import ClipRecorder, ensure_writable, even_size

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def d0_frames(media):
    """The first 50 frames of a real driving video (512x512, 25 fps)."""
    return [f.image for f in VideoFileSource(media / "driving" / "d0.mp4", max_frames=50)]


def decode(path):
    """(video frames as RGB arrays, video stream info, audio samples (n, channels) or None)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        info = dict(width=vs.codec_context.width, height=vs.codec_context.height,
                    fps=float(vs.average_rate), codec=vs.codec_context.name,
                    has_audio=bool(c.streams.audio))
        frames, pts = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            pts.append(float(f.pts * f.time_base))
        info["pts"] = pts
    audio = None
    if info["has_audio"]:
        with av.open(str(path)) as c:
            info["audio_rate"] = c.streams.audio[0].rate
            blocks = [f.to_ndarray() for f in c.decode(audio=0)]  # fltp: (channels, n)
        audio = np.concatenate(blocks, axis=1).T
    return frames, info, audio


def sine(seconds, rate=48000, freq=440.0, amp=0.4):
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, None]


def dominant_frequency(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))]


def test_real_frames_and_audio_decode_with_size_fps_duration(tmp_path, d0_frames):
    path = tmp_path / "clip.mp4"
    frames = d0_frames[:40]
    rate = 48000
    audio = sine(40 / 25, rate)
    with ClipRecorder(path, 512, 512, fps=25, audio_rate=rate) as rec:
        for i, image in enumerate(frames):
            rec.write(image)
            rec.write_audio(audio[i * 1920:(i + 1) * 1920])  # one video frame's worth per block
    decoded, info, samples = decode(path)
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) == (512, 512)
    assert info["fps"] == pytest.approx(25, abs=0.01)
    assert len(decoded) == 40
    assert info["pts"][-1] == pytest.approx(39 / 25, abs=1e-3)
    # The pictures are the frames that went in (H.264 at crf 20: small differences only).
    assert np.abs(decoded[20].astype(int) - frames[20].astype(int)).mean() < 4
    assert info["has_audio"] and info["audio_rate"] == rate
    assert len(samples) / rate == pytest.approx(40 / 25, abs=0.025)  # AAC pads its last block
    assert dominant_frequency(samples[4096:-4096, 0], rate) == pytest.approx(440, abs=5)
    assert 0.2 < np.abs(samples[4096:-4096, 0]).max() < 0.6
    # Sample-accurate: the decoded tone lies on the written one (no priming offset, no clicks).
    n = len(audio)
    assert np.abs(samples[2048:n - 2048, 0] - audio[2048:n - 2048, 0]).max() < 0.05


def test_timestamps_keep_audio_and_video_in_sync_when_frames_drop(tmp_path, d0_frames):
    """Frames carry capture times: dropped frames leave a gap, late audio lands where it belongs."""
    path = tmp_path / "sync.mp4"
    t0, rate = 1000.0, 16000
    with ClipRecorder(path, 512, 512, fps=25, audio_rate=rate, start_time=t0) as rec:
        for i, image in enumerate(d0_frames[:50]):
            if 10 <= i < 20:
                continue  # the app dropped these frames
            rec.write(image, t=t0 + i / 25)
        tone = sine(1.0, rate)
        for k in range(0, len(tone), 800):  # audio starts 0.5 s into the clip
            rec.write_audio(tone[k:k + 800], t=t0 + 0.5 + k / rate)
    decoded, info, samples = decode(path)
    assert len(decoded) == 40
    assert info["pts"][9] == pytest.approx(9 / 25, abs=1e-3)
    assert info["pts"][10] == pytest.approx(20 / 25, abs=1e-3)  # the gap is kept, not squeezed
    # Silence before 0.5 s, the tone after it, on the video's clock (audio decodes from 0 s).
    level = np.abs(samples[:, 0])
    assert level[: int(0.40 * rate)].max() < 0.02
    assert level[int(0.62 * rate): int(1.4 * rate)].min() < 0.45 and level[int(0.62 * rate): int(1.4 * rate)].max() > 0.3
    onset = int(np.argmax(level > 0.2)) / rate
    assert onset == pytest.approx(0.5, abs=0.005)


def test_odd_sizes_become_even(tmp_path, d0_frames):
    assert even_size(511, 509) == (510, 508)
    path = tmp_path / "odd.mp4"
    with ClipRecorder(path, 511, 509, fps=30) as rec:
        for image in d0_frames[:5]:
            rec.write(np.ascontiguousarray(image[:509, :511]))
        rec.write(d0_frames[5][:256, :256])  # another size is fitted in, not refused
    decoded, info, _ = decode(path)
    assert (info["width"], info["height"]) == (510, 508)
    assert len(decoded) == 6 and not info["has_audio"]


def test_clip_killed_mid_write_still_decodes(tmp_path, media):
    """A process killed (os._exit: no close, no flush) leaves every complete 1-s fragment playable."""
    path = tmp_path / "killed.mp4"
    script = textwrap.dedent(f"""
        import os, numpy as np
        from engine.capture import VideoFileSource
        from engine.sinks.recorder import ClipRecorder
        rec = ClipRecorder({str(path)!r}, 512, 512, fps=25, audio_rate=16000)
        for f in VideoFileSource({str(media / "driving" / "d0.mp4")!r}, max_frames=70):
            rec.write(f.image)
            rec.write_audio(np.full((640, 1), 0.1, np.float32))
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
    decoded, info, samples = decode(path)
    assert 50 <= len(decoded) < 70  # two whole GOPs of 25 made it; the unfinished one did not
    assert (info["width"], info["height"]) == (512, 512)
    assert info["has_audio"] and len(samples) > 16000


def test_unwritable_path_raises_output_error(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "clip.mp4"
    with pytest.raises(OutputError, match=r"cannot write clip to .*clip\.mp4: No such file or directory"):
        ClipRecorder(missing, 64, 64)
    with pytest.raises(OutputError, match="is a directory"):
        ensure_writable(tmp_path)
    with pytest.raises(OutputError, match="No such file"):
        ensure_writable(missing)
    ensure_writable(tmp_path / "fine.mp4")
    assert not (tmp_path / "fine.mp4").exists()  # the check leaves nothing behind


def test_write_after_close_and_double_close(tmp_path, d0_frames):
    rec = ClipRecorder(tmp_path / "c.mp4", 512, 512, fps=25)
    rec.write(d0_frames[0])
    rec.close()
    rec.close()
    with pytest.raises(OutputError, match="already closed"):
        rec.write(d0_frames[1])
    with pytest.raises(ValueError, match="RGB uint8"):
        ClipRecorder(tmp_path / "d.mp4", 64, 64).write(np.zeros((64, 64), np.uint8))


def _record_until_full(path, frames, max_frames=400):
    rec = ClipRecorder(path, 512, 512, fps=25, audio_rate=16000)
    with pytest.raises(OutputError) as info:
        for i in range(max_frames):
            rec.write(frames[i % len(frames)])
            rec.write_audio(np.full((640, 1), 0.1, np.float32))
        rec.close()
    rec.close()  # after the error: no second exception
    return rec, str(info.value)


def test_disk_full_on_a_tiny_tmpfs(tiny_disk, d0_frames):
    path = tiny_disk(200) / "clip.mp4"
    rec, message = _record_until_full(path, d0_frames)
    assert message.startswith(f"disk full while recording {path}")
    assert "playable" in message
    decoded, info, _ = decode(path)
    assert len(decoded) >= 25  # at least the first whole fragment
    assert len(decoded) < rec.frames_written
    with av.open(str(path)) as c:  # every packet left in the file decodes without error
        for packet in c.demux():
            packet.decode()


def test_disk_full_reported_by_the_file_layer(tmp_path, d0_frames, monkeypatch):
    """Same check without a mount: the OS's ENOSPC is raised by the write after 120 kB."""
    real_write = recorder_module._TrackedFile.write

    def write(self, data):
        self.budget = getattr(self, "budget", 120_000) - len(data)
        if self.budget < 0:
            self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise self.error
        return real_write(self, data)

    monkeypatch.setattr(recorder_module._TrackedFile, "write", write)
    path = tmp_path / "clip.mp4"
    rec, message = _record_until_full(path, d0_frames)
    assert "disk full" in message and "stopped after" in message
    assert 0 < path.stat().st_size <= 120_000
    decoded, info, _ = decode(path)
    assert 25 <= len(decoded) < rec.frames_written
    with pytest.raises(OutputError, match="disk full"):
        rec.write(d0_frames[0])  # the recorder stays failed, with the same message


def test_video_and_audio_from_two_threads(tmp_path, d0_frames):
    """The app's shape: a video sink thread and an audio callback thread share one recorder."""
    import threading

    path = tmp_path / "threads.mp4"
    rate, t0 = 16000, 500.0
    rec = ClipRecorder(path, 512, 512, fps=25, audio_rate=rate, start_time=t0)
    tone = sine(2.0, rate, amp=0.3)

    def audio():
        for k in range(0, len(tone), 320):
            rec.write_audio(tone[k:k + 320], t=t0 + k / rate)

    thread = threading.Thread(target=audio)
    thread.start()
    for i, image in enumerate(d0_frames):
        rec.write(image, t=t0 + i / 25)
    thread.join()
    rec.close()
    decoded, info, samples = decode(path)
    assert len(decoded) == 50 and info["pts"][-1] == pytest.approx(49 / 25, abs=1e-3)
    assert len(samples) / rate == pytest.approx(2.0, abs=0.07)
    n = len(tone)
    assert np.abs(samples[1024:n - 1024, 0] - tone[1024:n - 1024, 0]).max() < 0.05
