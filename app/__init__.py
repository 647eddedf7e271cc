"""Puppetcam's live desktop app (PySide6): views and the threads that move frames. No image math here."""
