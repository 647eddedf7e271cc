"""The user's choices, persisted between runs with QSettings (one typed dataclass, one load/save)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from PySide6.QtCore import QSettings

from engine.compositing import CompositorSettings
from engine.filters import OneEuroSettings
from engine.motion import MotionSettings
from engine.pipeline import PipelineSettings

ORGANIZATION = "Puppetcam"
APPLICATION = "Puppetcam"


@dataclass
class AppSettings:
    avatar: str = ""  # path of the selected avatar
    user_avatars: list[str] = field(default_factory=list)
    camera: str = ""  # SourceSpec text: "camera:0", "file:/path", "demo"; "" = first camera, else demo
    relative: bool = True
    adapt_scale: bool = True
    smoothing: int = 50  # 0 = raw landmarks ... 100 = strongest
    mirror_input: bool = False
    mirror_output: bool = False
    passthrough: bool = False
    engine: str = "mesh"
    device: str = "cpu"
    fomm_checkpoint: str = ""
    fomm_config: str = ""
    output_width: int = 1280
    output_height: int = 720
    output_fps: int = 30
    record_audio: bool = False
    clips_dir: str = ""  # "" = the platform's Videos/Puppetcam
    show_landmarks: bool = True
    show_overlay: bool = False
    auto_calibrate: bool = True

    def pipeline_settings(self) -> PipelineSettings:
        return PipelineSettings(
            motion=MotionSettings(relative=self.relative, adapt_scale=self.adapt_scale),
            smoothing=smoothing_filter(self.smoothing),
            mirror_input=self.mirror_input,
            compositor=CompositorSettings(output_size=(self.output_width, self.output_height),
                                          mirror=self.mirror_output),
        )


def smoothing_filter(strength: int) -> OneEuroSettings | None:
    """Slider 0..100 -> One-Euro settings: 0 is off; more strength = lower cutoff at rest."""
    s = max(0, min(100, int(strength))) / 100.0
    if s <= 0:
        return None
    # min_cutoff from 8 Hz (light) down to 0.3 Hz (heavy); beta keeps fast motion responsive.
    min_cutoff = 8.0 * (0.3 / 8.0) ** s
    return OneEuroSettings(min_cutoff=round(min_cutoff, 3), beta=0.5)


def _convert(value, default):
    if isinstance(default, bool):
        if isinstance(value, str):
            return value.lower() in ("true", "1", "yes")
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, list):
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return str(value)


def load_settings(store: QSettings) -> AppSettings:
    settings = AppSettings()
    for f in fields(AppSettings):
        if not store.contains(f.name):
            continue
        try:
            setattr(settings, f.name, _convert(store.value(f.name), getattr(settings, f.name)))
        except (TypeError, ValueError):
            pass  # a damaged entry falls back to the default
    return settings


def save_settings(store: QSettings, settings: AppSettings) -> None:
    for f in fields(AppSettings):
        store.setValue(f.name, getattr(settings, f.name))
    store.sync()


def default_store() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)
