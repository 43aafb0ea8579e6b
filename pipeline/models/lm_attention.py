"""Running a transformers decoder stack causally, bidirectionally or block-causally.

Dream-based families run Qwen2-shaped decoders with full (bidirectional) attention. Rather
than relying on the stack's own mask creation (whose shortcuts assume causality), we hand it
a ready mask for every layer type:

* sdpa / eager: a 4D additive mask from :func:`base.attention_mask_4d` (padding always
  masked; a padded row keeps its own position so no row is all -inf and no NaN leaks into
  real tokens through the values).
* flash_attention_2: the 2D padding mask (flash unpads it) and each attention module's
  `is_causal` flag; block attention has no flash form and is refused.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from pipeline.models.base import Attention, attention_mask_4d

FLASH = "flash_attention_2"


def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def pick_implementation(device: str | torch.device | None, dtype: torch.dtype) -> str:
    """flash_attention_2 on a CUDA device in half precision when flash_attn is installed, else sdpa."""
    on_cuda = device is not None and torch.device(device).type == "cuda"
    if on_cuda and dtype in (torch.bfloat16, torch.float16) and flash_attn_available():
        return FLASH
    return "sdpa"


def set_causal(decoder: nn.Module, causal: bool) -> None:
    """Flip the causal flag the attention kernels read (flash uses it; sdpa sees our mask)."""
    decoder.config.is_causal = causal
    for module in decoder.modules():
        if hasattr(module, "is_causal") and module is not decoder:
            module.is_causal = causal


def check_supported(attention: Attention, implementation: str) -> None:
    if attention == "block" and implementation == FLASH:
        raise ValueError(
            "block attention needs an explicit 4D mask, which flash_attention_2 cannot take; "
            "load the model with sdpa (e.g. on a machine without flash_attn, or in float32) to run this ablation."
        )


def decoder_masks(
    attention_mask: torch.Tensor,
    attention: Attention,
    implementation: str,
    dtype: torch.dtype,
    layer_types: list[str],
    block_size: int = 8,
) -> dict[str, torch.Tensor]:
    """The `attention_mask` mapping a transformers decoder accepts as prepared masks."""
    check_supported(attention, implementation)
    if implementation == FLASH:
        mask = attention_mask
    else:
        mask = attention_mask_4d(attention_mask, attention, dtype, block_size)  # (B, 1, L, L)
    return {layer_type: mask for layer_type in set(layer_types)}
