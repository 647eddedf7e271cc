"""Sinks: where output frames go (clip recorder here; preview and virtual camera live in the app)."""
from engine.sinks.recorder import ClipRecorder, ensure_writable, even_size

__all__ = ["ClipRecorder", "ensure_writable", "even_size"]
