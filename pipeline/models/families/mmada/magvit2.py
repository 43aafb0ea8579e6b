"""MAGVIT-v2 image tokenizer as MMaDA (and Show-o) use it: `showlab/magvitv2`.

A VQGAN-style convolutional encoder (GroupNorm + SiLU residual blocks, 4 stride-2
downsamplings: 16x), a lookup-free quantizer (LFQ) and a mirror decoder. Module and
buffer names match the published checkpoint (`models/modeling_magvitv2.py` and
`models/common_modules.py` in Gen-Verse/MMaDA and showlab/Show-o), so its state dict loads
with no key conversion.

LFQ has no codebook to look up: each of the `bits` latent channels is quantised to its
sign, and the code index is the binary number those signs spell with **channel 0 as the
most significant bit** (`power_vals = 2 ** arange(bits - 1, -1, -1)`); a channel exactly at
0 counts as negative (bit 0).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

ResizeMode = Literal["crop", "squash"]
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"  # the published file name (diffusers-style ModelMixin save)


@dataclass(frozen=True)
class MagvitConfig:
    """Hyper-parameters; the defaults are the published `showlab/magvitv2` (hard-coded there)."""

    channels: int = 128
    encoder_channel_mult: tuple[int, ...] = (1, 2, 2, 4, 4)
    encoder_res_blocks: tuple[int, ...] = (4, 3, 4, 3, 4)
    decoder_channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    decoder_res_blocks: tuple[int, ...] = (4, 4, 3, 4, 3)
    # Where attention blocks go, counted from `attn_base_resolution` as the original code
    # does (256 halved per level). The published (5,) is never reached: no attention in
    # the levels, only in the middle block.
    attn_resolutions: tuple[int, ...] = (5,)
    attn_base_resolution: int = 256
    codebook_bits: int = 13  # z_channels: 2**13 = 8192 codes
    in_channels: int = 3
    out_channels: int = 3
    norm_groups: int = 32
    image_size: int = 512  # what MMaDA feeds it: 512 px -> 32x32 = 1024 codes

    def __post_init__(self) -> None:
        for name in ("encoder_channel_mult", "encoder_res_blocks", "decoder_channel_mult",
                     "decoder_res_blocks", "attn_resolutions"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if len(self.encoder_channel_mult) != len(self.encoder_res_blocks):
            raise ValueError("encoder_channel_mult and encoder_res_blocks need one entry per level")
        if len(self.decoder_channel_mult) != len(self.decoder_res_blocks):
            raise ValueError("decoder_channel_mult and decoder_res_blocks need one entry per level")
        if len(self.encoder_channel_mult) != len(self.decoder_channel_mult):
            raise ValueError("encoder and decoder need the same number of levels (same downsampling)")
        widths = [self.channels * m for m in (*self.encoder_channel_mult, *self.decoder_channel_mult)]
        if any(w % self.norm_groups for w in widths):
            raise ValueError(f"every width {widths} must be divisible by norm_groups={self.norm_groups}")
        if not 1 <= self.codebook_bits <= 24:
            raise ValueError(f"codebook_bits must be in [1, 24], got {self.codebook_bits}")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size {self.image_size} must be a multiple of the {self.downsample}x downsampling")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.encoder_channel_mult) - 1)

    @property
    def codebook_size(self) -> int:
        return 2**self.codebook_bits

    @property
    def grid(self) -> int:
        return self.image_size // self.downsample

    @property
    def tokens_per_image(self) -> int:
        return self.grid**2

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MagvitConfig:
        """Our keys from a config.json; the published one names only the class, so the
        published defaults fill in everything it leaves out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# -- building blocks (names as in the published checkpoint) -----------------------------


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = _norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # 1x1 projection of the skip path when the width changes.
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.nin_shortcut(x) if self.nin_shortcut is not None else x
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, with 1x1 convolutions as projections."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        q, k, v = (t.reshape(b, 1, c, h * w).transpose(-1, -2) for t in (self.q(normed), self.k(normed), self.v(normed)))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, 1, HW, C), scale 1/sqrt(C) as published
        return x + self.proj_out(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Asymmetric padding (right and bottom only), as the published model was trained.
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution: residual blocks, attention after each block when placed, a resampler."""

    def __init__(self, blocks: list[ResnetBlock], attns: list[AttnBlock]):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)

    def run(self, h: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn) > 0:
                h = self.attn[i](h)
        return h


class _Mid(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, groups)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, channels, groups)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    """Pixels in [-1, 1] (B, 3, H, W) -> latents (B, bits, H/16, W/16) before quantisation."""

    def __init__(self, cfg: MagvitConfig):
        super().__init__()
        g, ch = cfg.norm_groups, cfg.channels
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        width, res = ch, cfg.attn_base_resolution
        last = len(cfg.encoder_channel_mult) - 1
        for level, (mult, n_blocks) in enumerate(zip(cfg.encoder_channel_mult, cfg.encoder_res_blocks, strict=True)):
            out = ch * mult
            blocks = [ResnetBlock(width if i == 0 else out, out, g) for i in range(n_blocks)]
            attns = [AttnBlock(out, g) for _ in range(n_blocks)] if res in cfg.attn_resolutions else []
            stage = _Level(blocks, attns)
            width = out
            if level != last:
                stage.downsample = Downsample(width)
                res //= 2
            self.down.append(stage)
        self.mid = _Mid(width, g)
        self.norm_out = _norm(width, g)
        self.conv_out = nn.Conv2d(width, cfg.codebook_bits, 3, padding=1)
        self.quant_conv = nn.Conv2d(cfg.codebook_bits, cfg.codebook_bits, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = stage.run(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.conv_out(F.silu(self.norm_out(self.mid(h))))
        return self.quant_conv(h)


class Decoder(nn.Module):
    """Quantised latents (B, bits, h, w) -> pixels (B, 3, 16h, 16w); kept so the published
    checkpoint loads whole and codes can be looked at as images."""

    def __init__(self, cfg: MagvitConfig):
        super().__init__()
        g, ch, n = cfg.norm_groups, cfg.channels, len(cfg.decoder_channel_mult)
        width = ch * cfg.decoder_channel_mult[-1]
        res = cfg.attn_base_resolution // 2 ** (n - 1)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_bits, cfg.codebook_bits, 1)
        self.conv_in = nn.Conv2d(cfg.codebook_bits, width, 3, padding=1)
        self.mid = _Mid(width, g)
        stages: list[_Level] = []
        for level in reversed(range(n)):
            out = ch * cfg.decoder_channel_mult[level]
            n_blocks = cfg.decoder_res_blocks[level]
            blocks = [ResnetBlock(width if i == 0 else out, out, g) for i in range(n_blocks)]
            attns = [AttnBlock(out, g) for _ in range(n_blocks)] if res in cfg.attn_resolutions else []
            stage = _Level(blocks, attns)
            width = out
            if level != 0:
                stage.upsample = Upsample(width)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)  # index = level, as published
        self.norm_out = _norm(width, g)
        self.conv_out = nn.Conv2d(width, cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(self.post_quant_conv(z)))
        for stage in reversed(self.up):
            h = stage.run(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class LookupFreeQuantizer(nn.Module):
    """Sign quantisation of each latent channel; code = binary number of the signs, MSB first."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        # Both buffers are in the published state dict; they are constants of `bits`.
        for name, value in self.expected_buffers().items():
            self.register_buffer(name, value)

    def expected_buffers(self) -> dict[str, torch.Tensor]:
        """`power_vals` (bits,) int64, MSB first; `embedding` (2**bits, bits) of +-1."""
        table = self.codes_to_bits(torch.arange(2**self.bits)).float() * 2 - 1
        return {"power_vals": 2 ** torch.arange(self.bits - 1, -1, -1), "embedding": table}

    def codes_to_bits(self, codes: torch.Tensor) -> torch.Tensor:
        """(...,) integer codes -> (..., bits) of 0/1, channel 0 first."""
        weights = 2 ** torch.arange(self.bits - 1, -1, -1, device=codes.device)
        return (codes[..., None] // weights) % 2

    def bits_of(self, z: torch.Tensor) -> torch.Tensor:
        """(B, bits, h, w) latents -> (B, h*w, bits) long 0/1, raster order of positions."""
        return (z > 0).flatten(2).transpose(1, 2).long()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, bits, h, w) latents -> (B, h*w) codes in [0, 2**bits)."""
        return (self.bits_of(z) * self.power_vals.to(z.device)).sum(-1)

    def straight_through_bits(self, z: torch.Tensor) -> torch.Tensor:
        """Bits whose value is exact and whose gradient is the published estimator's.

        The published quantizer returns `z + (sign(z) - z).detach()` (gradient 1 w.r.t. z);
        the bit is `(that + 1) / 2`, so d bit / d z = 1/2. Shape (B, h*w, bits).
        """
        z = z.flatten(2).transpose(1, 2)  # (B, h*w, bits)
        hard = (z > 0).to(z.dtype)
        return hard + 0.5 * (z - z.detach())

    def codebook_entry(self, codes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, h*w) codes -> (B, bits, h, w) quantised latents of +-1."""
        b = codes.shape[0]
        z = self.codes_to_bits(codes).to(self.embedding.dtype) * 2 - 1  # (B, h*w, bits)
        return z.transpose(1, 2).reshape(b, self.bits, *grid)


# Codes kept by `MAGVITv2.cached_codes`: 64 MB of int32 (16k images at 1024 codes, 1M at 16).
CODE_CACHE_LIMIT = 1 << 24


class MAGVITv2(nn.Module):
    def __init__(self, cfg: MagvitConfig | None = None):
        super().__init__()
        self.config = cfg or MagvitConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.quantize = LookupFreeQuantizer(self.config.codebook_bits)
        self._codes: OrderedDict[bytes, torch.Tensor] = OrderedDict()  # pixel digest -> codes, least recent first
        self._codes_weights: tuple = ()

    def encode_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, bits, H/16, W/16) continuous latents."""
        return self.encoder(pixels)

    def fit(self, images: Sequence[Image.Image], steps: int, batch_size: int, seed: int,
            progress: bool = True) -> list[float]:
        """Train this tokenizer from scratch as an autoencoder (reconstruction + commitment + bit
        balance), then freeze it again; returns the losses. The demo's miniatures need it: the
        published MAGVIT-v2 weights cannot be downloaded here."""
        from tqdm.auto import tqdm

        pixels = torch.stack([preprocess_image(im, self.config.image_size) for im in images])  # (N, 3, S, S)
        self.train()
        params = [p for p in self.parameters() if p.is_floating_point()]
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(params, lr=1e-3)
        rng = np.random.default_rng(seed)
        losses = []
        for _ in tqdm(range(steps), desc="image tokenizer", disable=not progress):
            x = pixels[rng.choice(len(pixels), size=min(batch_size, len(pixels)), replace=False)]
            z = self.encode_latents(x)  # (B, bits, h, w)
            quantised = z + (torch.sign(z) - z).detach()  # straight through, as the published LFQ
            recon = self.decoder(quantised)
            # How often each bit is set at each position across the batch. Balanced per position,
            # not only overall: a fixed spatial pattern of bits is balanced overall yet gives every
            # image the same codes (what an overall balance let the tokenizer collapse to).
            bit_on = torch.sigmoid(4 * z).mean(dim=0)  # (bits, h, w)
            balance = ((bit_on - 0.5) ** 2).mean()
            loss = F.mse_loss(recon, x) + 0.25 * ((z - torch.sign(z).detach()) ** 2).mean() + balance
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        self.requires_grad_(False)
        self.eval()
        return losses

    def get_code(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, H/16 * W/16) codes, raster order."""
        return self.quantize(self.encode_latents(pixels))

    @torch.no_grad()
    def cached_codes(self, pixels: torch.Tensor) -> torch.Tensor:
        """`get_code` that remembers each image's codes while the encoder's weights stay as
        they are: MMaDA keeps its tokenizer frozen, so an image seen again (every epoch, every
        evaluation) costs a hash instead of an encoder pass, which at demo scale is 8x the
        language model's forward and backward. Any change to the weights empties the memo."""
        if any(p.requires_grad for p in self.encoder.parameters()):
            self._codes.clear()
            return self.get_code(pixels)
        # Every in-place write (optimizer step, load_state_dict, copy_) bumps a tensor's _version.
        weights = tuple((id(t), t._version) for t in (*self.encoder.parameters(), *self.encoder.buffers(),
                                                      *self.quantize.buffers()))
        if weights != self._codes_weights:
            self._codes.clear()
            self._codes_weights = weights
        keys = [hashlib.blake2b(image.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).digest()
                for image in pixels]
        where = {key: i for i, key in enumerate(keys)}  # each distinct image once
        missing = [k for k in where if k not in self._codes]
        if missing:
            fresh = self.get_code(pixels[[where[k] for k in missing]]).to("cpu", torch.int32)
            for key, codes in zip(missing, fresh, strict=True):
                self._codes[key] = codes
            while len(self._codes) * fresh.shape[1] > CODE_CACHE_LIMIT:
                self._codes.popitem(last=False)
        for key in keys:
            self._codes.move_to_end(key)
        return torch.stack([self._codes[k] for k in keys]).to(pixels.device, torch.long)

    def decode_code(self, codes: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """(B, T) codes -> (B, 3, H, W) pixels in about [-1, 1]; square grid unless given."""
        if grid is None:
            side = math.isqrt(codes.shape[-1])
            grid = (side, side)
        return self.decoder(self.quantize.codebook_entry(codes, grid))


# -- preprocessing ----------------------------------------------------------------------


def preprocess_image(image: Image.Image, size: int, mode: ResizeMode = "crop") -> torch.Tensor:
    """An RGB PIL image -> (3, size, size) float32 in [-1, 1], as MMaDA's `image_transform`.

    "crop": bicubic resize of the short side to `size`, then a centre crop (the default of
    MMaDA's understanding path); "squash": bicubic resize to size x size (what MMaDA uses
    for documents and charts).
    """
    if mode == "squash":
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    elif mode == "crop":
        w, h = image.size
        # Short side to `size`, long side truncated, as torchvision's Resize(int) does.
        new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        image = image.resize(new, Image.Resampling.BICUBIC)
        left = int(round((new[0] - size) / 2.0))
        top = int(round((new[1] - size) / 2.0))
        image = image.crop((left, top, left + size, top + size))
    else:
        raise ValueError(f"image resize mode must be 'crop' or 'squash', got {mode!r}")
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(array).permute(2, 0, 1).sub(0.5).div(0.5).contiguous()


# -- the published directory layout -----------------------------------------------------


def save_magvit(model: MAGVITv2, directory: str | Path) -> None:
    """config.json + pytorch_model.bin, the layout of `showlab/magvitv2`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": "MAGVITv2", **model.config.to_dict()}
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_NAME)


def read_magvit_config(directory: str | Path) -> MagvitConfig:
    path = Path(directory) / CONFIG_NAME
    data = json.loads(path.read_text()) if path.is_file() else {}
    return MagvitConfig.from_dict(data)


def check_quantizer_buffers(quantizer: LookupFreeQuantizer, state: dict[str, torch.Tensor], prefix: str) -> list[str]:
    """Names of LFQ buffers in a checkpoint that disagree with ours (a different bit order
    would show up here); buffers the checkpoint lacks are fine, they are constants."""
    bad = []
    for name, expected in quantizer.expected_buffers().items():
        got = state.get(prefix + name)
        if got is not None and (got.shape != expected.shape or not torch.equal(got.to(expected.dtype).cpu(), expected)):
            bad.append(prefix + name)
    return bad


__all__ = [
    "MAGVITv2",
    "LookupFreeQuantizer",
    "MagvitConfig",
    "check_quantizer_buffers",
    "preprocess_image",
    "read_magvit_config",
    "save_magvit",
]
