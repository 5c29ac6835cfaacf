"""SwinIR inference on a CPU: `network.SwinIR` with its attention biases kept between calls.

The network gathers every block's relative-position bias from its table and builds the shift mask of the border
windows for the input's size on every call (as the official code rebuilds its mask, on the CPU, in every block for
every new size). `SwinIRFastCPU` wraps a plain `SwinIR` (its parameters, no copy) and hands it the biases from a
cache instead: gathered again only when a table changes (load, training step) or moves, and the masks kept for the
last `CACHE_SIZES` input sizes (tiles come in a handful of sizes). The numbers are the same, bit for bit. With
autograd enabled or inside torch.compile tracing it runs the plain network.
"""

from __future__ import annotations

import torch
from torch import nn

from ..onednn import compiling
from .network import SwinIR, SwinTransformerBlock, border_shift_mask

# How many input sizes keep their cached masks per block.
CACHE_SIZES = 4


class SwinIRFastCPU(nn.Module):
    """`net(x)` for CPU inference, with cached attention biases. Holds `net` itself, not a copy."""

    def __init__(self, net: SwinIR):
        super().__init__()
        self.net = net
        self._position: dict[int, tuple[tuple, torch.Tensor]] = {}  # id(block) -> (table key, bias)
        self._border: dict[int, dict[tuple, tuple[torch.Tensor, torch.Tensor]]] = {}  # id(block) -> size -> bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or compiling():
            return self.net(x)  # autograd or graph capture: the plain network builds its own biases
        return self.net(x, self._biases)

    def _biases(
        self, block: SwinTransformerBlock, height: int, width: int, batch: int, device: torch.device,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        bias = self._position_bias(block, device, dtype)
        if not block.shift_size:
            return bias, None
        cache = self._border.setdefault(id(block), {})
        key = (height, width, batch, device, dtype)
        cached = cache.get(key)
        if cached is not None and cached[0] is bias:
            return bias, cached[1]
        mask = border_shift_mask(height, width, block.window_size, block.shift_size).to(device=device, dtype=dtype)
        border = (bias + mask[:, None]).repeat(batch, 1, 1, 1)
        if len(cache) >= CACHE_SIZES:
            cache.pop(next(iter(cache)))
        cache[key] = (bias, border)
        return bias, border

    def _position_bias(self, block: SwinTransformerBlock, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        table = block.attn.relative_position_bias_table
        # Inference tensors (made under torch.inference_mode) have no version counter; their storage identifies them.
        version = 0 if table.is_inference() else table._version
        key = (device, dtype, version, table.data_ptr())
        cached = self._position.get(id(block))
        if cached is not None and cached[0] == key:
            return cached[1]
        bias = block.attn.position_bias(device, dtype)
        self._position[id(block)] = (key, bias)
        return bias
