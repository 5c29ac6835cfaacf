"""Tiled inference. (Placeholder: a whole-image pass; the tiling issue replaces it.)"""

from __future__ import annotations

import numpy as np
import torch


def enhance(pixels, model, tile="auto", overlap=None, precision="auto", progress=None, cancel=None) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None].to(model.device)
    with torch.inference_mode():
        y = model.net(x)
    if progress:
        progress(1, 1)
    return y[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
