"""LoRA through peft, with the paper's setting (r=8) and each family's own targets."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from pipeline.models.base import VLMEncoder

# The linear layers of a Llama-style decoder block (attention q/k/v/o, SwiGLU gate/up/down): the
# LoRA targets of every language model here (Mistral, Qwen2/2.5, Dream, LLaDA as Llama).
LM_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    train_vision: bool = False  # the paper's Table 4 ablation: adapt the vision tower too

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
