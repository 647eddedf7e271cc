"""Errors a user can act on. Their message is shown as is (one line, no traceback)."""


class PuppetcamError(Exception):
    """Base class: bad input or a missing resource, explained in one line for the user."""


class SourceImageError(PuppetcamError):
    """The portrait cannot be used (unreadable, no face, ...)."""


class DrivingVideoError(PuppetcamError):
    """The driving video or camera cannot be read."""


class OutputError(PuppetcamError):
    """The output (clip, folder, virtual camera) cannot be written."""


class CheckpointError(PuppetcamError):
    """A model checkpoint or config is missing, unsafe or of the wrong shape."""


class VirtualCameraUnavailable(OutputError):
    """No virtual camera device/backend exists on this machine."""
