"""MAGVIT-v2 (showlab/magvitv2) as MMaDA uses it: structure, LFQ bit order, preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from pipeline.models.checkpoint import read_state_dict
from pipeline.models.families.mmada.magvit2 import (
    MagvitConfig,
    MAGVITv2,
    check_quantizer_buffers,
    preprocess_image,
    read_magvit_config,
    save_magvit,
)

KEYS = json.loads((Path(__file__).parents[1] / "data" / "keys" / "mmada_magvitv2.json").read_text())["keys"]
BUFFERS = ("quantize.embedding", "quantize.power_vals")


def tiny_config(**overrides) -> MagvitConfig:
    base = dict(channels=32, encoder_channel_mult=(1, 2, 2, 2, 2), encoder_res_blocks=(1, 1, 1, 1, 1),
                decoder_channel_mult=(1, 1, 2, 2, 2), decoder_res_blocks=(1, 1, 1, 1, 1), attn_resolutions=(8,),
                attn_base_resolution=64, codebook_bits=6, image_size=64)
    return MagvitConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def real_meta() -> MAGVITv2:
    with torch.device("meta"):
        return MAGVITv2()


def test_published_keys_and_shapes_match_one_to_one(real_meta):
    ours = {k: list(v.shape) for k, v in real_meta.state_dict().items()}
    assert set(ours) == set(KEYS), sorted(set(ours) ^ set(KEYS))[:10]
    assert {k: v for k, v in ours.items() if KEYS[k] != v} == {}


def test_real_parameter_count_matches_published_sizes(real_meta):
    count = sum(p.numel() for p in real_meta.parameters())
    from_key_list = sum(torch.Size(s).numel() for k, s in KEYS.items() if k not in BUFFERS)
    assert count == from_key_list == 95_387_004
    # No parameter count is published. Indirect figure: the Show-o author's fp32 training
    # checkpoint `magvitv2_epoch=0-step=1600000.pth` (hub Sierkinhane/fid_weights) is listed
    # at 382 MB, i.e. about 95.5M float32 values (buffers included).
    assert abs(count * 4 / 382e6 - 1) < 0.01
    assert sum(p.numel() for p in real_meta.encoder.parameters()) == 55_439_171  # what MMaDA runs


def test_real_geometry_is_16x_down_8192_codes():
    cfg = MagvitConfig()
    assert (cfg.downsample, cfg.codebook_size, cfg.grid, cfg.tokens_per_image) == (16, 8192, 32, 1024)


def test_lfq_bit_order_msb_first_on_a_hand_computed_latent():
    model = MAGVITv2(tiny_config(codebook_bits=4))
    # Channel signs (+, -, +, +) -> bits 1011 (channel 0 is the most significant) -> 11;
    # (-, -, -, +) -> 0001 -> 1; an exact zero counts as negative: (0, +, 0, 0) -> 0100 -> 4.
    z = torch.tensor([[0.7, -0.2, 0.1, 3.0], [-1.0, -0.5, -2.0, 0.3], [0.0, 0.4, 0.0, 0.0]]).T  # (bits, 3)
    codes = model.quantize(z.reshape(1, 4, 1, 3))
    assert codes.tolist() == [[11, 1, 4]]
    assert model.quantize.power_vals.tolist() == [8, 4, 2, 1]
    # The published codebook buffer: row k is k's bits (MSB first) as +-1.
    assert model.quantize.embedding[11].tolist() == [1.0, -1.0, 1.0, 1.0]
    assert model.quantize.codes_to_bits(torch.tensor([11, 1, 4])).tolist() == [[1, 0, 1, 1], [0, 0, 0, 1], [0, 1, 0, 0]]


def test_codes_are_integers_in_range_and_decode_back_to_pixels():
    torch.manual_seed(0)
    model = MAGVITv2(tiny_config()).eval()
    pixels = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        codes = model.get_code(pixels)
        images = model.decode_code(codes)
    assert codes.dtype == torch.long and codes.shape == (3, 16)
    assert int(codes.min()) >= 0 and int(codes.max()) < 2**6
    assert images.shape == (3, 3, 64, 64)
    # Decoding starts from the +-1 latents the codes stand for.
    latents = model.quantize.codebook_entry(codes, (4, 4))
    assert torch.equal(model.quantize(latents), codes)


def test_cached_codes_skip_the_encoder_for_seen_images_until_the_weights_change(monkeypatch):
    torch.manual_seed(0)
    model = MAGVITv2(tiny_config()).eval().requires_grad_(False)
    passes = []
    model.encoder.register_forward_hook(lambda module, args, out: passes.append(args[0].shape[0]))
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = model.get_code(torch.stack([a, b]))
    passes.clear()
    assert torch.equal(model.cached_codes(torch.stack([a, a, b])), expected[[0, 0, 1]])
    assert passes == [2]  # the repeated image is encoded once
    assert torch.equal(model.cached_codes(torch.stack([b, a])), expected[[1, 0]]) and passes == [2]

    with torch.no_grad():  # an in-place change of the weights (an optimizer step, load_state_dict) empties the memo
        for p in model.encoder.parameters():
            p.mul_(-1.0)
        changed = model.get_code(torch.stack([a, b]))
    assert not torch.equal(changed, expected)
    passes.clear()
    assert torch.equal(model.cached_codes(torch.stack([a, b])), changed) and passes == [2]

    model.encoder.requires_grad_(True)  # a trainable tokenizer is never memoised
    passes.clear()
    model.cached_codes(torch.stack([a, b]))
    model.cached_codes(torch.stack([a, b]))
    assert passes == [2, 2]

    model.encoder.requires_grad_(False)
    monkeypatch.setattr("pipeline.models.families.mmada.magvit2.CODE_CACHE_LIMIT", 16 * 2)  # room for two images
    c = torch.rand(3, 64, 64) * 2 - 1
    model.cached_codes(torch.stack([a, b]))
    model.cached_codes(c[None])  # evicts a, the least recently used
    passes.clear()
    model.cached_codes(torch.stack([b, c]))
    assert passes == []
    model.cached_codes(a[None])
    assert passes == [1]


def test_straight_through_bits_are_exact_with_half_gradient():
    quantizer = MAGVITv2(tiny_config(codebook_bits=3)).quantize
    z = torch.tensor([0.5, -0.2, 0.0]).reshape(1, 3, 1, 1).requires_grad_(True)
    bits = quantizer.straight_through_bits(z)
    assert bits.tolist() == [[[1.0, 0.0, 0.0]]]
    bits.sum().backward()
    assert z.grad.flatten().tolist() == [0.5, 0.5, 0.5]


def test_save_and_load_the_published_layout(tmp_path):
    torch.manual_seed(1)
    model = MAGVITv2(tiny_config()).eval()
    save_magvit(model, tmp_path)
    assert (tmp_path / "pytorch_model.bin").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["_class_name"] == "MAGVITv2"
    loaded = MAGVITv2(read_magvit_config(tmp_path)).eval()
    loaded.load_state_dict(read_state_dict(tmp_path), strict=True)
    pixels = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.get_code(pixels), loaded.get_code(pixels))


def test_a_config_with_only_the_class_name_means_the_published_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "MAGVITv2", "_diffusers_version": "0.30.1"}))
    assert read_magvit_config(tmp_path) == MagvitConfig()


def test_buffer_check_catches_a_reversed_bit_order():
    quantizer = MAGVITv2(tiny_config(codebook_bits=4)).quantize
    good = {f"quantize.{k}": v for k, v in quantizer.state_dict().items()}
    assert check_quantizer_buffers(quantizer, good, "quantize.") == []
    reversed_order = {**good, "quantize.power_vals": torch.tensor([1, 2, 4, 8])}
    assert check_quantizer_buffers(quantizer, reversed_order, "quantize.") == ["quantize.power_vals"]
    assert check_quantizer_buffers(quantizer, {}, "quantize.") == []  # absent buffers are recomputed


def test_preprocess_crop_keeps_the_centre_and_squash_keeps_everything():
    image = Image.new("RGB", (200, 100), (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, 40, 100))  # a black band on the left fifth
    crop = preprocess_image(image, 64, "crop")
    squash = preprocess_image(image, 64, "squash")
    assert crop.shape == squash.shape == (3, 64, 64) and crop.dtype == torch.float32
    assert float(crop.min()) >= -1.0 and float(crop.max()) <= 1.0
    assert torch.allclose(crop, torch.ones_like(crop), atol=0.02)  # the band is cropped away
    assert float(squash[:, :, :8].mean()) < -0.95  # squashed, the band stays on the left
    with pytest.raises(ValueError, match="crop"):
        preprocess_image(image, 64, "stretch")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(channels=20), "divisible by norm_groups"),
        (dict(encoder_res_blocks=(1, 1)), "one entry per level"),
        (dict(image_size=72), "multiple of the 16x"),
        (dict(codebook_bits=0), "codebook_bits"),
    ],
)
def test_bad_configs_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)
