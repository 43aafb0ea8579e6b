"""Anyres tiling, unpadding, view pooling and the MLP projector."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.models.families._vision_parts import (
    MLPProjector,
    pool_views,
    pooled_side,
    resize_and_pad,
    select_best_resolution,
    tile_image,
    unpad_bounds,
)

PINPOINTS = [(384, 768), (768, 384), (768, 768), (1152, 384), (384, 1152)]


def test_best_resolution_keeps_most_pixels_then_wastes_least():
    assert select_best_resolution((1000, 500), PINPOINTS) == (768, 384)
    # every canvas keeps all 90k pixels of a small square; the first of the least wasteful wins
    assert select_best_resolution((300, 300), PINPOINTS) == (384, 768)
    assert select_best_resolution((100, 100), [(200, 100), (100, 200), (100, 100)]) == (100, 100)
    with pytest.raises(ValueError):
        select_best_resolution((10, 10), [])


def test_resize_and_pad_centres_on_black():
    image = Image.new("RGB", (200, 100), (255, 255, 255))
    out = resize_and_pad(image, (400, 400))
    assert out.size == (400, 400)
    assert out.getpixel((200, 10)) == (0, 0, 0) and out.getpixel((200, 200)) == (255, 255, 255)


def test_tile_image_puts_the_squashed_base_first():
    image = Image.new("RGB", (1000, 500), (10, 20, 30))
    tiled = tile_image(image, 384, PINPOINTS)
    assert (tiled.rows, tiled.cols, tiled.size) == (1, 2, (1000, 500))
    assert [v.size for v in tiled.views] == [(384, 384)] * 3
    assert tiled.views[0].getpixel((0, 0)) == (10, 20, 30)  # resized, not padded


@pytest.mark.parametrize(
    ("grid", "size", "bounds"),
    [((28, 28), (800, 400), (7, 21, 0, 28)), ((28, 28), (400, 800), (0, 28, 7, 21)), ((14, 28), (1000, 500), (0, 14, 0, 28))],
)
def test_unpad_bounds(grid, size, bounds):
    assert unpad_bounds(*grid, size) == bounds


def test_bilinear_pooling_27_to_14_per_view():
    features = torch.randn(3, 729, 8)
    pooled = pool_views(features, 2, "bilinear")
    assert pooled.shape == (3, 196, 8) and pooled_side(27, 2, "bilinear") == 14
    reference = F.interpolate(features.view(3, 27, 27, 8).permute(0, 3, 1, 2), size=(14, 14), mode="bilinear")
    torch.testing.assert_close(pooled, reference.permute(0, 2, 3, 1).reshape(3, 196, 8))


def test_average_pooling_and_bad_input():
    assert pool_views(torch.randn(1, 16, 4), 2, "average").shape == (1, 4, 4)
    with pytest.raises(ValueError, match="square"):
        pool_views(torch.randn(1, 15, 4), 2, "bilinear")
    with pytest.raises(ValueError, match="pooling mode"):
        pool_views(torch.randn(1, 16, 4), 2, "max")


def test_projector_shapes_and_names():
    projector = MLPProjector(12, 20)
    assert projector(torch.randn(2, 5, 12)).shape == (2, 5, 20)
    assert sorted(projector.state_dict()) == ["linear_1.bias", "linear_1.weight", "linear_2.bias", "linear_2.weight"]
