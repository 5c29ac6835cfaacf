"""ESPCN: "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural
Network" (Shi et al., CVPR 2016), in the layout of PyTorch's `super_resolution` example.

All convolutions run at the low resolution; the last one makes r² channels per output channel, and the efficient
sub-pixel convolution layer (PixelShuffle) rearranges them into an image r times larger.
"""

from __future__ import annotations

import torch
from torch import nn


class ESPCN(nn.Module):
    def __init__(self, upscale_factor: int = 3, in_channels: int = 1) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor
        self.in_channels = in_channels
        self.relu = nn.ReLU()
        # Feature extraction: a 5×5 layer, then two 3×3 layers.
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(64, 32, kernel_size=3, padding=1)
        # Sub-pixel convolution: C·r² feature maps, shuffled into C channels at r times the size.
        self.conv4 = nn.Conv2d(32, in_channels * upscale_factor**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))
