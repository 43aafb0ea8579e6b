"""Each paradigm's own pretraining objective, for the demo's miniature VLMs.

* autoregressive: next-token prediction of the caption given the image (causal attention);
* diffusion: masked-token diffusion as LLaDA / Dream / MMaDA train it: a ratio t ~ U(eps, 1)
  per sequence, each maskable token replaced by [MASK] with probability t, cross-entropy on
  the masked tokens weighted by 1/t (an upper bound on the negative log-likelihood). For
  MMaDA the image-code tokens are maskable too: it learns to predict image codes, as its
  text-to-image objective does;
* dual-encoder: the family's own image-caption contrastive loss (CLIP's softmax InfoNCE over
  the batch, SigLIP's pairwise sigmoid loss), as transformers computes it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.models.base import KIND_IMAGE, KIND_TEXT, Batch, VLMEncoder

MIN_MASK_RATIO = 1e-3


def next_token_loss(encoder: VLMEncoder, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of predicting each caption token from the tokens before it."""
    hidden = encoder.hidden_states(batch)  # (B, L, D), causal
    target_is_text = batch["token_kinds"] == KIND_TEXT  # (B, L)
    if not target_is_text[:, 1:].any():
        raise ValueError("next-token pretraining needs caption text in the batch")
    # The state at position i predicts token i+1: score the positions before each caption token.
    predict_from = torch.zeros_like(target_is_text)
    predict_from[:, :-1] = target_is_text[:, 1:]
    logits = encoder.output_logits(hidden, predict_from.to(hidden.device))  # (N, V)
    targets = batch["input_ids"][:, 1:][target_is_text[:, 1:]].to(logits.device)
    return F.cross_entropy(logits.float(), targets)


def maskable_positions(encoder: VLMEncoder, batch: Batch) -> torch.Tensor:
    kinds = batch["token_kinds"]
    maskable = kinds == KIND_TEXT
    if encoder.image_tokens_are_codes:
        maskable = maskable | (kinds == KIND_IMAGE)
    return maskable & batch["attention_mask"].bool()


def masked_diffusion_loss(encoder: VLMEncoder, batch: Batch, generator: torch.Generator) -> torch.Tensor:
    """LLaDA's objective on the maskable tokens of each sequence."""
    if encoder.mask_token_id is None:
        raise ValueError(f"{encoder.spec.name} has no mask token: it cannot be trained as a masked diffusion model")
    ids = batch["input_ids"]
    maskable = maskable_positions(encoder, batch)  # (B, L)
    if not maskable.any():
        raise ValueError("masked-diffusion pretraining needs maskable tokens in the batch")
    ratio = torch.rand(ids.shape[0], 1, generator=generator) * (1 - MIN_MASK_RATIO) + MIN_MASK_RATIO  # (B, 1)
    masked = maskable & (torch.rand(ids.shape, generator=generator) < ratio)
    # A sequence drawing no mask would teach nothing: mask its first maskable token instead.
    empty = maskable.any(dim=1) & ~masked.any(dim=1)
    if empty.any():
        first = maskable.float().argmax(dim=1)
        masked[empty, first[empty]] = True
    noisy = ids.masked_fill(masked, encoder.mask_token_id)
    hidden = encoder.hidden_states({**batch, "input_ids": noisy})
    masked = masked.to(hidden.device)
    logits = encoder.output_logits(hidden, masked)  # (N, V): the masked rows only
    ce = F.cross_entropy(logits.float(), ids.to(logits.device)[masked], reduction="none")
    weights = (1.0 / ratio.to(logits.device)).expand_as(masked)[masked]
    return (ce * weights).sum() / maskable.sum().to(logits.device)


def paradigm_loss(encoder: VLMEncoder, batch: Batch, generator: torch.Generator) -> torch.Tensor:
    """The objective of the family's own paradigm (read from its spec, not its name)."""
    if encoder.spec.paradigm == "autoregressive":
        return next_token_loss(encoder, batch)
    if encoder.spec.paradigm == "dual-encoder":
        return encoder.image_text_loss(batch)  # type: ignore[attr-defined] - pipeline.models.families._dual_encoder
    return masked_diffusion_loss(encoder, batch, generator)
