"""Audio sources: the real-time test tone, and the real microphone path on a machine without one."""
import threading
import time

import numpy as np
import pytest

from engine.audio import (AudioUnavailable, MicrophoneSource, ToneSource, capture_time,
                          list_input_devices)
from engine.errors import PuppetcamError


class Collector:
    def __init__(self):
        self.blocks, self.times, self.arrivals, self.threads = [], [], [], set()
        self.lock = threading.Lock()

    def __call__(self, block, t):
        with self.lock:
            self.blocks.append(block)
            self.times.append(t)
            self.arrivals.append(time.monotonic())
            self.threads.add(threading.current_thread().name)


def test_tone_delivers_blocks_in_real_time_with_capture_times():
    got = Collector()
    src = ToneSource(freq=440, samplerate=48000, channels=2, block=1024, callback=got)
    t_start = time.monotonic()
    src.start()
    time.sleep(0.6)
    src.stop()
    assert not src.running
    n = len(got.blocks)
    expected = 0.6 * 48000 / 1024  # ~28 blocks
    assert expected - 3 <= n <= expected + 1, n
    assert all(b.dtype == np.float32 and b.shape == (1024, 2) for b in got.blocks)
    assert "ToneSource" in got.threads and threading.current_thread().name not in got.threads
    # Capture times: the block's first sample, spaced exactly one block apart, never in the future.
    times = np.array(got.times)
    np.testing.assert_allclose(np.diff(times), 1024 / 48000, rtol=1e-9)
    assert t_start <= times[0] < t_start + 0.2
    arrivals = np.array(got.arrivals)
    assert (arrivals >= times + 1024 / 48000 - 1e-3).all()  # delivered once "captured"
    assert (arrivals - times).max() < 0.25  # ... and not much later (slack for a busy CI)


def test_tone_is_the_right_sine_and_continuous_across_blocks():
    got = Collector()
    with ToneSource(freq=1000, samplerate=16000, block=150, callback=got, amplitude=0.5):
        time.sleep(0.25)
    x = np.concatenate(got.blocks)[:, 0].astype(np.float64)
    assert len(x) >= 150 * 20  # 150 samples = 9.375 periods: a phase reset shows
    n = np.arange(len(x))
    np.testing.assert_allclose(x, 0.5 * np.sin(2 * np.pi * 1000 * n / 16000), atol=1e-6)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak_hz = np.argmax(spectrum) * 16000 / len(x)
    assert abs(peak_hz - 1000) < 16000 / len(x) + 1


def test_tone_stop_is_prompt_and_a_failing_callback_does_not_kill_it():
    calls = []

    def bad(block, t):
        calls.append(t)
        raise RuntimeError("consumer bug")

    src = ToneSource(samplerate=8000, block=80, callback=bad)
    src.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    src.stop()
    assert time.monotonic() - t0 < 0.2
    assert len(calls) >= 5 and src.callback_errors == len(calls)
    src.stop()  # twice is fine


def test_sources_need_a_callback():
    with pytest.raises(TypeError):
        ToneSource()
    with pytest.raises(TypeError):
        MicrophoneSource()


def test_capture_time_uses_the_adc_time_when_the_host_reports_it():
    # The first sample was captured 30 ms (stream clock) before this callback.
    assert capture_time(now=100.0, stream_now=5.030, adc_time=5.000, frames=480,
                        samplerate=48000) == pytest.approx(99.970)
    # No usable ADC time (0, as some host APIs report): the block ended just now.
    assert capture_time(now=100.0, stream_now=0.0, adc_time=0.0, frames=480,
                        samplerate=48000) == pytest.approx(99.990)
    assert capture_time(now=100.0, stream_now=5.0, adc_time=9.0, frames=480,
                        samplerate=48000) == pytest.approx(99.990)


def _portaudio_loads() -> bool:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        return False
    return True


def _has_input() -> bool:
    try:
        return bool(list_input_devices())
    except AudioUnavailable:
        return False


@pytest.mark.skipif(_has_input(), reason="this machine has an audio input")
def test_microphone_without_an_input_device_is_a_clear_error():
    got = Collector()
    mic = MicrophoneSource(callback=got)
    with pytest.raises(AudioUnavailable) as info:
        mic.start()
    msg = str(info.value)
    assert isinstance(info.value, PuppetcamError)
    if _portaudio_loads():
        assert msg.startswith("No audio input device: the default microphone cannot be found"), msg
        assert list_input_devices() == []
    else:
        assert "PortAudio library" in msg and "libportaudio2" in msg, msg
    assert "\n" not in msg
    assert not mic.running and not got.blocks
    mic.stop()  # stopping a source that never started is fine


@pytest.mark.skipif(_has_input(), reason="this machine has an audio input")
def test_named_microphone_that_does_not_exist_is_a_clear_error():
    with pytest.raises(AudioUnavailable, match="no-such-mic"):
        MicrophoneSource(device="no-such-mic", callback=Collector()).start()
