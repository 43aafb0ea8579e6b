"""Training configuration: one dataclass that checks itself and is saved with every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pipeline.models.lora import LoraSettings


@dataclass(frozen=True)
class TrainConfig:
    temperature: float = 0.02  # the paper and VLM2Vec
    global_batch_size: int = 256  # the paper
    chunk_size: int = 32  # GradCache chunk; >= global_batch_size means plain full-batch steps
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_steps: int | None = None  # None: `epochs` passes over the data
    epochs: float = 1.0  # the paper trains about one epoch
    hard_negatives: int = 1  # hard negatives per pair used in the loss (0: in-batch only)
    # Not in the paper's recipe (both off by default); the demo uses both (docs/demo.md).
    mask_false_negatives: bool = False  # other copies of a query's positive in the batch are not negatives
    batch_by_dataset: bool = False  # every global batch from one dataset: in-batch negatives of the same task
    lora: LoraSettings | None = field(default_factory=LoraSettings)  # None: full fine-tuning
    bf16: bool = False
    gradient_checkpointing: bool = False
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 0  # steps between resumable checkpoints; 0: only data-scale points and the end
    checkpoint_samples: tuple[int, ...] = ()  # data-scale points (the paper's Figure 3): evaluate there
    keep_checkpoints: int = 2  # resumable checkpoints kept on disk (data-scale points are always kept)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.global_batch_size < 2:
            raise ValueError("a contrastive batch needs at least 2 pairs (global_batch_size >= 2)")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be positive, got {self.max_steps}")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if self.hard_negatives < 0 or self.checkpoint_every < 0 or self.keep_checkpoints < 1:
            raise ValueError("hard_negatives and checkpoint_every must be >= 0, keep_checkpoints >= 1")
        if any(s <= 0 for s in self.checkpoint_samples):
            raise ValueError(f"checkpoint_samples must be positive, got {self.checkpoint_samples}")
        object.__setattr__(self, "checkpoint_samples", tuple(sorted(set(self.checkpoint_samples))))

    @property
    def uses_gradcache(self) -> bool:
        return self.chunk_size < self.global_batch_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        lora = data.get("lora", LoraSettings())
        if isinstance(lora, dict):
            data["lora"] = LoraSettings(**lora)
        elif lora is False:
            data["lora"] = None
        if "checkpoint_samples" in data:
            data["checkpoint_samples"] = tuple(data["checkpoint_samples"])
        return cls(**data)
