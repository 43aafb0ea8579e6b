"""LoRA through peft, with the paper's setting (r=8) and each family's own targets."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from pipeline.models.base import VLMEncoder

# The linear layers of a Llama-style decoder block (attention q/k/v/o, SwiGLU gate/up/down): the
# LoRA targets of every language model here (Mistral, Qwen2/2.5, Dream, LLaDA as Llama).
LM_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# VLM2Vec's default `lora_target_modules` (TIGER-AI-Lab/VLM2Vec src/arguments.py), the framework the
# paper trains in. PEFT matches them as name suffixes anywhere in the model, so they also reach the
# vision towers whose layers carry these names: CLIP's and SigLIP's attention projections, Qwen2.5-VL
# ViT's down_proj. A family's `vision_lora_targets` is this list cut to the names its tower has.
VLM2VEC_LORA_TARGETS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj", "k_proj", "q_proj", "out_proj", "v_proj")


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    train_vision: bool = False  # adapt the vision tower too (per model: ModelEntry.train_vision)

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError(f"LoRA rank and alpha must be positive, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")


def apply_lora(encoder: VLMEncoder, settings: LoraSettings) -> VLMEncoder:
    """Freeze the encoder and inject LoRA adapters into its target linear layers, in place.

    The output head is never a target (the embedding never passes through it); the vision
    tower is one only with `train_vision`.
    """
    from peft import LoraConfig, inject_adapter_in_model

    targets = encoder.lora_target_modules(train_vision=settings.train_vision)
    if not targets:
        raise ValueError(f"{encoder.spec.name}: no module matches its LoRA targets {encoder.spec.lora_targets}")
    for p in encoder.parameters():
        p.requires_grad_(False)
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=targets, bias="none")
    inject_adapter_in_model(config, encoder)
    return encoder


def lora_state_dict(model: nn.Module) -> dict:
    """Only the adapter weights: what a LoRA checkpoint needs to hold."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if "lora_" in k}
