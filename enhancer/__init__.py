"""The photo enhancer engine: networks, checkpoints, tiled inference and image I/O. Never imports Qt."""

from .errors import Cancelled, DeviceError, DownloadError, EnhancerError, ImageError, ModelError
from .checkpoints import Model, load_model
from .tiling import enhance

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "DeviceError",
    "DownloadError",
    "EnhancerError",
    "ImageError",
    "Model",
    "ModelError",
    "enhance",
    "load_model",
]
