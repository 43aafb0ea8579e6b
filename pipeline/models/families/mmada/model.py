"""MMaDA as an embedding model: LLaDA-8B run bidirectionally over text and MAGVIT-v2 image codes.

An image becomes 1024 discrete codes (MAGVIT-v2, 512 px, 16x down), each code an ordinary
token id `code + len(text tokenizer)`; the prompt is MMaDA's understanding layout
`<|mmu|> <|soi|> [codes] <|eoi|>` followed by the chat-templated text. The language model is
a Llama-shaped transformer without a causal mask (transformers `LlamaModel`,
`config.is_causal=False`); its LLaDA-named weights load through `LLADA_KEY_MAP`.

Train-vision (the paper's Table 4 ablation). Discrete codes pass no gradient back to the
image tokenizer, so "unfreezing" it changes nothing unless a gradient path exists. When any
encoder parameter is trainable, we add a straight-through term whose value is exactly zero
and whose gradient is that of the multilinear extension of the code-embedding table at the
chosen corner: d emb / d bit_c = E[code with bit c set] - E[code with bit c clear]; the bit's
gradient reaches the encoder latent through the published LFQ estimator (d bit / d z = 1/2).
Embeddings are unchanged by the switch; only gradients appear.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, LlamaModel
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from pipeline.models.base import (
    KIND_IMAGE,
    Attention,
    Batch,
    EncoderOptions,
    Example,
    FamilySpec,
    Size,
    VLMEncoder,
    attention_mask_4d,
    checked_image,
    prompt_segments,
)
from pipeline.models.checkpoint import (
    CheckpointMismatchError,
    check_state_dict,
    read_state_dict,
    resolve_local,
    write_state_dict,
)
from pipeline.models.families.mmada.checkpoint import LLADA_KEY_MAP, VQ_SUBDIR, MMaDAConfig, resolve_vq_dir
from pipeline.models.families.mmada.magvit2 import (
    MagvitConfig,
    MAGVITv2,
    check_quantizer_buffers,
    preprocess_image,
    read_magvit_config,
    save_magvit,
)
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.prompting import pad_sequences, tokenize_segments
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

log = logging.getLogger(__name__)

# MMaDA's special tokens (training/prompting_utils.py) plus LLaDA's mask and chat-template tokens.
SPECIAL_TOKENS = (
    "<|soi|>", "<|eoi|>", "<|sov|>", "<|eov|>", "<|t2i|>", "<|mmu|>", "<|t2v|>", "<|v2v|>", "<|lvg|>",
    "[iPAD]", "<|r2i|>", "<|mdm_mask|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
)
# LLaDA-8B-Instruct's chat template for one user turn plus the generation prompt, as
# inference_mmu.py applies it after the image block; BOS is added by collate.
CHAT_TEMPLATE = (
    "{image}<|start_header_id|>user<|end_header_id|>\n\n{instruction} {text}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
_VQ_BUFFERS = ("vq_model.quantize.power_vals", "vq_model.quantize.embedding")


def tiny_config(tokenizer: Any) -> MMaDAConfig:
    """Same classes, toy sizes: 2-layer Llama (hidden 64) and a 5-level MAGVIT-v2 with 6-bit
    LFQ on 64 px images (16x down -> 4x4 = 16 codes); attention at the 8 px level so the
    level-attention path runs too."""
    magvit = MagvitConfig(
        channels=32, encoder_channel_mult=(1, 2, 2, 2, 2), encoder_res_blocks=(1, 1, 1, 1, 1),
        decoder_channel_mult=(1, 1, 2, 2, 2), decoder_res_blocks=(1, 1, 1, 1, 1), attn_resolutions=(8,),
        attn_base_resolution=64, codebook_bits=6, image_size=64,
    )
    offset = len(tokenizer)  # as MMaDA: image codes follow the text vocabulary
    ids = tokenizer.convert_tokens_to_ids
    return MMaDAConfig(
        hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=4, intermediate_size=128,
        vocab_size=offset + magvit.codebook_size, text_vocab_size=offset, image_token_offset=offset,
        mask_token_id=ids("<|mdm_mask|>"), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        mmu_token_id=ids("<|mmu|>"), soi_token_id=ids("<|soi|>"), eoi_token_id=ids("<|eoi|>"), magvit=magvit,
    )


class _CodeEmbeddingGradient(torch.autograd.Function):
    """Zero in the forward pass; in the backward pass, the gradient of each straight-through
    bit is <upstream, E[code | bit set] - E[code | bit clear]>, computed one bit at a time so
    no (N, T, bits, D) tensor is kept."""

    @staticmethod
    def forward(ctx: Any, bits: torch.Tensor, ids_on: torch.Tensor, ids_off: torch.Tensor,
                table: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids_on, ids_off)
        ctx.table, ctx.bits_dtype = table.detach(), bits.dtype
        return table.new_zeros(*bits.shape[:-1], table.shape[-1])  # (N, T, D)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        ids_on, ids_off = ctx.saved_tensors  # (N, T, bits) each
        table = ctx.table
        upstream = grad_out.float()  # accumulate in fp32 even when the LM runs in bf16
        grads = [((table[ids_on[..., c]] - table[ids_off[..., c]]).float() * upstream).sum(-1)
                 for c in range(ids_on.shape[-1])]
        return torch.stack(grads, dim=-1).to(ctx.bits_dtype), None, None, None


@register
class MMaDAEncoder(VLMEncoder):
    image_tokens_are_codes = True  # MAGVIT-v2 codes are ids in the LM's vocabulary
    spec = FamilySpec(
        name="mmada",
        display_name="MMaDA-8B",
        paradigm="diffusion",
        attention="bidirectional",
        pooling="mean",
        hub_id="Gen-Verse/MMaDA-8B-Base",
        vision_encoder="MAGVIT-v2 (LFQ, 8192 codes)",
        backbone="LLaDA-8B",
        image_placeholder="<|soi|>",
        padding_side="right",  # LLaDA takes no position ids: pad on the right, mask the mean
        lora_targets=LM_PROJECTIONS,
        vision_modules=("vq_model",),
        published_params=8_020_000_000,
        params_exclude=("vq_model.",),  # the LLaDA paper's 8.02B counts the LM; MAGVIT-v2 is its own checkpoint
        params_source=(
            "LLaDA-8B backbone: 8.02B total / 6.98B non-embedding (Nie et al. 2025, arXiv:2502.09992, "
            "architecture table); MMaDA's cards say only '8B'. MMaDA adds 8192 image-code rows to the "
            "embedding and head (+67.1M, derived). MAGVIT-v2 (separate checkpoint) has no published count "
            "(~95.4M: its 382 MB fp32 file)."
        ),
        max_length=4096,  # LLaDA max_sequence_length; an image takes 1027 of it
        prompt_template=CHAT_TEMPLATE,
        paper_name="MMaDA",
        notes="Image tokenizer frozen by default (as in MMaDA); train_vision adds a straight-through path.",
    )

    def __init__(self, config: MMaDAConfig, tokenizer: Any, options: EncoderOptions | None = None,
                 attn_implementation: str = "sdpa"):
        super().__init__(options)
        self.mmada_config = config  # not `config`: peft reads `model.config` as a transformers config
        self.tokenizer = tokenizer
        self.mask_token_id = config.mask_token_id
        self.lm = LlamaModel(config.llama_config(attn_implementation))
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.vq_model = MAGVITv2(config.magvit)
        self.vq_model.requires_grad_(False)  # frozen, as MMaDA trains it
        self._attention: Attention = "bidirectional"
        self.apply_attention(self.options.attention)

    # -- building and loading ---------------------------------------------------------
    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> MMaDAEncoder:
        """Random weights. "real": MMaDA-8B shapes with the real special ids and an offline
        stand-in tokenizer for the text (no hub here); "tiny": toy sizes, same classes."""
        if size not in ("real", "tiny"):
            raise ValueError(f"size must be 'real' or 'tiny', got {size!r}")
        torch.manual_seed(seed)
        tokenizer = tiny_tokenizer(SPECIAL_TOKENS)
        config = MMaDAConfig() if size == "real" else tiny_config(tokenizer)
        return cls(config, tokenizer, options)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device | None = None,
        options: EncoderOptions | None = None,
        vq_model_path: str | None = None,
    ) -> MMaDAEncoder:
        """MMaDA's LLaDA-layout weights + the MAGVIT-v2 weights (see `resolve_vq_dir` for
        where those are looked for). The LM runs in `dtype`; the image tokenizer stays in
        float32, because its codes are signs of latents near zero."""
        root = resolve_local(path_or_id)
        config_path = root / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{root} has no config.json; pass an MMaDA checkpoint directory")
        tokenizer = AutoTokenizer.from_pretrained(str(root))
        vq_dir = resolve_vq_dir(root, vq_model_path)
        config = MMaDAConfig.from_published(json.loads(config_path.read_text()), tokenizer, read_magvit_config(vq_dir))
        log.info("MMaDA: image ids start at %d; MAGVIT-v2 from %s",
                 config.image_token_offset, vq_dir)
        with torch.device("meta"):  # no 8B random init; the weights are assigned below
            model = cls(config, tokenizer, options, attn_implementation=_attn_implementation(device, dtype))
        model.load_original(read_state_dict(root), read_state_dict(vq_dir), dtype)
        if device is not None:
            model.to(device)
        return model.eval()

    def load_original(self, lm_state: dict[str, torch.Tensor], vq_state: dict[str, torch.Tensor],
                      dtype: torch.dtype) -> None:
        """Assign published-layout weights; any missing, unexpected or misshapen key raises
        CheckpointMismatchError listing all of them."""
        ours = LLADA_KEY_MAP.convert(lm_state)
        ours = {k: v.to(dtype) for k, v in ours.items()}
        ours.update({f"vq_model.{k}": (v.float() if v.is_floating_point() else v) for k, v in vq_state.items()})
        check_state_dict(self.state_dict(), ours, optional=_VQ_BUFFERS)
        bad = check_quantizer_buffers(self.vq_model.quantize, vq_state, "quantize.")
        if bad:
            raise CheckpointMismatchError([], [], [f"{k}: values differ from LFQ's MSB-first codes" for k in bad])
        for name, value in self.vq_model.quantize.expected_buffers().items():
            ours.setdefault(f"vq_model.quantize.{name}", value)
        self.load_state_dict(ours, strict=True, assign=True)
        self.lm.rotary_emb = LlamaRotaryEmbedding(self.lm.config)  # non-persistent: rebuild off meta
        self.vq_model.requires_grad_(False)

    def image_tokenizer(self) -> MAGVITv2:
        return self.vq_model

    def save_original(self, directory: str) -> None:
        """LLaDA-named sharded safetensors + MMaDA config.json + tokenizer in `directory`, and
        MAGVIT-v2 (config.json + pytorch_model.bin) in `directory/magvitv2/`."""
        out = Path(directory)
        state = self.state_dict()
        lm_state = {k: v for k, v in state.items() if not k.startswith("vq_model.")}
        if any("lora_" in k or "base_layer" in k for k in lm_state):
            raise ValueError("save_original writes the published layout; merge or drop LoRA adapters first")
        write_state_dict(LLADA_KEY_MAP.revert(lm_state), out)
        (out / "config.json").write_text(json.dumps(self.mmada_config.to_published(), indent=2))
        self.tokenizer.save_pretrained(str(out))
        save_magvit(self.vq_model, out / VQ_SUBDIR)

    # -- inputs -------------------------------------------------------------------------
    def collate(self, examples: Sequence[Example]) -> Batch:
        if not examples:
            raise ValueError("collate needs at least one example")
        cfg = self.mmada_config
        pixels = [preprocess_image(checked_image(ex.image), cfg.magvit.image_size, cfg.image_resize)
                  for ex in examples if ex.image is not None]
        codes = self.image_codes(torch.stack(pixels)) if pixels else None  # (N, T)
        rows, kinds, n_image = [], [], 0
        for ex in examples:
            prefix = [cfg.bos_token_id]
            if ex.image is not None:
                assert codes is not None
                image_ids = (codes[n_image] + cfg.image_token_offset).tolist()
                prefix = [cfg.mmu_token_id, cfg.soi_token_id, *image_ids, cfg.eoi_token_id, *prefix]
                n_image += 1
            text = [s for s in prompt_segments(ex, self.spec.prompt_template) if s.kind != "image"]
            ids, kind = tokenize_segments(self.tokenizer, text, _no_images, self.options.max_length,
                                          self.options.on_overflow, prefix_ids=prefix)
            if ex.image is not None:
                kind[2 : 2 + cfg.magvit.tokens_per_image] = [KIND_IMAGE] * cfg.magvit.tokens_per_image
            rows.append(ids)
            kinds.append(kind)
        batch = pad_sequences(rows, kinds, cfg.pad_token_id, side="right")
        if pixels and self.vision_trainable():
            batch["pixel_values"] = torch.stack(pixels)  # (N, 3, S, S): the gradient path needs them
        return batch

    @torch.no_grad()
    def image_codes(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] -> (N, T) MAGVIT-v2 codes on the CPU."""
        ref = next(self.vq_model.parameters())
        return self.vq_model.cached_codes(pixels.to(ref.device, ref.dtype)).cpu()

    def vision_trainable(self) -> bool:
        return any(p.requires_grad for p in self.vq_model.encoder.parameters())

    # -- the model ----------------------------------------------------------------------
    def hidden_states(self, batch: Batch) -> torch.Tensor:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        embeds = self.lm.embed_tokens(ids)  # (B, L, D)
        if "pixel_values" in batch and torch.is_grad_enabled() and self.vision_trainable():
            embeds = embeds + self._code_gradient_path(batch, embeds)
        if self._attention == "block":
            attn = attention_mask_4d(mask, "block", embeds.dtype, self.options.block_size)  # (B, 1, L, L)
        else:
            attn = mask  # 2-D: bidirectional or causal per lm.config.is_causal, padding masked
        return self.lm(inputs_embeds=embeds, attention_mask=attn).last_hidden_state

    def _code_gradient_path(self, batch: Batch, embeds: torch.Tensor) -> torch.Tensor:
        """(B, L, D) zeros whose gradient flows to the image encoder (see the module docstring)."""
        cfg = self.mmada_config
        per_image = cfg.magvit.tokens_per_image
        image_pos = batch["token_kinds"] == KIND_IMAGE  # (B, L)
        pixels = batch["pixel_values"]
        if int(image_pos.sum()) != pixels.shape[0] * per_image:
            raise ValueError("pixel_values do not match the image positions of the batch; build it with collate")
        ref = next(self.vq_model.parameters())
        bits = self.vq_model.quantize.straight_through_bits(self.vq_model.encode_latents(pixels.to(ref.device, ref.dtype)))
        codes = batch["input_ids"][image_pos].view(-1, per_image) - cfg.image_token_offset  # (N, T)
        is_code = (codes >= 0) & (codes < cfg.magvit.codebook_size)  # a masked position has no code
        codes = codes.clamp(0, cfg.magvit.codebook_size - 1)[..., None]
        power = self.vq_model.quantize.power_vals.to(codes.device)
        ids_on = (codes | power) + cfg.image_token_offset  # (N, T, bits)
        ids_off = (codes & ~power) + cfg.image_token_offset
        term = _CodeEmbeddingGradient.apply(bits * is_code[..., None], ids_on, ids_off, self.lm.embed_tokens.weight)
        where = image_pos.nonzero(as_tuple=True)
        return torch.zeros_like(embeds).index_put(where, term.reshape(-1, term.shape[-1]).to(embeds.dtype))

    def input_embeddings(self) -> nn.Embedding:
        return self.lm.embed_tokens

    def output_logits(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, D) -> (B, L, V) over text ids and image-code ids (or (N, V) at `positions`)."""
        return self.lm_head(hidden if positions is None else hidden[positions])

    def apply_attention(self, attention: Attention) -> None:
        if attention not in ("causal", "bidirectional", "block"):
            raise ValueError(f"attention must be 'causal', 'bidirectional' or 'block', got {attention!r}")
        self.lm.config.is_causal = attention == "causal"
        if attention == "block" and self.lm.config._attn_implementation == "flash_attention_2":
            log.warning("block attention needs an explicit 4-D mask; switching flash_attention_2 to sdpa")
            self.lm.set_attn_implementation("sdpa")
        self._attention = attention

    def lora_target_modules(self, train_vision: bool = False) -> list[str]:
        """The LM's projections in its blocks (never lm_head); with train_vision also every
        convolution of the MAGVIT-v2 encoder (it has no Linear layers; peft adapts Conv2d)."""
        names = super().lora_target_modules(train_vision=False)
        if train_vision:
            names += [f"vq_model.encoder.{n}" for n, m in self.vq_model.encoder.named_modules() if isinstance(m, nn.Conv2d)]
        return names


def _no_images(_: int) -> list[int]:
    raise AssertionError("MMaDA places the image block itself, before the chat template")


def _attn_implementation(device: str | torch.device | None, dtype: torch.dtype) -> str:
    on_cuda = device is not None and torch.device(device).type == "cuda"
    if on_cuda and dtype in (torch.bfloat16, torch.float16) and importlib.util.find_spec("flash_attn"):
        return "flash_attention_2"
    return "sdpa"
