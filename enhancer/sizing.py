"""The size of an output: the model's own, a final factor, a width, a height, or a box to fit in.

The chain of models always runs at its own scale; the result is then resized to the asked size with an antialiased
Lanczos filter (`resize_to`), so that "x2 with an x4 model" is the x4 result made smaller, never a network run at
another scale. The aspect ratio of the input is kept in every mode (sides are rounded to whole pixels, never below 1).

    size = OutputSize.from_text("w3840")         # the same text the CLI, the settings and the JSON summary use
    size.target(1600, 1200, model_scale=4)       # (3840, 2880)
    size.below_model(1600, 1200, model_scale=4)  # True: smaller than the model's 6400×4800
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

MODES = ("model", "scale", "width", "height", "fit")

_SCALE_TEXT = re.compile(r"^[x×]\s*(.+)$")
_WIDTH_TEXT = re.compile(r"^w\s*(\S+)$")
_HEIGHT_TEXT = re.compile(r"^h\s*(\S+)$")
_FORMS = "model, x2, x1.5, w3840, h2160 or fit3840x2160"
_FIT_TEXT = re.compile(r"^fit\s*(\S+?)\s*[x×]\s*(\S+)$")


def _round_side(value: float) -> int:
    """Half up (not Python's half-to-even), and never below one pixel."""
    return max(1, int(math.floor(value + 0.5)))


@dataclass(frozen=True)
class OutputSize:
    """What size the output gets. `mode`:

    - "model": the chain's own size (input × the product of the models' scales), the default;
    - "scale": `scale` times the input (any factor > 0; 2 with an x4 model is half the model's size);
    - "width" / "height": that many pixels wide / high, the other side following the aspect ratio;
    - "fit": as large as fits in `width` × `height`, aspect kept (one side equals the box's, the other is within it).

    Invalid combinations raise `ValueError` on construction, with a message meant for a user.
    """

    mode: str = "model"
    scale: float | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown output size mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.mode == "scale":
            if self.scale is None or isinstance(self.scale, bool):
                raise ValueError("an output size by scale needs a factor, e.g. 2 or 1.5")
            value = float(self.scale)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"the output scale must be a number greater than 0, got {self.scale!r}")
            object.__setattr__(self, "scale", value)
        if self.mode in ("width", "fit"):
            object.__setattr__(self, "width", _positive_side("width", self.width))
        if self.mode in ("height", "fit"):
            object.__setattr__(self, "height", _positive_side("height", self.height))

    # ---------------------------------------------------------------------------------------------- sizes

    def target(self, width: int, height: int, model_scale: float) -> tuple[int, int]:
        """The final (width, height) for an input of `width` × `height` through a chain of total factor
        `model_scale`."""
        if width < 1 or height < 1:
            raise ValueError(f"the input size must be at least 1×1, got {width}×{height}")
        if self.mode == "model":
            return _round_side(width * model_scale), _round_side(height * model_scale)
        if self.mode == "scale":
            return _round_side(width * self.scale), _round_side(height * self.scale)
        if self.mode == "width":
            return self.width, _round_side(height * self.width / width)
        if self.mode == "height":
            return _round_side(width * self.height / height), self.height
        factor = min(self.width / width, self.height / height)  # "fit"
        return min(self.width, _round_side(width * factor)), min(self.height, _round_side(height * factor))

    def below_model(self, width: int, height: int, model_scale: float) -> bool:
        """Whether the asked size is smaller than what the chain itself gives (the model's output is downscaled)."""
        asked = self.target(width, height, model_scale)
        natural = OutputSize().target(width, height, model_scale)
        return asked[0] < natural[0] or asked[1] < natural[1]

    def above_model(self, width: int, height: int, model_scale: float) -> bool:
        """Whether the asked size is larger than what the chain gives (the model's output is enlarged by the resize,
        which adds no detail)."""
        asked = self.target(width, height, model_scale)
        natural = OutputSize().target(width, height, model_scale)
        return asked[0] > natural[0] or asked[1] > natural[1]

    # ---------------------------------------------------------------------------------------------- text

    def to_text(self) -> str:
        """"model", "x2", "x1.5", "w3840", "h2160" or "fit3840x2160" (read back by `from_text`)."""
        if self.mode == "model":
            return "model"
        if self.mode == "scale":
            return f"x{_number_text(self.scale)}"
        if self.mode == "width":
            return f"w{self.width}"
        if self.mode == "height":
            return f"h{self.height}"
        return f"fit{self.width}x{self.height}"

    @classmethod
    def from_text(cls, text: str) -> "OutputSize":
        """The inverse of `to_text` (case and spaces do not matter; "×" is taken for "x"). `ValueError` says what is
        wrong with a text that is not one of those forms."""
        if not isinstance(text, str):
            raise ValueError(f"an output size must be text such as 'x2' or 'w3840', got {text!r}")
        raw = text
        text = text.strip().lower()
        if not text:
            raise ValueError(f"empty output size; use {_FORMS}")
        if text == "model":
            return cls()
        if match := _FIT_TEXT.match(text):
            return cls("fit", width=_side_from_text("width", match.group(1), raw),
                       height=_side_from_text("height", match.group(2), raw))
        if match := _SCALE_TEXT.match(text):
            return cls("scale", scale=_scale_from_text(match.group(1), raw))
        if match := _WIDTH_TEXT.match(text):
            return cls("width", width=_side_from_text("width", match.group(1), raw))
        if match := _HEIGHT_TEXT.match(text):
            return cls("height", height=_side_from_text("height", match.group(1), raw))
        raise ValueError(f"not an output size: {raw!r}; use {_FORMS}")

    def label(self) -> str:
        """For people: "model's size", "x2", "3840 px wide", "2160 px high" or "fit in 3840×2160"."""
        if self.mode == "model":
            return "model's size"
        if self.mode == "scale":
            return f"x{_number_text(self.scale)}"
        if self.mode == "width":
            return f"{self.width} px wide"
        if self.mode == "height":
            return f"{self.height} px high"
        return f"fit in {self.width}×{self.height}"


