"""The project's words, defined once: meta-tasks, paradigms, modalities, sources, stages.

This is the lowest layer that needs them (the store checks them), so `pipeline` and `app`
import them from here. Each word list is a ``Literal`` type, for annotations, and a tuple of
its values, for checks and choices.
"""

from __future__ import annotations

from typing import Literal, get_args

MetaTask = Literal["classification", "vqa", "retrieval"]
META_TASKS: tuple[str, ...] = get_args(MetaTask)  # the paper's three, the ones a run is scored on
# DiffEmbed-style text-only retrieval (issue 15): not in the paper, so kept out of META_TASKS.
TEXT_META_TASK = "text"
STORED_META_TASKS: tuple[str, ...] = (*META_TASKS, TEXT_META_TASK)  # what a dataset row may carry
MMEBMetaTask = Literal["classification", "vqa", "retrieval", "grounding"]
MMEB_META_TASKS: tuple[str, ...] = get_args(MMEBMetaTask)  # MMEB's four (grounding is not in the paper)
DATASET_META_TASKS: tuple[str, ...] = (*MMEB_META_TASKS, TEXT_META_TASK)  # what a catalog's dataset may carry

# a baseline (chance, text-only) is neither; a dual encoder (CLIP, SigLIP) is MMEB's standard baseline model
Paradigm = Literal["autoregressive", "diffusion", "baseline", "dual-encoder"]
PARADIGMS: tuple[str, ...] = get_args(Paradigm)
COMPARED_PARADIGMS: tuple[str, ...] = ("autoregressive", "diffusion")  # the two the project compares

# A catalog writes a side's modality as MMEB's tables do (I, T, I+T); the store spells it out.
ModalityCode = Literal["I", "T", "I+T"]
MODALITY_CODES: tuple[str, ...] = get_args(ModalityCode)
Modality = Literal["image", "text", "image+text"]
MODALITIES: tuple[str, ...] = get_args(Modality)
MODALITY_NAMES: dict[str, str] = dict(zip(MODALITY_CODES, MODALITIES, strict=True))

# mteb / vlm2vec: results imported from those projects' files (`vlmembed import`)
Source = Literal["paper", "pipeline", "demo", "baseline", "mteb", "vlm2vec"]
SOURCES: tuple[str, ...] = get_args(Source)  # where a run's numbers come from
IMPORT_SOURCES: tuple[str, ...] = ("mteb", "vlm2vec")

Stage = Literal["zero-shot", "checkpoint", "final"]
STAGES: tuple[str, ...] = get_args(Stage)  # in training order

Role = Literal["query", "target"]
ROLES: tuple[str, ...] = get_args(Role)  # an item's side in an evaluation row


def modality_of(has_image: bool, has_text: bool) -> str:
    """The spelled-out modality of an item with or without an image and text."""
    if has_image and has_text:
        return "image+text"
    return "image" if has_image else "text"


def sql_choices(values: tuple[str, ...]) -> str:
    """A word list as the inside of an SQL ``IN (...)`` check."""
    return ", ".join(f"'{v}'" for v in values)
