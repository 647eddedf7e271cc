"""Widgets of the main window: avatar gallery, previews, stats graph, settings panel, message bar."""
