"""The option vocabularies shared by the engine, the CLI and the app, so that every list of choices is the same one.

Plain tuples of strings, the first being the default; importing this module loads nothing else.
"""

from __future__ import annotations

# Output formats offered by the CLI and the app ("same" keeps the input's format where it can be written). The writer
# also takes bmp, heic and avif (see `enhancer.imageio.FORMAT_NAMES`).
OUTPUT_FORMATS = ("same", "png", "jpg", "webp", "tiff")
# Where the networks run ("auto": CUDA, else MPS, else the CPU). The engine also takes "cuda:N". "dml" is any
# DirectML GPU on Windows (through ONNX Runtime), "intel-gpu" an Intel GPU (through OpenVINO).
DEVICES = ("auto", "cpu", "cuda", "mps", "dml", "intel-gpu")
# What runs the networks ("auto": torch on CUDA/MPS, else the faster of torch and OpenVINO on this CPU).
BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
# The number format of the networks ("auto": what runs fastest and well on the device).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
