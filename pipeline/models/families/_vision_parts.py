"""Small vision-side building blocks shared by the LLaVA-style families.

* :class:`MLPProjector`: the two-layer GELU connector (LLaVA's `mlp2x_gelu`, Dream-VL's
  projector) from vision features to the language model's width.
* LLaVA-NeXT "anyres" tiling: pick a grid of views for an image, cut it, and later crop the
  padding back out of the feature grid (`unpad_bounds`).
* :func:`pool_views`: 2x2 down-sampling of each view's square feature map.

The arithmetic follows the published LLaVA-NeXT / LaViDa preprocessing exactly (integer
truncation included) because the number of image tokens must match what the checkpoint was
trained with; the code is our own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn


class MLPProjector(nn.Module):
    """Linear -> GELU -> Linear, from vision width to language-model width."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, out_features)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(out_features, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        return self.linear_2(self.act(self.linear_1(features)))


# -- anyres tiling --------------------------------------------------------------------------
@dataclass(frozen=True)
class TiledImage:
    """An image cut for anyres: the whole image squashed to one view, then the grid views."""

    views: list[Image.Image]  # base view first, then the grid row by row
    rows: int
    cols: int
    size: tuple[int, int]  # the original (width, height); the unpadding needs it


def select_best_resolution(size: tuple[int, int], candidates: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The (width, height) canvas that keeps most of the image's pixels, then wastes least."""
    width, height = size
    best, best_effective, best_waste = None, -1, math.inf
    for cand_w, cand_h in candidates:
        scale = min(cand_w / width, cand_h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = cand_w * cand_h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (cand_w, cand_h), effective, waste
    if best is None:
        raise ValueError("anyres needs at least one candidate resolution")
    return best


def resize_and_pad(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Fit the image into `target` keeping its aspect ratio, centred on black."""
    width, height = image.size
    target_w, target_h = target
    scale_w, scale_h = target_w / width, target_h / height
    if scale_w < scale_h:
        new_w, new_h = target_w, min(math.ceil(height * scale_w), target_h)
    else:
        new_w, new_h = min(math.ceil(width * scale_h), target_w), target_h
    canvas = Image.new("RGB", (target_w, target_h), (0, 0, 0))
    canvas.paste(image.resize((new_w, new_h), Image.Resampling.BICUBIC), ((target_w - new_w) // 2, (target_h - new_h) // 2))
    return canvas


def tile_image(image: Image.Image, view: int, candidates: Sequence[tuple[int, int]]) -> TiledImage:
    """Base view (the image squashed to view x view) plus the views of the best grid."""
    best_w, best_h = select_best_resolution(image.size, candidates)
    canvas = resize_and_pad(image, (best_w, best_h))
    rows, cols = best_h // view, best_w // view
    grid = [canvas.crop((c * view, r * view, (c + 1) * view, (r + 1) * view)) for r in range(rows) for c in range(cols)]
    # The published code resizes (not pads) the base view, squashing the aspect ratio.
    base = image.resize((view, view), Image.Resampling.BICUBIC)
    return TiledImage(views=[base, *grid], rows=rows, cols=cols, size=image.size)


def unpad_bounds(grid_h: int, grid_w: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the feature grid that shows image rather than padding."""
    orig_w, orig_h = size
    if orig_w / orig_h > grid_w / grid_h:  # padding was added above and below
        new_h = int(orig_h * (grid_w / orig_w))
        pad = (grid_h - new_h) // 2
        return pad, grid_h - pad, 0, grid_w
    new_w = int(orig_w * (grid_h / orig_h))
    pad = (grid_w - new_w) // 2
    return 0, grid_h, pad, grid_w - pad


def anyres_token_count(pooled_side: int, rows: int, cols: int, size: tuple[int, int]) -> int:
    """Tokens an anyres image becomes: the base view, then the unpadded grid with one
    newline token closing each row."""
    top, bottom, left, right = unpad_bounds(rows * pooled_side, cols * pooled_side, size)
    height, width = max(bottom - top, 0), max(right - left, 0)
    return pooled_side * pooled_side + height * (width + 1)


def pool_views(features: torch.Tensor, stride: int, mode: str) -> torch.Tensor:
    """(V, side*side, D) -> (V, ceil(side/stride)^2, D): down-sample each square view."""
    views, tokens, dim = features.shape
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"expected a square grid of patches per view, got {tokens} tokens")
    grid = features.view(views, side, side, dim).permute(0, 3, 1, 2)  # (V, D, side, side)
    if mode == "bilinear":
        out_side = math.ceil(side / stride)
        grid = F.interpolate(grid, size=(out_side, out_side), mode="bilinear", align_corners=False)
    elif mode == "average":
        grid = F.avg_pool2d(grid, stride)
    else:
        raise ValueError(f"unknown pooling mode {mode!r}; use 'bilinear' or 'average'")
    return grid.permute(0, 2, 3, 1).reshape(views, -1, dim)


def pooled_side(side: int, stride: int, mode: str) -> int:
    """Side of a view's feature map after :func:`pool_views`."""
    return math.ceil(side / stride) if mode == "bilinear" else side // stride
