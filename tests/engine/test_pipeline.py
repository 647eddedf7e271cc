"""The whole per-frame path on real media: tracker -> motion -> mesh animator -> compositor."""
import threading

import numpy as np
import pytest

from engine.animators import create_animator
from engine.capture import Frame, VideoFileSource
from engine.compositing import CompositorSettings
from engine.motion import MotionSettings
from engine.pipeline import STAGES, Pipeline, PipelineSettings
from engine.portrait import load_portrait
from tests.conftest import record_spans


@pytest.fixture(scope="module")
def frames(media):
    return list(VideoFileSource(media / "driving" / "d0.mp4", max_frames=30))


@pytest.fixture(scope="module")
def portraits(media):
    return [load_portrait(media / "sources" / name) for name in ("s42.jpg", "s9.jpg")]


def make_pipeline(portrait, **settings):
    return Pipeline(create_animator("mesh"), portrait, PipelineSettings(**settings))


def test_first_frame_calibrates_and_reproduces_the_portrait(frames, portraits):
    pipe = make_pipeline(portraits[0])
    result = pipe.process(frames[0])
    assert result.calibrated_now and not result.held
    assert set(result.timings_ms) == set(STAGES)
    # At the reference pose the relative motion is zero: the portrait comes back as it was.
    diff = np.abs(result.animated.astype(int) - portraits[0].image.astype(int))
    assert np.percentile(diff, 99) <= 2
    later = pipe.process(frames[20])
    assert not later.calibrated_now
    assert np.abs(later.animated.astype(int) - portraits[0].image.astype(int)).mean() > 0.5


def test_frame_without_face_holds_the_last_pose(frames, portraits):
    pipe = make_pipeline(portraits[0])
    for f in frames[:10]:
        last = pipe.process(f)
    blank = Frame(image=np.zeros_like(frames[0].image), t_capture=frames[10].t_capture, index=10)
    held = pipe.process(blank)
    assert held.held and pipe.frames_without_face == 1
    np.testing.assert_array_equal(held.animated, last.animated)


def test_calibrate_makes_the_next_frame_the_reference(frames, portraits):
    pipe = make_pipeline(portraits[0], smoothing=None)
    for f in frames[:20]:
        moved = pipe.process(f)
    pipe.calibrate()
    recalibrated = pipe.process(frames[20])
    assert recalibrated.calibrated_now
    rest = np.abs(recalibrated.animated.astype(int) - portraits[0].image.astype(int)).mean()
    assert rest < np.abs(moved.animated.astype(int) - portraits[0].image.astype(int)).mean()


def test_switching_portrait_changes_the_output_and_size(frames, portraits):
    pipe = make_pipeline(portraits[0], compositor=CompositorSettings(output_size=(1280, 720)))
    first = pipe.process(frames[0])
    pipe.set_portrait(portraits[1])
    second = pipe.process(frames[1])
    assert first.output.shape == second.output.shape == (720, 1280, 3)
    assert second.animated.shape == (720, 405, 3)  # s9 (720x1280) animated at the size it fills
    assert not np.array_equal(first.output, second.output)


def test_live_output_animates_a_big_portrait_at_the_size_it_fills(frames, media):
    big = load_portrait(media / "sources" / "s2.jpg")  # 2048x2048
    pipe = make_pipeline(big, compositor=CompositorSettings(output_size=(1280, 720)))
    result = pipe.process(frames[0])
    assert result.animated.shape == (720, 720, 3)
    assert result.output.shape == (720, 1280, 3)
    # landmarks moved with the image: the face box scales by 720/2048
    np.testing.assert_allclose(np.array(pipe.portrait.landmarks.bbox()),
                               np.array(big.landmarks.bbox()) * 720 / 2048, atol=0.5)
    pipe.update_settings(PipelineSettings(compositor=CompositorSettings(output_size=None)))
    assert pipe.process(frames[1]).animated.shape == (2048, 2048, 3)


