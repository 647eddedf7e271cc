"""VideoFileSource / probe_video on real driving videos: counts, fps, looping, pacing, damage."""
from __future__ import annotations

import time

import numpy as np
import pytest

from engine.capture import Frame, VideoFileSource, probe_video
from engine.errors import DrivingVideoError


def test_probe_real_videos(media):
    info = probe_video(media / "driving" / "d0.mp4")
    assert (info.fps, info.frame_count, info.width, info.height) == (25, 78, 512, 512)
    info = probe_video(media / "driving" / "d9.mp4")
    assert (info.fps, info.frame_count, info.width, info.height) == (30, 587, 512, 480)


def test_reads_every_frame_as_rgb(media):
    source = VideoFileSource(media / "driving" / "d0.mp4")
    frames = list(source)
    assert len(frames) == 78 and source.frames_read == 78 and not source.truncated
    assert all(isinstance(f, Frame) for f in frames)
    assert [f.index for f in frames] == list(range(78))
    assert frames[0].image.shape == (512, 512, 3) and frames[0].image.dtype == np.uint8
    assert all(b.t_capture >= a.t_capture for a, b in zip(frames, frames[1:]))
    # d0 is a green-screen clip: the corners are green, so channels come in RGB order.
    r, g, b = frames[0].image[:20, :20].reshape(-1, 3).mean(axis=0)
    assert g > r + 30 and g > b + 30


def test_max_frames_and_loop(media):
    assert len(list(VideoFileSource(media / "driving" / "d0.mp4", max_frames=10))) == 10
    looped = list(VideoFileSource(media / "driving" / "d0.mp4", loop=True, max_frames=100))
    assert len(looped) == 100 and [f.index for f in looped] == list(range(100))
    np.testing.assert_array_equal(looped[78].image, looped[0].image)  # it started over


def test_realtime_paces_at_the_file_fps(media):
    source = VideoFileSource(media / "driving" / "d0.mp4", realtime=True, max_frames=10)
    start = time.monotonic()
    frames = list(source)
    elapsed = time.monotonic() - start
    assert elapsed >= 9 / 25 - 0.01
    # One frame per 1/25 s from the very first: no burst while the decoder opens the file.
    gaps = np.diff([f.t_capture for f in frames])
    assert np.median(gaps) == pytest.approx(1 / 25, abs=0.01)
    assert gaps.min() > 0.5 / 25


def test_a_file_read_at_full_speed_is_stamped_on_its_own_clock(media):
    """render and bench read as fast as they decode: the stamps follow the video (1/25 s apart for
    d0), however long each frame took, also across a loop."""
    stamps = []
    for frame in VideoFileSource(media / "driving" / "d0.mp4", loop=True, max_frames=90):
        stamps.append(frame.t_capture)
        if frame.index % 10 == 0:
            time.sleep(0.05)  # a slow frame
    np.testing.assert_allclose(np.diff(stamps), 1 / 25, atol=1e-9)


def test_truncated_file_yields_what_is_readable(media, tmp_path):
    """d20.mp4 has its index (moov) first: cut in half, its first half still decodes."""
    data = (media / "driving" / "d20.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    source = VideoFileSource(cut)
    assert source.info.frame_count == 175  # the index still promises every frame
    frames = list(source)
    assert 40 < len(frames) < 175
    assert source.truncated
    full = list(VideoFileSource(media / "driving" / "d20.mp4", max_frames=len(frames)))
    np.testing.assert_array_equal(frames[-1].image, full[-1].image)  # what was read is intact


def test_truncated_file_without_its_index_is_a_clear_error(media, tmp_path):
    """d0.mp4 keeps its index (moov) at the end: cut, nothing can be decoded."""
    data = (media / "driving" / "d0.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DrivingVideoError, match="cannot read driving video cut.mp4"):
        VideoFileSource(cut)


def test_missing_and_non_video_files(media, tmp_path):
    with pytest.raises(DrivingVideoError, match="driving video not found"):
        VideoFileSource(tmp_path / "nope.mp4")
    # A still image is a one-frame video to FFmpeg: readable, not an error.
    assert len(list(VideoFileSource(media / "non-faces" / "cat.jpg"))) == 1
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(DrivingVideoError, match="cannot read driving video junk.mp4"):
        VideoFileSource(junk)
