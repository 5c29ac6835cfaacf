"""Exceptions of the engine. Every message is meant to be shown to a user as it is."""


class EnhancerError(Exception):
    """Base class of every error the engine raises on purpose."""


class ModelError(EnhancerError):
    """A model file or catalog id could not be loaded or used."""


class ImageError(EnhancerError):
    """An image file could not be read or written."""


class DownloadError(ModelError):
    """A model download failed or did not verify."""


class DeviceError(EnhancerError):
    """A requested device or precision is not available."""


class Cancelled(EnhancerError):
    """The job was cancelled by the user between tiles."""
