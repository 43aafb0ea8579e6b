"""Attention masks per kernel for the bidirectional Dream decoders."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.lm_attention import FLASH, decoder_masks, pick_implementation

MASK = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])


def test_sdpa_masks_are_4d_and_hide_padding():
    masks = decoder_masks(MASK, "bidirectional", "sdpa", torch.float32, ["full_attention"] * 2)
    mask = masks["full_attention"]
    assert set(masks) == {"full_attention"} and mask.shape == (2, 1, 4, 4)
    assert (mask[0, 0, :3, 3] < -1e30).all() and (mask[0, 0, :3, :3] == 0).all()  # real rows see real keys only
    assert (mask[1, 0, 1:, 0] < -1e30).all()  # no real row sees the pad key
    assert (mask[1, 0, 0] == 0).all()  # the pad row is never all -inf (it keeps its own key)


def test_causal_and_block_masks():
    causal = decoder_masks(torch.ones(1, 4, dtype=torch.long), "causal", "sdpa", torch.float32, ["full_attention"])
    assert (causal["full_attention"][0, 0].triu(1) < -1e30).sum() == 6
    block = decoder_masks(torch.ones(1, 4, dtype=torch.long), "block", "sdpa", torch.float32, ["full_attention"], 2)
    allowed = block["full_attention"][0, 0] == 0
    assert allowed[0, 1] and not allowed[0, 2] and allowed[3, 0]


def test_flash_gets_the_padding_mask_and_refuses_block():
    assert decoder_masks(MASK, "bidirectional", FLASH, torch.bfloat16, ["full_attention"])["full_attention"] is MASK
    with pytest.raises(ValueError, match="block attention"):
        decoder_masks(MASK, "block", FLASH, torch.bfloat16, ["full_attention"])


def test_kernel_choice_without_a_gpu():
    assert pick_implementation(None, torch.bfloat16) == "sdpa"
    assert pick_implementation("cpu", torch.bfloat16) == "sdpa"
    assert pick_implementation("cuda", torch.float32) == "sdpa"
