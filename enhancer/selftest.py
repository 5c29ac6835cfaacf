"""`--self-test`: prove that an installed (or frozen) app can really enhance a photo.

It loads the bundled default model, writes a small picture drawn in code to a temporary folder, enhances it through
the same path as the `enhancer` command, and checks the result: the size is the input's times the model's scale, the
picture is not blank, and it still looks like the input. It prints one result line and returns 0 or 1.

`ENHANCER_SELFTEST_MODEL` (a catalog id or a model file path) replaces the bundled default, for developers who build the
bundle before a default model exists.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import numpy as np

MODEL_OVERRIDE_ENV = "ENHANCER_SELFTEST_MODEL"

# Odd sizes on purpose: they exercise padding to the network's window grid.
TEST_WIDTH, TEST_HEIGHT = 52, 36

# A real enhancement of the test picture correlates strongly with a plain bicubic upscale of it; a blank, shifted,
# transposed or channel-swapped result does not.
MIN_CORRELATION = 0.9
MIN_STD = 0.02


class SelfTestFailure(Exception):
    """One failed check, with a message that says what went wrong and what to do."""


def make_test_picture(width: int = TEST_WIDTH, height: int = TEST_HEIGHT) -> np.ndarray:
    """A small RGB picture with gradients, a disk and stripes: edges, flat areas and every colour channel in use."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = x / (width - 1)
    green = y / (height - 1)
    blue = 0.5 + 0.4 * np.sin(x / 3.0) * (y < height / 2)
    disk = (x - width * 0.65) ** 2 + (y - height * 0.6) ** 2 < (min(width, height) * 0.25) ** 2
    picture = np.stack([red, green, blue], axis=-1)
    picture[disk] = (0.9, 0.85, 0.2)
    return np.clip(picture, 0.0, 1.0)


def resolve_model_ref() -> str:
    """The model the self-test runs: the override env var, else the catalog's bundled default."""
    override = os.environ.get(MODEL_OVERRIDE_ENV, "").strip()
    if override:
        return override
    try:
        from .paths import app_models_dir
        from .store import default_model_id, get_entry, installed_path
    except ImportError as exc:
        raise SelfTestFailure(f"the model catalog is missing from this build ({exc})") from None
    hint = f"Build with the default model in models/, or set {MODEL_OVERRIDE_ENV} to a model file or catalog id."
    try:
        model_id = default_model_id()
        entry = get_entry(model_id)
    except Exception as exc:  # the catalog's own error says what is wrong with it
        raise SelfTestFailure(f"no bundled default model: {str(exc).rstrip('.')}. {hint}") from None
    # default_model_id() falls back to any installed upscaler; the self-test is about the one shipped with the app.
    if not (entry.default and entry.is_bundled):
        raise SelfTestFailure(
            f"no bundled default model: {app_models_dir() / 'catalog.toml'} has no entry with `default = true` and "
            f"`bundled = FILE` (the fallback would be {model_id!r}). {hint}"
        )
    if installed_path(entry) is None:
        raise SelfTestFailure(f"the bundled default {entry.id}: file {entry.bundled} is missing from {app_models_dir()}")
    return entry.id


def _check_output(source: np.ndarray, output_path: Path, scale: int) -> str:
    from PIL import Image

    with Image.open(output_path) as image:
        image.load()
        size = image.size
        result = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        expected_size = (TEST_WIDTH * scale, TEST_HEIGHT * scale)
        if size != expected_size:
            expected = f"{expected_size[0]}x{expected_size[1]}"
            raise SelfTestFailure(f"{output_path.name}: size {size[0]}x{size[1]}, expected {expected}")
        source_image = Image.fromarray((source * 255.0 + 0.5).astype(np.uint8))
        reference_image = source_image.resize(size, Image.Resampling.BICUBIC)
    reference = np.asarray(reference_image, dtype=np.float32) / 255.0
    spread = float(result.std())
    if spread < MIN_STD or float(result.max() - result.min()) < 0.1:
        raise SelfTestFailure(f"{output_path.name}: the result is blank (standard deviation {spread:.4f})")
    correlation = float(np.corrcoef(result.ravel(), reference.ravel())[0, 1])
    if not correlation >= MIN_CORRELATION:
        raise SelfTestFailure(
            f"{output_path.name}: the result does not look like the input "
            f"(correlation {correlation:.3f} with a bicubic upscale, expected >= {MIN_CORRELATION})"
        )
    return f"{size[0]}x{size[1]}, correlation {correlation:.3f}"


def _enhance_through_cli(model_ref: str, source_path: Path, output_dir: Path, options: list[str]) -> tuple[Path, str]:
    """The output file and what ran the network ("torch", "openvino" or "onnxruntime")."""
    import contextlib
    import io
    import json

    from .cli import main as cli_main

    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        code = cli_main([str(source_path), "--model", model_ref, "--output-dir", str(output_dir), "--format", "png",
                         "--json", *options])
    if code != 0:
        raise SelfTestFailure(f"the enhancer command failed on the test picture (exit code {code})")
    try:
        backends = json.loads(summary.getvalue()).get("backends") or ["?"]
    except ValueError:
        backends = ["?"]
    outputs = sorted(p for p in output_dir.iterdir() if p.is_file())
    if len(outputs) != 1:
        names = ", ".join(p.name for p in outputs) or "nothing"
        raise SelfTestFailure(f"expected one output file in {output_dir}, found {names}")
    return outputs[0], "+".join(backends)


def _options(argv: list[str]) -> list[str]:
    """The --backend and --device of the command line, passed on to the test run (e.g. --backend onnxruntime
    --device dml on a Windows runner)."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--backend")
    parser.add_argument("--device")
    known, _rest = parser.parse_known_args(argv)
    return [item for flag in ("backend", "device") if getattr(known, flag) for item in (f"--{flag}", getattr(known, flag))]


def run_self_test(stream: TextIO | None = None, argv: list[str] | None = None) -> int:
    """Run the self-test; print one line starting with `self-test: OK` or `self-test: FAILED`; return 0 or 1.
    `argv` (default: the command line) may name the --backend and --device to test."""
    out = stream or sys.stdout
    options = _options(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    try:
        from PIL import Image

        from . import load_model

        model_ref = resolve_model_ref()
        try:
            model = load_model(model_ref)
        except Exception as exc:
            raise SelfTestFailure(f"cannot load model {model_ref!r}: {exc}") from None
        picture = make_test_picture()
        with tempfile.TemporaryDirectory(prefix="enhancer-selftest-") as tmp:
            source_path = Path(tmp) / "selftest.png"
            Image.fromarray((picture * 255.0 + 0.5).astype(np.uint8)).save(source_path)
            output_dir = Path(tmp) / "out"
            output_dir.mkdir()
            output_path, ran = _enhance_through_cli(model_ref, source_path, output_dir, options)
            details = _check_output(picture, output_path, model.scale)
    except SelfTestFailure as failure:
        print(f"self-test: FAILED: {failure}", file=out, flush=True)
        return 1
    except Exception as exc:  # anything unexpected in a frozen build (a missing module, a missing library) is a failure
        print(f"self-test: FAILED: {type(exc).__name__}: {exc}", file=out, flush=True)
        return 1
    seconds = time.perf_counter() - started
    print(
        f"self-test: OK: model {model.name} ({model.arch} x{model.scale}, {model.device.type}, through {ran}): "
        f"{TEST_WIDTH}x{TEST_HEIGHT} -> {details}, {seconds:.1f} s",
        file=out,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_self_test())
