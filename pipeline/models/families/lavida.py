"""LaViDa-Dream (jacklishufan/LaViDa) as an embedding encoder.

LLaVA-NeXT-style model `LlavaDreamForMaskedDiffusion` (model_type `llava_dream`), facts read
from the public repository (paths relative to it):

* vision tower: SigLIP so400m/14-384 with its last encoder layer deleted and the pooling
  head replaced by Identity; features are the last kept layer's output *before*
  `post_layernorm` (llava/model/multimodal_encoder/siglip_encoder.py, `load_model`,
  `forward`). 27x27 = 729 patches of width 1152 per 384 px view.
* projector `mlp2x_gelu` (Linear 1152->3584, GELU, Linear), applied per patch *before* the
  2x2 pooling; pooling is bilinear interpolation 27x27 -> 14x14 = 196 tokens per view
  (llava/model/llava_arch.py `encode_images`, `get_2dPool`; `mm_spatial_pool_mode`
  default "bilinear" in llava/train/train.py and eval/lmms_eval/models/llava_dream.py).
* anyres: grid pinpoints [(384,768),(768,384),(768,768),(1152,384),(384,1152)], so at most
  1 base + 4 grid views; the base view is the image resized (squashed) to 384x384; the
  grid features are unpadded to the image's aspect ratio and each row ends with the learned
  `image_newline` vector (`spatial_unpad`; scripts/train/exps/cluster/llada-hd-dream-s2.sh).
* language model: Dream-7B (Qwen2.5-7B shape), bidirectional, mask id 151666, eos/pad 151643.
  `<image>` is the placeholder id -200 in the prompt, replaced by the image features.
  LaViDa's own forward passes no attention mask; we mask padding.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from transformers import (
    Qwen2Config,
    Qwen2Model,
    SiglipImageProcessorPil,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from pipeline.models.base import Batch, EncoderOptions, Example, FamilySpec, Size, checked_image
from pipeline.models.checkpoint import KeyMap, KeyRule
from pipeline.models.families._dream_vlm import DREAM_LOGIT_NOTE, DreamVLMEncoder
from pipeline.models.families._vision_parts import (
    TiledImage,
    anyres_token_count,
    pool_views,
    pooled_side,
    tile_image,
    unpad_bounds,
)
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.published import checked_special_id, read_config
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

log = logging.getLogger(__name__)

SO400M = "google/siglip-so400m-patch14-384"
# The published grid in units of views: (columns, rows), i.e. 384x768, 768x384, ... at 384 px.
GRID_UNITS = ((1, 2), (2, 1), (2, 2), (3, 1), (1, 3))
MASK_TOKEN, PAD_TOKEN = "<|mask|>", "<|endoftext|>"


@dataclass
class LaViDaConfig:
    """Everything needed to build the model; `from_published` / `to_published` convert to
    and from the checkpoint's config.json."""

    text: Qwen2Config
    vision: SiglipVisionConfig  # as kept: the published tower has one layer fewer than SigLIP
    grid_pinpoints: tuple[tuple[int, int], ...]  # (width, height) in pixels
    vision_tower_name: str = SO400M
    pool_mode: str = "bilinear"
    pool_stride: int = 2
    mask_token_id: int = 151666
    pad_token_id: int = 151643
    image_placeholder_id: int = -200  # LLaVA's IMAGE_TOKEN_INDEX

    def __post_init__(self) -> None:
        view = self.vision.image_size  # 384 px / 14 px patches -> 27 per side (the conv drops the rest)
        bad = [p for p in self.grid_pinpoints if p[0] % view or p[1] % view]
        if not self.grid_pinpoints or bad:
            raise ValueError(f"grid pinpoints must be non-empty multiples of the {view} px view, got {bad or 'none'}")
        if self.pool_mode not in ("bilinear", "average") or self.pool_stride < 1:
            raise ValueError(f"unsupported pooling {self.pool_mode!r} / stride {self.pool_stride}")

    @property
    def pooled_side(self) -> int:
        return pooled_side(self.vision.image_size // self.vision.patch_size, self.pool_stride, self.pool_mode)

    # -- presets -----------------------------------------------------------------------
    @classmethod
    def real(cls) -> LaViDaConfig:
        return cls(text=_dream_7b(), vision=_so400m_kept(), grid_pinpoints=tuple((c * 384, r * 384) for c, r in GRID_UNITS))

    @classmethod
    def tiny(cls, tokenizer: Any) -> LaViDaConfig:
        pad = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
        text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, rope_theta=1e6,
                           tie_word_embeddings=False, pad_token_id=pad, bos_token_id=pad, eos_token_id=pad)
        vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                    image_size=56, patch_size=14, vision_use_head=False)
        return cls(text=text, vision=vision, grid_pinpoints=tuple((c * 56, r * 56) for c, r in GRID_UNITS),
                   vision_tower_name="vlmembed/tiny-siglip", mask_token_id=tokenizer.convert_tokens_to_ids(MASK_TOKEN),
                   pad_token_id=pad)

    # -- published config.json ---------------------------------------------------------
    def to_published(self, max_length: int) -> dict[str, Any]:
        t = self.text
        out = {
            "architectures": ["LlavaDreamForMaskedDiffusion"], "model_type": "llava_dream",
            "vocab_size": t.vocab_size, "hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers, "num_attention_heads": t.num_attention_heads,
            "num_key_value_heads": t.num_key_value_heads, "hidden_act": t.hidden_act,
            "max_position_embeddings": t.max_position_embeddings, "rms_norm_eps": t.rms_norm_eps,
            "rope_theta": t.rope_parameters["rope_theta"], "rope_scaling": None, "tie_word_embeddings": False,
            "mask_token_id": self.mask_token_id, "pad_token_id": self.pad_token_id,
            "bos_token_id": t.bos_token_id, "eos_token_id": t.eos_token_id,
            "mm_vision_tower": self.vision_tower_name, "mm_hidden_size": self.vision.hidden_size,
            "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
            "mm_patch_merge_type": "spatial_unpad", "image_aspect_ratio": "anyres",
            "image_grid_pinpoints": [list(p) for p in self.grid_pinpoints],
            "mm_spatial_pool_mode": self.pool_mode, "mm_spatial_pool_stride": self.pool_stride,
            "use_mm_proj": True, "tokenizer_model_max_length": max_length, "tokenizer_padding_side": "right",
        }
        if self.vision_tower_name != SO400M:  # the real tower's shape comes from its hub name
            v = self.vision
            out["vision_config"] = {k: getattr(v, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                               "num_attention_heads", "image_size", "patch_size",
                                                               "hidden_act", "layer_norm_eps")}
        return out

    @classmethod
    def from_published(cls, cfg: dict[str, Any]) -> LaViDaConfig:
        if cfg.get("model_type") != "llava_dream":
            raise ValueError(f"config.json has model_type {cfg.get('model_type')!r}, expected 'llava_dream' "
                             "(LaViDa with the Dream backbone); LaViDa-LLaDA checkpoints are not this family")
        for key, want in (("mm_projector_type", "mlp2x_gelu"), ("mm_patch_merge_type", "spatial_unpad"),
                          ("image_aspect_ratio", "anyres")):
            if cfg.get(key, want) != want:
                raise NotImplementedError(f"LaViDa checkpoint with {key}={cfg[key]!r}; only {want!r} is implemented")
        text = Qwen2Config(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                           intermediate_size=cfg["intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
                           num_attention_heads=cfg["num_attention_heads"], num_key_value_heads=cfg["num_key_value_heads"],
                           hidden_act=cfg.get("hidden_act", "silu"), rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
                           max_position_embeddings=cfg.get("max_position_embeddings", 131072),
                           rope_theta=cfg.get("rope_theta", 1e6), tie_word_embeddings=False,
                           pad_token_id=cfg.get("pad_token_id", 151643), bos_token_id=cfg.get("bos_token_id", 151643),
                           eos_token_id=cfg.get("eos_token_id", 151643))
        name = cfg.get("mm_vision_tower", SO400M)
        if "vision_config" in cfg:
            vision = SiglipVisionConfig(**cfg["vision_config"], vision_use_head=False)
        elif "siglip" in name.lower():  # LaViDa's builder: any SigLIP name gets the so400m shape
            vision = _so400m_kept()
        else:
            raise NotImplementedError(f"vision tower {name!r}: only SigLIP ({SO400M}) is implemented")
        if cfg.get("mm_hidden_size", vision.hidden_size) != vision.hidden_size:
            raise ValueError(f"mm_hidden_size {cfg['mm_hidden_size']} does not match the tower's {vision.hidden_size}")
        return cls(text=text, vision=vision, grid_pinpoints=_parse_pinpoints(cfg["image_grid_pinpoints"]),
                   vision_tower_name=name, pool_mode=cfg.get("mm_spatial_pool_mode", "bilinear"),
                   # get_2dPool is called without a stride for images, so it is always 2 there
                   pool_stride=2,
                   mask_token_id=cfg.get("mask_token_id", 151666), pad_token_id=cfg.get("pad_token_id", 151643))


def _dream_7b() -> Qwen2Config:
    """Dream-v0-Instruct-7B: Qwen2.5-7B shape, rope theta 1e6, untied head."""
    return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=131072,
                       rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=False,
                       pad_token_id=151643, bos_token_id=151643, eos_token_id=151643)


