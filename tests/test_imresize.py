"""Our MATLAB-style bicubic must reproduce the benchmark LR images, which MATLAB's imresize made."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATA, need_shared
from enhancer.training.imresize import cubic_kernel, imresize, imresize_uint8, modcrop, resize_matrix


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_set5_matlab_lr_images(scale):
    set5 = need_shared(DATA / "benchmarks" / "Set5")
    equal = total = 0
    worst = 0
    for hr_path in sorted((set5 / "HR").glob("*.png")):
        lr_path = set5 / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png"
        hr = np.asarray(Image.open(hr_path).convert("RGB"))
        reference = np.asarray(Image.open(lr_path).convert("RGB")).astype(np.int16)
        ours = imresize_uint8(modcrop(hr, scale), 1 / scale).astype(np.int16)
        assert ours.shape == reference.shape, hr_path.name
        diff = np.abs(ours - reference)
        equal += int((diff == 0).sum())
        total += diff.size
        worst = max(worst, int(diff.max()))
    share = equal / total
    print(f"Set5 x{scale}: {100 * share:.3f}% of pixels equal, worst difference {worst}")
    assert share >= 0.99
    assert worst <= 1


def test_kernel_is_matlab_cubic():
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_allclose(cubic_kernel(x), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0])


def test_rows_of_the_resize_matrix_sum_to_one_and_mirror_at_edges():
    matrix = resize_matrix(10, 3, 1 / 3)
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(3))
    # Shrinking by 3 stretches the kernel to 12 taps, so the first row reaches past the edge and is mirrored back.
    assert (matrix[0] != 0).sum() > 4


def test_constant_image_stays_constant_and_sizes_follow_matlab():
    image = torch.full((3, 17, 23), 0.25, dtype=torch.float64)
    out = imresize(image, scale=1 / 4)
    assert out.shape == (3, 5, 6)  # ceil(17/4), ceil(23/4)
    torch.testing.assert_close(out, torch.full_like(out, 0.25))
    up = imresize(image, scale=2)
    assert up.shape == (3, 34, 46)
    torch.testing.assert_close(up, torch.full_like(up, 0.25))


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="float"):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), scale=0.5)
    with pytest.raises(ValueError, match="scale"):
        imresize(torch.zeros(4, 4))
