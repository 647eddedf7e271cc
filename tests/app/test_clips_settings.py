"""Clips folder naming and the settings mapping (no window needed)."""
from pathlib import Path

from app.clips import default_clips_dir, format_duration, new_clip_path
from app.settings import AppSettings, load_settings, save_settings, smoothing_filter
from app.threads import SourceSpec


def test_clips_go_to_the_videos_folder_and_never_overwrite(tmp_path):
    assert default_clips_dir().name == "Puppetcam"
    first = new_clip_path(tmp_path, now=0)
    first.write_bytes(b"x")
    second = new_clip_path(tmp_path, now=0)
    assert second != first and second.parent == tmp_path and second.suffix == ".mp4"
    assert format_duration(75) == "01:15" and format_duration(3725) == "1:02:05"


def test_smoothing_strength_maps_to_one_euro_settings():
    assert smoothing_filter(0) is None
    light, heavy = smoothing_filter(10), smoothing_filter(90)
    assert light.min_cutoff > heavy.min_cutoff > 0


def test_settings_round_trip_through_qsettings(tmp_path):
    from PySide6.QtCore import QSettings

    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    s = AppSettings(user_avatars=["/a.png", "/b.jpg"], mirror_input=True, output_width=640, output_height=480,
                    camera="file:/v.mp4", smoothing=0)
    save_settings(store, s)
    again = load_settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert again == s
    assert again.pipeline_settings().compositor.output_size == (640, 480) and again.pipeline_settings().smoothing is None
    for avatars in ([], ["/only.png"]):  # QSettings returns odd types for 0 or 1 list items
        s.user_avatars = avatars
        save_settings(store, s)
        assert load_settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)).user_avatars == avatars


def test_camera_flag_syntax():
    assert SourceSpec.parse("0") == SourceSpec("camera", "0")
    assert SourceSpec.parse("demo") == SourceSpec("demo")
    assert SourceSpec.parse("clips/x.mp4") == SourceSpec("file", "clips/x.mp4")
    assert SourceSpec.parse(str(SourceSpec("file", "/v.mp4"))) == SourceSpec("file", "/v.mp4")
    assert Path(SourceSpec("file", "/v/d9.mp4").label.split(": ")[1]).name == "d9.mp4"
