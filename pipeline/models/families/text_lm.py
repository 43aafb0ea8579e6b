"""Text-only embedders of DiffEmbed (issue 15 part 5): Dream-7B and LLaDA-8B, and Qwen2.5-7B.

Dream-7B (`Dream-org/Dream-v0-Base-7B`) has the Qwen2.5-7B shape and was initialised from it, so
both run as a transformers `Qwen2Model` under the same key names (`model.*`, `lm_head.weight`)
that Dream-VL's language model uses (dream_vl.py). LLaDA-8B (`GSAI-ML/LLaDA-8B-Base`) is the
language model MMaDA extends: a Llama-shaped stack under OLMo-style names, read through MMaDA's
`LLADA_KEY_MAP` and checked against the same LLaDA flags. Attention and pooling are per-run
options (`EncoderOptions`); the defaults follow DiffEmbed: diffusion LMs bidirectional and
mean-pooled, the AR LM causal and pooled at an appended EOS token.

Facts and where they come from:
* Qwen2.5-7B config.json (hub `Qwen/Qwen2.5-7B`): vocab 152064, hidden 3584, intermediate
  18944, 28 layers, 28 heads, 4 KV heads, q/k/v bias, untied head, rope theta 1e6; the model
  card gives 7.61B parameters (6.53B non-embedding).
* Dream-v0-Base-7B config.json (hub; modeling in github.com/DreamLM/Dream `src/diffllm/...`
  `DreamModel`): the same Qwen2.5-7B numbers, mask id 151666 (`<|mask|>`), pad/eos 151643.
* LLaDA-8B-Base config.json (hub `GSAI-ML/LLaDA-8B-Base`, code github.com/ML-GSAI/LLaDA):
  d_model 4096, 32 layers, 32 heads (no GQA), mlp_hidden_size 12288, vocab 126464, untied,
  rope theta 500000, mask 126336, eos 126081; 8.02B parameters (LLaDA paper, arXiv:2502.09992).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import LlamaConfig, LlamaModel, Qwen2Config, Qwen2Model

from pipeline.models.base import FamilySpec, Size
from pipeline.models.checkpoint import KeyMap, KeyRule
from pipeline.models.families._dream_vlm import DREAM_LOGIT_NOTE
from pipeline.models.families._text_lm import TEXT_PROMPT, TextLMEncoder
from pipeline.models.families.mmada.checkpoint import (
    LLADA_EOS_ID,
    LLADA_KEY_MAP,
    LLADA_MASK_ID,
    LLADA_TEXT_VOCAB,
    REQUIRED_LLADA,
)
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.published import checked_special_id, read_config
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

QWEN_EOS, DREAM_MASK = "<|endoftext|>", "<|mask|>"
QWEN_EOS_ID, DREAM_MASK_ID = 151643, 151666
LLADA_MASK = "<|mdm_mask|>"
_QWEN_SHAPE = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "max_position_embeddings", "rms_norm_eps")
TINY_WIDTH = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}

# Qwen2.5 and Dream store the decoder as `model.*` with transformers' Qwen2 names.
QWEN2_KEY_MAP = KeyMap(
    [
        KeyRule("model.embed_tokens.weight", "lm.embed_tokens.weight", "token embeddings"),
        KeyRule("model.layers.{n}.{rest}", "lm.layers.{n}.{rest}", "decoder layers (Qwen2 names, q/k/v with bias)"),
        KeyRule("model.norm.weight", "lm.norm.weight", "final RMSNorm"),
        KeyRule("lm_head.weight", "lm_head.weight", "untied output head, never a LoRA target"),
    ],
    drop=["model.layers.{n}.self_attn.rotary_emb.inv_freq", "model.rotary_emb.inv_freq"],
)
# LLaDA's names map to `lm.*` already (MMaDA's language model is LLaDA's).
LLADA_TEXT_KEY_MAP = LLADA_KEY_MAP


def qwen2_config(size: Size, vocab_size: int, pad: int, mask: int | None = None) -> Qwen2Config:
    """Qwen2.5-7B's decoder (also Dream-7B's, with its mask id), or the tiny one of the same class."""
    shape: dict[str, Any] = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=131072)
    if size == "tiny":
        shape.update(TINY_WIDTH, num_key_value_heads=2, max_position_embeddings=4096)
    return Qwen2Config(vocab_size=vocab_size, rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
                       rope_parameters={"rope_type": "default", "rope_theta": 1e6}, pad_token_id=pad,
                       bos_token_id=pad, eos_token_id=pad, mask_token_id=mask, **shape)


def qwen2_published(config: Qwen2Config, architecture: str, model_type: str, **extra: Any) -> dict[str, Any]:
    data = {k: getattr(config, k) for k in _QWEN_SHAPE}
    data.update(architectures=[architecture], model_type=model_type, hidden_act="silu", tie_word_embeddings=False,
                rope_theta=config.rope_parameters["rope_theta"], use_sliding_window=False, sliding_window=None,
                pad_token_id=config.pad_token_id, bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                torch_dtype="bfloat16", **extra)
    return data


def qwen2_from_published(cfg: dict[str, Any], model_types: tuple[str, ...]) -> Qwen2Config:
    if cfg.get("model_type") not in model_types:
        raise ValueError(f"config.json has model_type {cfg.get('model_type')!r}, expected one of {model_types}")
    pad = cfg.get("pad_token_id", cfg.get("eos_token_id", QWEN_EOS_ID))
    return Qwen2Config(**{k: cfg[k] for k in _QWEN_SHAPE if k in cfg}, tie_word_embeddings=False,
                       use_sliding_window=False, pad_token_id=pad, bos_token_id=cfg.get("bos_token_id", pad),
                       eos_token_id=cfg.get("eos_token_id", pad),
                       rope_parameters={"rope_type": "default", "rope_theta": cfg.get("rope_theta", 1e6)})


def _tiny_qwen_tokenizer(extra: tuple[str, ...] = ()) -> Any:
    """The offline tokenizer; its EOS is Qwen's `<|endoftext|>` so pad = eos as in Qwen2.5."""
    tokenizer = tiny_tokenizer([QWEN_EOS, *extra])
    tokenizer.eos_token = QWEN_EOS
    return tokenizer


