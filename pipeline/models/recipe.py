"""How to rebuild a trained encoder: base weights + options + LoRA adapters, as one JSON file.

Every stored run points (runs.checkpoint) at a directory holding `encoder.json` and the
trained weights, so the evaluator, `vlmembed search` and the dashboard's live retrieval
can load exactly the model that produced the run's embeddings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from pipeline.models.base import EncoderOptions, VLMEncoder
from pipeline.models.lora import LoraSettings, apply_lora
from pipeline.models.registry import get_family, parse_dtype

RECIPE_FILE = "encoder.json"
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class EncoderRecipe:
    family: str
    base: str  # a checkpoint directory or hub id, or "random:<size>:<seed>" for an untrained preset
    dtype: str = "fp32"
    options: dict = field(default_factory=dict)  # EncoderOptions fields that differ from the family's
    lora: dict | None = None  # LoraSettings fields when adapters are part of the model
    weights: str | None = None  # trainable weights (adapters, or all for full fine-tuning), relative path

    def __post_init__(self) -> None:
        get_family(self.family)  # unknown family -> clear error with suggestions
        EncoderOptions(**self.options)
        if self.lora is not None:
            LoraSettings(**self.lora)
        parse_dtype(self.dtype)

    def encoder_options(self) -> EncoderOptions:
        return EncoderOptions(**self.options)

    def build(self, root: Path | None = None, device: str | torch.device | None = None) -> VLMEncoder:
        """The encoder this recipe describes, in eval mode."""
        family = get_family(self.family)
        options = self.encoder_options()
        if self.base.startswith("random:"):
            _, size, seed = self.base.split(":")
            encoder = family.build(size=size, options=options, seed=int(seed))  # type: ignore[arg-type]
        else:
            base = self.base
            if root is not None and not Path(base).is_absolute() and (root / base).exists():
                base = str(root / base)
            encoder = family.from_pretrained(base, dtype=parse_dtype(self.dtype), device=device, options=options)
        if self.lora is not None:
            apply_lora(encoder, LoraSettings(**self.lora))
        if self.weights is not None:
            path = Path(self.weights) if root is None or Path(self.weights).is_absolute() else root / self.weights
            state = torch.load(path, map_location="cpu", weights_only=True)
            unexpected = set(state) - set(encoder.state_dict())
            if unexpected:
                raise ValueError(f"{path}: weights for {len(unexpected)} unknown parameters, e.g. {sorted(unexpected)[:3]}")
            encoder.load_state_dict(state, strict=False)
        if device is not None:
            encoder.to(device)
        return encoder.eval()

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / RECIPE_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> EncoderRecipe:
        path = Path(directory) / RECIPE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {RECIPE_FILE} in {directory}: not a vlmembed model directory")
        return cls(**json.loads(path.read_text()))


def load_encoder(directory: str | Path, device: str | torch.device | None = None) -> VLMEncoder:
    """Rebuild the encoder saved in `directory` (see EncoderRecipe)."""
    return EncoderRecipe.load(directory).build(root=Path(directory), device=device)
