"""The option vocabularies shared by the engine, the CLI and the app, so that every list of choices is the same one.

Plain tuples of strings, the first being the default; importing this module loads nothing else.
"""

from __future__ import annotations

# Output formats offered by the CLI and the app ("same" keeps the input's format where it can be written). The writer
# also takes bmp, heic and avif (see `enhancer.imageio.FORMAT_NAMES`).
OUTPUT_FORMATS = ("same", "png", "jpg", "webp", "tiff")
# Where the networks run ("auto": CUDA, else MPS, else the CPU). The engine also takes "cuda:N".
DEVICES = ("auto", "cpu", "cuda", "mps")
# The number format of the networks ("auto": what runs fastest and well on the device).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