def _text_spec(**fields: Any) -> FamilySpec:
    return FamilySpec(vision_encoder="none (text-only)", image_placeholder="", lora_targets=LM_PROJECTIONS,
                      vision_modules=(), prompt_template=TEXT_PROMPT, text_only=True, **fields)


@register
class Qwen25TextEncoder(TextLMEncoder):
    spec = _text_spec(
        name="qwen2_5_text", display_name="Qwen2.5-7B (text)", paradigm="autoregressive", attention="causal",
        pooling="eos", hub_id="Qwen/Qwen2.5-7B", backbone="Qwen2.5-7B", padding_side="left",
        published_params=7_615_616_512,
        params_source="Qwen2.5-7B model card (hub Qwen/Qwen2.5-7B): 7.61B parameters, 6.53B non-embedding; "
                      "exact count = its config.json as transformers Qwen2ForCausalLM",
        max_length=8192, notes="DiffEmbed's AR baseline: causal attention, last (EOS) token pooling")
    key_map = QWEN2_KEY_MAP
    decoder_class = Qwen2Model

    @classmethod
    def preset(cls, size: Size) -> tuple[Qwen2Config, Any]:
        tokenizer = _tiny_qwen_tokenizer()
        vocab = 152064 if size == "real" else len(tokenizer)
        pad = QWEN_EOS_ID if size == "real" else tokenizer.eos_token_id
        return qwen2_config(size, vocab, pad), tokenizer

    @classmethod
    def config_from_published(cls, directory: Path, tokenizer: Any) -> Qwen2Config:
        return qwen2_from_published(read_config(directory), ("qwen2",))

    def published_config(self) -> dict[str, Any]:
        return qwen2_published(self.lm_config, "Qwen2ForCausalLM", "qwen2")


@register
class DreamTextEncoder(TextLMEncoder):
    spec = _text_spec(
        name="dream_text", display_name="Dream-7B (text)", paradigm="diffusion", attention="bidirectional",
        pooling="mean", hub_id="Dream-org/Dream-v0-Base-7B", backbone="Dream-v0-Base-7B (Qwen2.5-7B shape)",
        padding_side="right", published_params=7_615_616_512,
        params_source="Dream 7B (arXiv:2508.15487) is initialised from Qwen2.5-7B and keeps its shape: "
                      "7.61B parameters per the Qwen2.5-7B model card; Dream-v0-Base-7B config.json",
        max_length=8192, notes=DREAM_LOGIT_NOTE)
    key_map = QWEN2_KEY_MAP
    decoder_class = Qwen2Model
    shifted_logits = True

    @classmethod
    def preset(cls, size: Size) -> tuple[Qwen2Config, Any]:
        tokenizer = _tiny_qwen_tokenizer((DREAM_MASK,))
        if size == "real":
            return qwen2_config(size, 152064, QWEN_EOS_ID, mask=DREAM_MASK_ID), tokenizer
        return qwen2_config(size, len(tokenizer), tokenizer.eos_token_id, mask=tokenizer.convert_tokens_to_ids(DREAM_MASK)), tokenizer

    @classmethod
    def config_from_published(cls, directory: Path, tokenizer: Any) -> Qwen2Config:
        cfg = read_config(directory)
        config = qwen2_from_published(cfg, ("Dream", "dream"))
        config.mask_token_id = checked_special_id(tokenizer, DREAM_MASK, cfg.get("mask_token_id", DREAM_MASK_ID),
                                                  "dream_text")
        return config

    def published_config(self) -> dict[str, Any]:
        return qwen2_published(self.lm_config, "DreamModel", "Dream", mask_token_id=self.mask_token_id)


