"""MMaDA's published checkpoint: its config.json, its LLaDA key names, where MAGVIT-v2 lives.

MMaDA (`Gen-Verse/MMaDA-8B-Base`, `-8B-MixCoT`) is `MMadaModelLM`, a subclass of LLaDA's
`LLaDAModelLM`: a Llama-shaped transformer stored under OLMo-style names, run without a
causal mask. We run it as a transformers `LlamaModel` with `config.is_causal=False`, so the
only MMaDA-specific work is this key map and config translation. The image tokenizer is a
separate checkpoint (`showlab/magvitv2`).

Sources (read in the public repositories; see docs/models-mmada.md):
* Gen-Verse/MMaDA `models/modeling_llada.py` (`LLaDALlamaBlock`: `x = act(ff_proj(x)) *
  up_proj(x); ff_out(x)` with act = SiLU, so ff_proj is the gate), `models/modeling_mmada.py`
  (`MMadaConfig` keys), `training/prompting_utils.py` (reserved ids), `inference_mmu.py`
  (image ids = code + len(tokenizer)), `configs/mmada_demo.yaml` (new_vocab_size 134656).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import LlamaConfig

from pipeline.models.checkpoint import KeyMap, KeyRule, resolve_local
from pipeline.models.families.mmada.magvit2 import MagvitConfig, ResizeMode

log = logging.getLogger(__name__)

# training/prompting_utils.py `reserved_token_mapping` (used with use_reserved_token=True).
RESERVED_TOKEN_IDS = {
    "<|soi|>": 126084, "<|eoi|>": 126085, "<|sov|>": 126086, "<|eov|>": 126087, "<|t2i|>": 126088,
    "<|mmu|>": 126089, "<|t2v|>": 126090, "<|v2v|>": 126091, "<|lvg|>": 126092, "[iPAD]": 126093,
    "<|r2i|>": 126094,
}
LLADA_MASK_ID = 126336  # <|mdm_mask|>
LLADA_BOS_ID, LLADA_EOS_ID = 126080, 126081
LLADA_TEXT_VOCAB = 126464  # llm_vocab_size; embedding rows of LLaDA-8B
# len() of the LLaDA-8B-Instruct tokenizer MMaDA ships: its highest id is <|eot_id|> = 126348.
# Inferred, not read from the files: from_pretrained takes len(tokenizer) of the checkpoint.
LLADA_TOKENIZER_LEN = 126349
VQ_SUBDIR = "magvitv2"  # where save_original puts the image tokenizer
VQ_HUB_ID = "showlab/magvitv2"
VQ_ENV = "VLMEMBED_MMADA_VQ_PATH"

LLADA_KEY_MAP = KeyMap(
    [
        KeyRule("model.transformer.wte.weight", "lm.embed_tokens.weight", "text + image-code embeddings"),
        KeyRule("model.transformer.blocks.{n}.q_proj.weight", "lm.layers.{n}.self_attn.q_proj.weight"),
        KeyRule("model.transformer.blocks.{n}.k_proj.weight", "lm.layers.{n}.self_attn.k_proj.weight"),
        KeyRule("model.transformer.blocks.{n}.v_proj.weight", "lm.layers.{n}.self_attn.v_proj.weight"),
        KeyRule("model.transformer.blocks.{n}.attn_out.weight", "lm.layers.{n}.self_attn.o_proj.weight"),
        KeyRule("model.transformer.blocks.{n}.ff_proj.weight", "lm.layers.{n}.mlp.gate_proj.weight",
                "SiLU is applied to ff_proj: it is the gate"),
        KeyRule("model.transformer.blocks.{n}.up_proj.weight", "lm.layers.{n}.mlp.up_proj.weight"),
        KeyRule("model.transformer.blocks.{n}.ff_out.weight", "lm.layers.{n}.mlp.down_proj.weight",
                "block ff_out = down projection (not the head)"),
        KeyRule("model.transformer.blocks.{n}.attn_norm.weight", "lm.layers.{n}.input_layernorm.weight", "RMSNorm"),
        KeyRule("model.transformer.blocks.{n}.ff_norm.weight", "lm.layers.{n}.post_attention_layernorm.weight", "RMSNorm"),
        KeyRule("model.transformer.ln_f.weight", "lm.norm.weight", "final RMSNorm"),
        KeyRule("model.transformer.ff_out.weight", "lm_head.weight", "output head (untied), never a LoRA target"),
    ]
)

# LLaDA config flags our Llama module reproduces; anything else is a different architecture.
_REQUIRED_LLADA = {
    "block_type": "llama", "activation_type": "silu", "layer_norm_type": "rms", "rope": True, "alibi": False,
    "weight_tying": False, "include_bias": False, "input_emb_norm": False, "scale_logits": False,
    "attention_layer_norm": False,
}
REQUIRED_LLADA = _REQUIRED_LLADA  # also checked by the text-only LLaDA family (families/text_lm.py)


@dataclass(frozen=True)
class MMaDAConfig:
    """The language model, its special ids and the image tokenizer, in one validated record."""

    hidden_size: int = 4096
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    intermediate_size: int = 12288
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    max_position_embeddings: int = 4096
    vocab_size: int = LLADA_TEXT_VOCAB + 8192  # embedding/head rows: 134656 = new_vocab_size
    text_vocab_size: int = LLADA_TEXT_VOCAB  # llm_vocab_size
    image_token_offset: int = LLADA_TOKENIZER_LEN  # image id = code + offset
    mask_token_id: int = LLADA_MASK_ID
    bos_token_id: int = LLADA_BOS_ID
    eos_token_id: int = LLADA_EOS_ID
    pad_token_id: int = LLADA_EOS_ID
    mmu_token_id: int = RESERVED_TOKEN_IDS["<|mmu|>"]
    soi_token_id: int = RESERVED_TOKEN_IDS["<|soi|>"]
    eoi_token_id: int = RESERVED_TOKEN_IDS["<|eoi|>"]
    image_resize: ResizeMode = "crop"
    magvit: MagvitConfig = field(default_factory=MagvitConfig)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError("hidden_size must divide into num_heads, and num_heads into num_kv_heads")
        end = self.image_token_offset + self.magvit.codebook_size
        if end > self.vocab_size:
            raise ValueError(
                f"image ids {self.image_token_offset}..{end - 1} do not fit the {self.vocab_size}-row embedding; "
                "the checkpoint's tokenizer or config does not belong to this model"
            )
        ids = (self.mask_token_id, self.bos_token_id, self.eos_token_id, self.pad_token_id,
               self.mmu_token_id, self.soi_token_id, self.eoi_token_id)
        if any(not 0 <= i < self.image_token_offset for i in ids):
            raise ValueError(f"special ids {ids} must be text ids below the image offset {self.image_token_offset}")
        if self.image_resize not in ("crop", "squash"):
            raise ValueError(f"image_resize must be 'crop' or 'squash', got {self.image_resize!r}")

    def llama_config(self, attn_implementation: str = "sdpa") -> LlamaConfig:
        config = LlamaConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers, num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads, hidden_act="silu", rms_norm_eps=self.rms_norm_eps,
            max_position_embeddings=self.max_position_embeddings, tie_word_embeddings=False,
            attention_bias=False, mlp_bias=False, pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id, eos_token_id=self.eos_token_id,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
        )
        config.is_causal = False  # LLaDA/MMaDA attend both ways
        config._attn_implementation = attn_implementation
        return config

    def to_published(self) -> dict[str, Any]:
        """config.json in MMaDA's format (LLaDA ModelConfig keys + MMadaConfig keys), plus the
        ids a tiny model needs to load back (the real ones are MMaDA's constants)."""
        return {
            "architectures": ["MMadaModelLM"], "model_type": "mmada",
            "d_model": self.hidden_size, "n_layers": self.num_layers, "n_heads": self.num_heads,
            "n_kv_heads": self.num_kv_heads, "mlp_hidden_size": self.intermediate_size, "mlp_ratio": 4,
            "rms_norm_eps": self.rms_norm_eps, "rope_theta": self.rope_theta,
            "max_sequence_length": self.max_position_embeddings, "vocab_size": self.vocab_size,
            "embedding_size": self.vocab_size, "new_vocab_size": self.vocab_size,
            "llm_vocab_size": self.text_vocab_size, "codebook_size": self.magvit.codebook_size,
            "num_vq_tokens": self.magvit.tokens_per_image, "num_new_special_tokens": 0,
            "mask_token_id": self.mask_token_id, "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id, "rope_full_precision": True, "flash_attention": False,
            "attention_dropout": 0.0, "residual_dropout": 0.0, "embedding_dropout": 0.0, "use_cache": False,
            **_REQUIRED_LLADA,
            # Ours (MMaDA's loader ignores unknown keys): the run-time values MMaDA's code derives.
            "image_token_offset": self.image_token_offset, "bos_token_id": self.bos_token_id,
            "mmu_token_id": self.mmu_token_id, "soi_token_id": self.soi_token_id,
            "eoi_token_id": self.eoi_token_id, "image_resize": self.image_resize,
        }

    @classmethod
    def from_published(cls, data: dict[str, Any], tokenizer: Any, magvit: MagvitConfig) -> MMaDAConfig:
        """From MMaDA's config.json, the checkpoint's tokenizer and the tokenizer's config."""
        wrong = {k: data.get(k) for k, v in _REQUIRED_LLADA.items() if k in data and data[k] != v}
        if wrong:
            raise ValueError(f"unsupported LLaDA variant {wrong}; this loader handles the Llama-block, SiLU-gated, "
                             "RMSNorm, RoPE, untied layout of LLaDA-8B / MMaDA-8B")
        rows = data.get("embedding_size") or data.get("new_vocab_size") or data["vocab_size"]
        # MMaDA's own code offsets image codes by len(tokenizer) at run time.
        offset = data.get("image_token_offset", len(tokenizer))
        bos = data.get("bos_token_id", tokenizer.bos_token_id if tokenizer.bos_token_id is not None else LLADA_BOS_ID)
        eos = data.get("eos_token_id", LLADA_EOS_ID)
        return cls(
            hidden_size=data["d_model"], num_layers=data["n_layers"], num_heads=data["n_heads"],
            num_kv_heads=data.get("n_kv_heads") or data["n_heads"], intermediate_size=data["mlp_hidden_size"],
            rms_norm_eps=data.get("rms_norm_eps", 1e-5), rope_theta=data.get("rope_theta", 500000.0),
            max_position_embeddings=data.get("max_sequence_length", 4096), vocab_size=rows,
            text_vocab_size=data.get("llm_vocab_size", LLADA_TEXT_VOCAB), image_token_offset=offset,
            mask_token_id=data.get("mask_token_id", LLADA_MASK_ID), bos_token_id=bos, eos_token_id=eos,
            pad_token_id=data.get("pad_token_id", eos),
            mmu_token_id=data.get("mmu_token_id", RESERVED_TOKEN_IDS["<|mmu|>"]),
            soi_token_id=data.get("soi_token_id", RESERVED_TOKEN_IDS["<|soi|>"]),
            eoi_token_id=data.get("eoi_token_id", RESERVED_TOKEN_IDS["<|eoi|>"]),
            image_resize=data.get("image_resize", "crop"), magvit=magvit,
        )


def resolve_vq_dir(root: Path, vq_model_path: str | None = None) -> Path:
    """Where the MAGVIT-v2 weights are, first match wins:

    1. `vq_model_path` (a directory or hub id), when given: then only that;
    2. `<checkpoint>/magvitv2/` (what `save_original` writes);
    3. the directory or hub id in the environment variable VLMEMBED_MMADA_VQ_PATH;
    4. the hub id `showlab/magvitv2` (resolves only through a local hub cache offline).
    """
    tried: list[str] = []
    if vq_model_path:
        candidates = [vq_model_path]  # an explicit path never falls back silently
    else:
        if (root / VQ_SUBDIR).is_dir():
            return root / VQ_SUBDIR
        tried.append(f"{root / VQ_SUBDIR} (no such directory)")
        candidates = [c for c in (os.environ.get(VQ_ENV), VQ_HUB_ID) if c]
    for candidate in candidates:
        try:
            found = resolve_local(candidate)
        except FileNotFoundError as exc:
            tried.append(f"{candidate} ({exc})")
            continue
        if found.is_dir():
            return found
        tried.append(f"{candidate} (not a directory)")
    raise FileNotFoundError(
        "MMaDA needs the MAGVIT-v2 image tokenizer (showlab/magvitv2) and none was found. Tried:\n  "
        + "\n  ".join(tried)
        + f"\nPut it in <checkpoint>/{VQ_SUBDIR}/, pass vq_model_path=..., or set {VQ_ENV}."
    )


__all__ = [
    "LLADA_KEY_MAP",
    "MMaDAConfig",
    "RESERVED_TOKEN_IDS",
    "resolve_vq_dir",
]