def test_calibrating_refits_the_absolute_alignment_to_a_new_driver(frames, portraits, media):
    """Absolute mode maps the driver's face onto the portrait by a similarity fitted once per
    driver: after calibrate() a different person (another video) is fitted afresh."""
    pipe = make_pipeline(portraits[0], smoothing=None, motion=MotionSettings(relative=False))
    other = list(VideoFileSource(media / "driving" / "d9.mp4", max_frames=1))[0]
    pipe.process(frames[0])
    stale = pipe.process(other).animated
    pipe.calibrate()
    fresh = pipe.process(other).animated
    rest = portraits[0].image.astype(int)
    # fitted on this very face, absolute mode reproduces the portrait nearly unchanged
    assert np.abs(fresh.astype(int) - rest).mean() < 0.5 * np.abs(stale.astype(int) - rest).mean()


def test_the_same_video_renders_the_same_however_fast_the_machine_is(media, portraits):
    """The driving landmarks are smoothed over time; a file read faster than real time must be
    smoothed on its own clock, or the clip would depend on the machine's speed (and on chance)."""
    import time

    def render(slow: bool):
        pipeline = make_pipeline(portraits[0])
        out = []
        for frame in VideoFileSource(media / "driving" / "d11.mp4", max_frames=24):
            out.append(pipeline.process(frame).animated)
            if slow and frame.index % 3 == 0:
                time.sleep(0.06)
        return out

    for fast, slow in zip(render(False), render(True)):
        np.testing.assert_array_equal(fast, slow)


def test_run_tracks_the_next_frame_while_animating_and_gives_what_process_gives(frames, portraits):
    """``run`` (render, bench) overlaps the two steps on two threads; the results must be the ones
    one frame at a time gives, in order: a frame without a face included."""
    stream = frames[:12] + [Frame(np.zeros_like(frames[0].image), frames[12].t_capture, 12)] + frames[13:20]
    one_pipe = make_pipeline(portraits[0])
    one_at_a_time = [one_pipe.process(f) for f in stream]
    pipe = make_pipeline(portraits[0])
    spans: list = []
    record_spans(pipe, "track", spans)
    record_spans(pipe, "animate", spans)
    overlapped = list(pipe.run(stream))
    assert [r.frame_index for r in overlapped] == [f.index for f in stream]
    assert [r.held for r in overlapped] == [r.held for r in one_at_a_time] == [False] * 12 + [True] + [False] * 7
    for a, b in zip(overlapped, one_at_a_time):
        np.testing.assert_array_equal(a.output, b.output)
    tracks = [s for s in spans if s[0] == "track"]
    animates = [s for s in spans if s[0] == "animate"]
    assert len(tracks) == len(animates) == len(stream)
    assert {s[1] for s in tracks}.isdisjoint({s[1] for s in animates})  # two threads
    # frame n+1 is tracked while frame n is animated: their spans overlap
    overlaps = sum(t[2] < a[3] and a[2] < t[3] for t, a in zip(tracks[1:], animates[:-1]))
    assert overlaps >= len(stream) // 2, overlaps


def test_run_passes_on_a_read_error_and_stops_when_its_reader_stops(frames, portraits):
    def broken():
        yield from frames[:3]
        raise OSError("the disk went away")

    pipe = make_pipeline(portraits[0])
    got = []
    with pytest.raises(OSError, match="disk went away"):
        for result in pipe.run(broken()):
            got.append(result.frame_index)
    assert got == [0, 1, 2]  # every frame read before the error came out

    read = []

    def counted():
        for f in frames:
            read.append(f.index)
            yield f

    results = pipe.run(counted())
    assert [next(results).frame_index for _ in range(3)] == [0, 1, 2]
    results.close()  # the reader stops: the helper finishes the one frame it was reading, then ends
    assert read == [0, 1, 2, 3]
    assert not [t for t in threading.enumerate() if t.name.startswith("puppetcam-track")]