def _so400m_kept() -> SiglipVisionConfig:
    """SigLIP so400m/14-384 as LaViDa keeps it: 26 of its 27 layers, no pooling head."""
    return SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
                              image_size=384, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
                              vision_use_head=False)


def _parse_pinpoints(value: Any) -> tuple[tuple[int, int], ...]:
    if isinstance(value, str):
        if "x" in value:
            raise NotImplementedError(f"range-style grid pinpoints {value!r} are not used by LaViDa")
        value = ast.literal_eval(value)
    return tuple((int(w), int(h)) for w, h in value)


KEY_MAP = KeyMap(
    [
        KeyRule("model.embed_tokens.weight", "language_model.embed_tokens.weight", "Dream token embeddings"),
        KeyRule("model.layers.{n}.{rest}", "language_model.layers.{n}.{rest}", "Dream decoder layers (Qwen2 names)"),
        KeyRule("model.norm.weight", "language_model.norm.weight", "final RMSNorm"),
        KeyRule("lm_head.weight", "lm_head.weight", "untied output head"),
        KeyRule("model.vision_tower.vision_tower.vision_model.{rest}", "vision_tower.{rest}",
                "SigLIP so400m (26 layers, no head; post_layernorm kept but unused)"),
        KeyRule("model.mm_projector.0.{rest}", "projector.linear_1.{rest}", "mlp2x_gelu, first linear"),
        KeyRule("model.mm_projector.2.{rest}", "projector.linear_2.{rest}", "mlp2x_gelu, second linear"),
        KeyRule("model.image_newline", "image_newline", "vector closing each row of the anyres grid"),
    ],
    drop=["model.layers.{n}.self_attn.rotary_emb.inv_freq", "model.rotary_emb.inv_freq"],
)