@register
class LLaDATextEncoder(TextLMEncoder):
    spec = _text_spec(
        name="llada_text", display_name="LLaDA-8B (text)", paradigm="diffusion", attention="bidirectional",
        pooling="mean", hub_id="GSAI-ML/LLaDA-8B-Base", backbone="LLaDA-8B-Base", padding_side="right",
        published_params=8_020_000_000,
        params_source="LLaDA-8B: 8.02B total / 6.98B non-embedding (Nie et al. 2025, arXiv:2502.09992, "
                      "architecture table)",
        max_length=4096)
    key_map = LLADA_TEXT_KEY_MAP
    decoder_class = LlamaModel

    @classmethod
    def preset(cls, size: Size) -> tuple[LlamaConfig, Any]:
        tokenizer = tiny_tokenizer([LLADA_MASK])
        if size == "real":
            shape = dict(vocab_size=LLADA_TEXT_VOCAB, hidden_size=4096, intermediate_size=12288,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32)
            return llada_config(pad=LLADA_EOS_ID, mask=LLADA_MASK_ID, **shape), tokenizer
        shape = dict(vocab_size=len(tokenizer), **TINY_WIDTH, num_key_value_heads=4)
        return llada_config(pad=tokenizer.eos_token_id, mask=tokenizer.convert_tokens_to_ids(LLADA_MASK), **shape), tokenizer

    @classmethod
    def config_from_published(cls, directory: Path, tokenizer: Any) -> LlamaConfig:
        cfg = read_config(directory)
        wrong = {k: cfg.get(k) for k, v in REQUIRED_LLADA.items() if k in cfg and cfg[k] != v}
        if wrong:
            raise ValueError(f"unsupported LLaDA variant {wrong}; this loader handles LLaDA-8B's Llama-block, "
                             "SiLU-gated, RMSNorm, RoPE, untied layout")
        eos = cfg.get("eos_token_id", LLADA_EOS_ID)
        return llada_config(vocab_size=cfg.get("embedding_size") or cfg["vocab_size"], hidden_size=cfg["d_model"],
                            intermediate_size=cfg["mlp_hidden_size"], num_hidden_layers=cfg["n_layers"],
                            num_attention_heads=cfg["n_heads"],
                            num_key_value_heads=cfg.get("n_kv_heads") or cfg["n_heads"],
                            pad=cfg.get("pad_token_id", eos), mask=cfg.get("mask_token_id", LLADA_MASK_ID),
                            rope_theta=cfg.get("rope_theta", 500000.0), rms_norm_eps=cfg.get("rms_norm_eps", 1e-5),
                            max_position_embeddings=cfg.get("max_sequence_length", 4096))

    def published_config(self) -> dict[str, Any]:
        c = self.lm_config
        return {"architectures": ["LLaDAModelLM"], "model_type": "llada", "d_model": c.hidden_size,
                "n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads, "n_kv_heads": c.num_key_value_heads,
                "mlp_hidden_size": c.intermediate_size, "vocab_size": c.vocab_size, "embedding_size": c.vocab_size,
                "rope_theta": c.rope_parameters["rope_theta"], "rms_norm_eps": c.rms_norm_eps,
                "max_sequence_length": c.max_position_embeddings, "mask_token_id": self.mask_token_id,
                "eos_token_id": c.eos_token_id, "pad_token_id": c.pad_token_id, **REQUIRED_LLADA}


def llada_config(*, vocab_size: int, hidden_size: int, intermediate_size: int, num_hidden_layers: int,
                 num_attention_heads: int, num_key_value_heads: int, pad: int, mask: int, rope_theta: float = 500000.0,
                 rms_norm_eps: float = 1e-5, max_position_embeddings: int = 4096) -> LlamaConfig:
    """LLaDA's decoder as a transformers Llama stack (no biases, SiLU gate, RMSNorm, RoPE)."""
    return LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                       num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                       num_key_value_heads=num_key_value_heads, hidden_act="silu", rms_norm_eps=rms_norm_eps,
                       max_position_embeddings=max_position_embeddings, tie_word_embeddings=False,
                       attention_bias=False, mlp_bias=False, pad_token_id=pad, bos_token_id=pad, eos_token_id=pad,
                       mask_token_id=mask, rope_parameters={"rope_type": "default", "rope_theta": rope_theta})
