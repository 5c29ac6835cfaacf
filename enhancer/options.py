"""The option vocabularies shared by the engine, the CLI and the app, so that every list of choices is the same one.

Plain tuples of strings, the first being the default; importing this module loads nothing else (only
`available_output_formats()`, when called, loads Pillow).
"""

from __future__ import annotations

# Every output format the CLI and the app know ("same" keeps the input's format where it can be written); what this
# installation can write is `available_output_formats()`. The writer also takes bmp (see `enhancer.imageio`).
OUTPUT_FORMATS = ("same", "png", "jpg", "webp", "tiff", "avif", "heic", "jxl")
# Where the networks run ("auto": CUDA, else MPS, else the CPU). The engine also takes "cuda:N". "dml" is any
# DirectML GPU on Windows (through ONNX Runtime), "intel-gpu" an Intel GPU (through OpenVINO).
DEVICES = ("auto", "cpu", "cuda", "mps", "dml", "intel-gpu")
# What runs the networks ("auto": torch on CUDA/MPS, else the faster of torch and OpenVINO on this CPU).
BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
# The number format of the networks ("auto": what runs fastest and well on the device).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def available_output_formats() -> tuple[str, ...]:
    """`OUTPUT_FORMATS` less those this installation cannot write (AVIF needs Pillow with libavif, HEIC pillow-heif
    with an HEVC encoder, JPEG XL pillow-jxl-plugin), "same" first. Loads Pillow and its plugins on first use."""
    from .imageio import writable_formats

    return ("same", *writable_formats())
