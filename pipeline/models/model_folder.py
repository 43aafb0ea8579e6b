"""Hugging Face-shaped model folders: a trained encoder that PEFT and safetensors tools can open.

A folder holds
* `adapter_config.json` + `adapter_model.safetensors` (LoRA runs): a PEFT adapter, so
  `PeftModel.from_pretrained(base_encoder, folder)` gives the trained model;
* `model.safetensors` (full fine-tunes): the trained tensors, named as in the encoder;
* `vlmembed.json`: the project's recipe (family, base, options, LoRA), what `vlmembed.load` reads;
* `README.md`: a model card (training config, scores, the paper).

Old checkpoints (`encoder.json` + `weights.pt`) still load through `pipeline.models.recipe`;
:func:`load_model` opens either kind.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pipeline.models.base import VLMEncoder
from pipeline.models.recipe import RECIPE_FILE, EncoderRecipe, load_encoder

META_FILE = "vlmembed.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
FULL_WEIGHTS = "model.safetensors"
# PEFT names an adapter tensor `base_model.model.<module>.lora_A.weight` in its files and
# `<module>.lora_A.<adapter>.weight` inside the model; the adapter here is peft's "default".
PEFT_PREFIX = "base_model.model."
ADAPTER_NAME = "default"


def is_model_folder(directory: str | Path) -> bool:
    return (Path(directory) / META_FILE).is_file()


def peft_key(ours: str) -> str:
    """`<module>.lora_A.default.weight` -> `base_model.model.<module>.lora_A.weight`."""
    return PEFT_PREFIX + ours.replace(f".{ADAPTER_NAME}.", ".")


def our_key(peft: str) -> str:
    """The inverse of :func:`peft_key`."""
    name = peft.removeprefix(PEFT_PREFIX)
    for part in ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector"):
        name = name.replace(f".{part}.", f".{part}.{ADAPTER_NAME}.")
    return name


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses views and shared storage (tied embeddings): give each tensor its own copy
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _absolute_base(recipe: EncoderRecipe, root: Path) -> EncoderRecipe:
    """A base given relative to the checkpoint must still resolve once the folder is elsewhere."""
    base = recipe.base
    if not base.startswith("random:") and not Path(base).is_absolute() and (root / base).exists():
        return replace(recipe, base=str((root / base).resolve()))
    return recipe


def adapter_config(recipe: EncoderRecipe, adapter_keys: list[str]) -> dict:
    """PEFT's adapter_config.json for the recipe's LoRA, targeting the modules that hold adapters."""
    from peft import LoraConfig

    lora = recipe.lora or {}
    targets = sorted({k.split(".lora_")[0] for k in adapter_keys})
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], bias="none",
                        target_modules=targets)
    out = config.to_dict()
    out["base_model_name_or_path"] = recipe.base
    return json.loads(json.dumps(out, default=sorted))  # sets (target_modules) as sorted lists


def save_model_folder(checkpoint: str | Path, out: str | Path, card: str | None = None,
                      encoder: VLMEncoder | None = None) -> Path:
    """Write a checkpoint directory (`encoder.json` + weights) as a Hugging Face-shaped folder.

    `encoder`: the checkpoint's model already in memory (the trainer's), saving a second load.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    recipe = _absolute_base(EncoderRecipe.load(checkpoint), checkpoint)
    encoder = encoder if encoder is not None else load_encoder(checkpoint)
    trained = _trained_state(recipe, checkpoint, encoder)
    out.mkdir(parents=True, exist_ok=True)
    if recipe.lora is not None:
        adapter = {k: v for k, v in trained.items() if "lora_" in k}
        save_file(_contiguous({peft_key(k): v for k, v in adapter.items()}), out / ADAPTER_WEIGHTS, metadata={"format": "pt"})
        (out / ADAPTER_CONFIG).write_text(json.dumps(adapter_config(recipe, list(adapter)), indent=2))
        rest = {k: v for k, v in trained.items() if "lora_" not in k}  # e.g. a trained vision tower
        weights = ADAPTER_WEIGHTS
        if rest:
            save_file(_contiguous(rest), out / FULL_WEIGHTS, metadata={"format": "pt"})
    else:
        save_file(_contiguous(trained), out / FULL_WEIGHTS, metadata={"format": "pt"})
        weights = FULL_WEIGHTS if trained else None
    meta = {**asdict(replace(recipe, weights=weights)), "format": 1}
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    if card is not None:
        (out / "README.md").write_text(card)
    return out


def _trained_state(recipe: EncoderRecipe, checkpoint: Path, encoder: VLMEncoder) -> dict[str, torch.Tensor]:
    """The tensors training changed: the checkpoint's weights file, as loaded into the encoder."""
    if recipe.weights is None:
        return {}
    saved = torch.load(checkpoint / recipe.weights, map_location="cpu", weights_only=True)
    state = encoder.state_dict()
    return {k: state[k] for k in saved}


def load_model_folder(directory: str | Path, device: str | torch.device | None = None) -> VLMEncoder:
    """Rebuild the encoder of a folder written by :func:`save_model_folder`."""
    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text())
    meta.pop("format", None)
    recipe = EncoderRecipe(**meta)
    encoder = replace(recipe, weights=None).build(root=directory)
    state: dict[str, torch.Tensor] = {}
    if (directory / ADAPTER_WEIGHTS).is_file():
        state.update({our_key(k): v for k, v in load_file(directory / ADAPTER_WEIGHTS).items()})
    if (directory / FULL_WEIGHTS).is_file():
        state.update(load_file(directory / FULL_WEIGHTS))
    unknown = set(state) - set(encoder.state_dict())
    if unknown:
        raise ValueError(f"{directory}: {len(unknown)} tensors have no place in the model, e.g. {sorted(unknown)[:3]}; "
                         f"was {META_FILE} edited?")
    encoder.load_state_dict(state, strict=False)
    if device is not None:
        encoder.to(device)
    return encoder.eval()


def load_model(directory: str | Path, device: str | torch.device | None = None) -> VLMEncoder:
    """A model folder (`vlmembed.json`) or an old checkpoint (`encoder.json` + `weights.pt`)."""
    directory = Path(directory)
    if is_model_folder(directory):
        return load_model_folder(directory, device=device)
    if (directory / RECIPE_FILE).is_file():
        return load_encoder(directory, device=device)
    raise FileNotFoundError(f"{directory} holds neither {META_FILE} nor {RECIPE_FILE}: not a vlmembed model; "
                            "pass a run id with --store, or a folder written by `vlmembed export-model`")