def _positive_side(name: str, value) -> int:
    if value is None or isinstance(value, bool):
        raise ValueError(f"this output size needs a {name} in pixels")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"the output {name} must be a whole number of pixels, got {value!r}")
    try:
        side = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"the output {name} must be a whole number of pixels, got {value!r}") from None
    if side < 1:
        raise ValueError(f"the output {name} must be at least 1 pixel, got {value!r}")
    return side


def _side_from_text(name: str, text: str, whole: str) -> int:
    if not text.isdigit():
        try:
            float(text)
        except ValueError:  # not a number at all: e.g. "hello" is no "h" + a height
            raise ValueError(f"not an output size: {whole!r}; use {_FORMS}") from None
        raise ValueError(f"not an output size: {whole!r}: the {name} must be a whole number of pixels, got {text!r}")
    if int(text) < 1:
        raise ValueError(f"not an output size: {whole!r}: the {name} must be at least 1 pixel")
    return int(text)


def _scale_from_text(text: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not an output size: {whole!r}: the scale must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"not an output size: {whole!r}: the scale must be greater than 0")
    return value


def _number_text(value: float) -> str:
    """2.0 -> "2", 1.5 -> "1.5"; exact (repr), so that the text reads back as the same float."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


# -------------------------------------------------------------------------------------------------- resizing


def resize_to(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`pixels` (a `Photo`'s float32 H×W×C in [0,1], C = 1, 3 or 4) resized to `size` = (width, height).

    Lanczos (3 lobes) with Pillow's antialiasing: when shrinking, the filter widens with the factor, so no aliasing,
    moiré or ringing from skipped pixels. Each channel is resized in 32-bit float ("F" images), so 16-bit photos
    keep their 16 bits and nothing is quantized here. Colour under alpha is resized premultiplied, so that the colour
    of fully transparent pixels does not bleed into the edges. The result is clipped to [0,1] (Lanczos overshoots a
    little at hard edges). The same size gives the pixels back unchanged.
    """
    width, height = (int(side) for side in size)
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width}×{height}: both sides must be at least 1 pixel")
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"pixels must be H×W×C with C = 1, 3 or 4, got shape {array.shape}")
    if (array.shape[1], array.shape[0]) == (width, height):
        return array
    from PIL import Image

    has_alpha = array.shape[2] == 4
    if has_alpha:
        alpha = array[:, :, 3:4]
        array = np.concatenate([array[:, :, :3] * alpha, alpha], axis=2)
    def resize_channel(c: int) -> np.ndarray:
        plane = Image.fromarray(np.ascontiguousarray(array[:, :, c]))
        return np.asarray(plane.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)

    # One thread per channel: Pillow lets go of the GIL while it resamples, so the channels run side by side.
    with ThreadPoolExecutor(max_workers=array.shape[2]) as pool:
        channels = list(pool.map(resize_channel, range(array.shape[2])))
    result = np.clip(np.stack(channels, axis=2), 0.0, 1.0)
    if has_alpha:
        alpha = result[:, :, 3:4]
        colour = np.divide(result[:, :, :3], alpha, out=np.zeros_like(result[:, :, :3]), where=alpha > 1e-6)
        result = np.concatenate([np.clip(colour, 0.0, 1.0), alpha], axis=2)
    return np.ascontiguousarray(result, dtype=np.float32)