@register
class LaViDaEncoder(DreamVLMEncoder):
    spec = FamilySpec(
        name="lavida",
        display_name="LaViDa-Dream",
        paper_name="LaViDa",
        paradigm="diffusion",
        attention="bidirectional",
        pooling="mean",
        hub_id="jacklishufan/lavida-dream-v1.0-instruct",
        vision_encoder="SigLIP so400m/14-384 (26 of 27 layers) + mlp2x_gelu + 2x2 bilinear pool: 196 tokens/view, anyres <= 5 views",
        backbone="Dream-v0-Instruct-7B (Qwen2.5-7B shape), bidirectional",
        image_placeholder="<image>",
        padding_side="right",
        lora_targets=LM_PROJECTIONS,
        vision_modules=("vision_tower",),
        trains_vision=True,  # VLM2Vec's default LoRA targets reach the tower (Sec. 6 RQ3)
        vision_lora_targets=("q_proj", "k_proj", "v_proj", "out_proj"),  # SigLIP attention
        published_params=8_020_000_000,
        params_source=(
            "no published total: sum of published component sizes, Dream-v0-Instruct-7B 7.62B "
            "(hub safetensors size; 7,615,616,512 as a transformers Qwen2 model) + SigLIP-400M "
            "(LaViDa paper, Sec. 3.1); the paper's Table 1 lists LaViDa-D as '7B' (its LM class)"
        ),
        max_length=4096,
        prompt_template="{image}\n{instruction} {text}",
        notes=DREAM_LOGIT_NOTE,
    )
    key_map = KEY_MAP

    def __init__(self, config: LaViDaConfig, tokenizer: Any, options: EncoderOptions | None = None,
                 implementation: str = "sdpa") -> None:
        super().__init__(config, tokenizer, options, implementation)
        self.vision_tower = SiglipVisionModel(config.vision)
        self.image_newline = nn.Parameter(torch.empty(config.text.hidden_size))
        self.language_model = Qwen2Model(config.text)
        nn.init.normal_(self.image_newline, std=config.text.hidden_size ** -0.5)  # LLaVA's init
        view = config.vision.image_size
        self.image_processor = SiglipImageProcessorPil(size={"height": view, "width": view}, image_mean=[0.5] * 3,
                                                       image_std=[0.5] * 3)
        self.apply_attention(self.options.attention)

    @classmethod
    def preset(cls, size: Size) -> tuple[LaViDaConfig, Any]:
        tokenizer = tiny_tokenizer([PAD_TOKEN, MASK_TOKEN])
        return (LaViDaConfig.real() if size == "real" else LaViDaConfig.tiny(tokenizer)), tokenizer

    @classmethod
    def config_from_published(cls, directory: Path, tokenizer: Any) -> LaViDaConfig:
        config = LaViDaConfig.from_published(read_config(directory))
        checked_special_id(tokenizer, MASK_TOKEN, config.mask_token_id, "lavida")
        return config

    def published_config(self) -> dict[str, Any]:
        return self.config.to_published(self.spec.max_length)

    # -- inputs ------------------------------------------------------------------------
    def tile(self, image: Image.Image) -> TiledImage:
        return tile_image(checked_image(image), self.config.vision.image_size, self.config.grid_pinpoints)

    def collate(self, examples: Sequence[Example]) -> Batch:
        tiled = [self.tile(ex.image) if ex.image is not None else None for ex in examples]
        side = self.config.pooled_side
        counts = [anyres_token_count(side, t.rows, t.cols, t.size) if t else 0 for t in tiled]
        batch = self.text_batch(examples, counts)
        images = [t for t in tiled if t is not None]
        if images:
            views = [view for t in images for view in t.views]
            batch["pixel_values"] = self.image_processor(images=views, return_tensors="pt")["pixel_values"]  # (V, 3, S, S)
            batch["image_views"] = torch.tensor([len(t.views) for t in images])
            batch["image_grid"] = torch.tensor([[t.rows, t.cols] for t in images])
            batch["image_sizes"] = torch.tensor([list(t.size) for t in images])
        return batch

    # -- vision forward ----------------------------------------------------------------
    def image_features(self, batch: Batch) -> torch.Tensor:
        tower = self.vision_tower
        pixels = batch["pixel_values"].to(tower.embeddings.patch_embedding.weight.dtype)
        # The last kept layer's output, without post_layernorm (as LaViDa reads hidden_states[-1]).
        patches = tower.encoder(inputs_embeds=tower.embeddings(pixels)).last_hidden_state  # (V, P, Dv)
        views = pool_views(self.projector(patches), self.config.pool_stride, self.config.pool_mode)  # (V, p*p, D)
        out, start = [], 0
        for count, (rows, cols), size in zip(batch["image_views"].tolist(), batch["image_grid"].tolist(),
                                             batch["image_sizes"].tolist(), strict=True):
            out.append(self._arrange(views[start:start + count], rows, cols, tuple(size)))
            start += count
        return torch.cat(out)

    def _arrange(self, views: torch.Tensor, rows: int, cols: int, size: tuple[int, int]) -> torch.Tensor:
        """(1 + rows*cols, p*p, D) -> tokens: base view, then the unpadded grid row by row,
        each row closed by `image_newline`."""
        side, dim = self.config.pooled_side, views.shape[-1]
        base = views[0]  # (p*p, D)
        grid = views[1:].view(rows, cols, side, side, dim).permute(4, 0, 2, 1, 3)  # (D, rows, p, cols, p)
        grid = grid.reshape(dim, rows * side, cols * side)
        top, bottom, left, right = unpad_bounds(rows * side, cols * side, size)
        grid = grid[:, top:bottom, left:right]  # (D, h, w)
        newline = self.image_newline.to(grid.dtype)[:, None, None].expand(dim, grid.shape[1], 1)
        grid = torch.cat([grid, newline], dim=2).flatten(1, 2).transpose(0, 1)  # (h*(w+1), D)
        return torch.cat([base, grid], dim=0)
