"""Recording from the live window: the clip decodes again with the expected size, fps, duration and
(when on) a synchronised audio track; shutdown joins every thread and finalizes the clip."""
from __future__ import annotations

import av
import numpy as np
from PySide6.QtCore import Qt

from app.threads import SourceSpec, live_threads
from tests.app.conftest import FakeVirtualCamera, add_probe, wait_frames, wait_ready


def _probe_clip(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"width": v.codec_context.width, "height": v.codec_context.height,
                "fps": float(v.average_rate), "codec": v.codec_context.name}
        frames = [f for f in c.decode(video=0)]
        info["frames"] = len(frames)
        info["video_duration"] = float(frames[-1].pts * v.time_base) + 1 / info["fps"]
    audio = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            chunks = [f.to_ndarray() for f in c.decode(audio=0)]
            samples = np.concatenate(chunks, axis=1)[0]
            audio = {"rate": a.codec_context.sample_rate, "samples": samples,
                     "duration": samples.size / a.codec_context.sample_rate}
    return info, audio


def _record(qtbot, w, min_frames: int):
    qtbot.keyClick(w, Qt.Key.Key_R)
    assert w.record_action.isChecked() and w.recording is not None
    rec = w.recording
    qtbot.waitUntil(lambda: rec.recorder.frames_written >= min_frames, timeout=30000)
    w._update_stats()
    assert "REC" in w.record_timer_label.text()
    qtbot.keyClick(w, Qt.Key.Key_R)
    assert not w.record_action.isChecked() and w.recording is None
    return rec


def test_recorded_clip_decodes_with_expected_size_fps_and_duration(qtbot, make_window, media, tmp_path):
    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    rec = _record(qtbot, w, 45)
    clip = w.last_clip
    assert clip.parent == tmp_path / "clips" and clip.suffix == ".mp4"  # the clips folder
    assert "Saved" in w.messages.text("recording") and w.messages.action("recording", "Open folder")
    info, audio = _probe_clip(clip)
    assert (info["codec"], info["width"], info["height"], info["fps"]) == ("h264", 1280, 720, 30.0)
    assert audio is None
    # the clip lasts as long as the frames the recorder placed on its timeline
    assert info["frames"] == rec.recorder.frames_written
    assert abs(info["video_duration"] - rec.recorder.duration) < 0.05
    # and the timeline is real time: frames are placed by capture time, most slots are filled
    assert info["frames"] >= 0.6 * rec.recorder.duration * 30
    assert rec.recorder.duration >= 45 / 30


def test_recording_with_audio_has_a_synchronised_track_from_the_test_signal(qtbot, make_window, media, store):
    from engine.audio import ToneSource

    store.setValue("record_audio", True)
    w = make_window(audio_factory=lambda callback: ToneSource(440.0, 48000, 1, block=1024, callback=callback))
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    rec = _record(qtbot, w, 45)
    assert rec.has_audio
    info, audio = _probe_clip(w.last_clip)
    assert audio is not None and audio["rate"] == 48000
    assert abs(audio["duration"] - info["video_duration"]) < 0.1  # audio and video cover the same time
    x = audio["samples"][4800:]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    peak = np.fft.rfftfreq(x.size, 1 / 48000)[spectrum.argmax()]
    assert abs(peak - 440) < 5 and 0.1 < np.sqrt((x ** 2).mean()) < 0.3  # the tone, at its level


def test_microphone_missing_records_without_sound_and_says_so(qtbot, make_window, media, store):
    from engine.audio import AudioUnavailable

    class NoMic:
        samplerate = 48000

        def __init__(self, callback):
            pass

        def start(self):
            raise AudioUnavailable("No audio input device: the default microphone cannot be found")

    store.setValue("record_audio", True)
    w = make_window(audio_factory=NoMic)
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    rec = _record(qtbot, w, 10)
    assert not rec.has_audio
    assert "without sound" in w.messages.text("audio").lower()
    info, audio = _probe_clip(w.last_clip)
    assert audio is None and info["frames"] == rec.recorder.frames_written


def test_closing_joins_every_thread_and_finalizes_the_clip(qtbot, make_window, media, tmp_path):
    w = make_window(vcam_factory=FakeVirtualCamera)
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w)
    probe = add_probe(w)
    assert w.set_virtual_camera(True)
    assert w.set_recording(True, tmp_path / "on-close.mp4")
    # 12 frames out: the clip is constant frame rate, its length the span of their capture stamps,
    # which a camera's timing jitter can shorten by a frame
    wait_frames(qtbot, w, 12, probe)
    rec = w.recording
    threads = live_threads()
    names = {t.name for t in threads}
    assert {"puppetcam-capture", "puppetcam-worker", "puppetcam-sink-probe", "puppetcam-sink-virtualcam",
            "puppetcam-sink-recorder"} <= names
    w.close()
    assert not any(t.is_alive() for t in threads)
    assert not live_threads()
    assert FakeVirtualCamera.instances[-1].closed
    info, _ = _probe_clip(tmp_path / "on-close.mp4")
    assert info["frames"] == rec.recorder.frames_written >= 10  # every frame written is in the finalized clip
    assert (info["width"], info["height"]) == (1280, 720)
