"""Turning prompt segments into token ids, kinds and padded batches.

Families that tokenize themselves (rather than through a transformers processor) share
this: each segment is tokenized on its own, so the positions of the instruction, the text
and the image are known exactly; only the example's text is cut when a prompt is over the
limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from pipeline.models.base import (
    KIND_IMAGE,
    KIND_INSTRUCTION,
    KIND_PAD,
    KIND_SPECIAL,
    KIND_TEMPLATE,
    KIND_TEXT,
    Overflow,
    Segment,
    fit_text_ids,
)

_KIND_OF_SEGMENT = {"literal": KIND_TEMPLATE, "instruction": KIND_INSTRUCTION, "text": KIND_TEXT}


def tokenize_segments(
    tokenizer,
    segments: Sequence[Segment],
    image_ids: Callable[[int], list[int]],
    max_length: int,
    on_overflow: Overflow,
    prefix_ids: Sequence[int] = (),
    suffix_ids: Sequence[int] = (),
) -> tuple[list[int], list[int]]:
    """Ids and KIND_* per position for one prompt.

    `image_ids(i)` returns the ids standing for the i-th image of the prompt. `prefix_ids`
    and `suffix_ids` (e.g. BOS, EOS) are kept whatever the length; the example's own text is
    the only part that is truncated.
    """
    pieces: list[tuple[list[int], int]] = []
    images = 0
    for seg in segments:
        if seg.kind == "image":
            pieces.append((list(image_ids(images)), KIND_IMAGE))
            images += 1
        else:
            pieces.append((tokenizer(seg.text, add_special_tokens=False)["input_ids"], _KIND_OF_SEGMENT[seg.kind]))
    fixed = len(prefix_ids) + len(suffix_ids) + sum(len(ids) for ids, kind in pieces if kind != KIND_TEXT)
    text_total = sum(len(ids) for ids, kind in pieces if kind == KIND_TEXT)
    if fixed + text_total > max_length:
        budget = max_length - fixed
        if budget < 0:
            # Nothing left to cut: even without the text the prompt is over the limit.
            fit_text_ids([0] * (fixed + text_total), max_length, "error", what="the prompt (image + instruction)")
        pieces = [(fit_text_ids(ids, budget, on_overflow) if kind == KIND_TEXT else ids, kind) for ids, kind in pieces]
    ids_out = list(prefix_ids)
    kinds_out = [KIND_SPECIAL] * len(prefix_ids)
    for ids, kind in pieces:
        ids_out += ids
        kinds_out += [kind] * len(ids)
    ids_out += list(suffix_ids)
    kinds_out += [KIND_SPECIAL] * len(suffix_ids)
    return ids_out, kinds_out


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    kinds: Sequence[Sequence[int]],
    pad_id: int,
    side: str = "right",
) -> dict[str, torch.Tensor]:
    """`input_ids`, `attention_mask` and `token_kinds`, padded to the longest row."""
    if side not in ("left", "right"):
        raise ValueError(f"padding side must be 'left' or 'right', got {side!r}")
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    kind = torch.full((len(sequences), length), KIND_PAD, dtype=torch.int8)
    for row, (seq, k) in enumerate(zip(sequences, kinds, strict=True)):
        n = len(seq)
        span = slice(0, n) if side == "right" else slice(length - n, length)
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
        kind[row, span] = torch.tensor(k, dtype=torch.int8)
    return {"input_ids": ids, "attention_mask": mask, "token_kinds": kind}
