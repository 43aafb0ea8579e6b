"""MMaDA as an embedding encoder: sizes, key maps, round trip, attention, batching, LoRA,
the train-vision gradient path and bad input. CPU, tiny configs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import LlamaModel

from pipeline.models.base import (
    KIND_IMAGE,
    KIND_PAD,
    EmptyExampleError,
    EncoderOptions,
    Example,
    ImageError,
    InputTooLongError,
)
from pipeline.models.checkpoint import CheckpointMismatchError
from pipeline.models.families.mmada.checkpoint import LLADA_KEY_MAP, VQ_ENV, MMaDAConfig, resolve_vq_dir
from pipeline.models.families.mmada.model import MMaDAEncoder, _CodeEmbeddingGradient
from pipeline.models.lora import LoraSettings, apply_lora
from pipeline.models.registry import get_family

KEYS = Path(__file__).parents[1] / "data" / "keys"
LM_KEYS = json.loads((KEYS / "mmada.json").read_text())["keys"]
VQ_KEYS = json.loads((KEYS / "mmada_magvitv2.json").read_text())["keys"]


def picture(seed: int, size: tuple[int, int] = (80, 64)) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(size[1], size[0], 3, generator=g) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels, mode="RGB")


EXAMPLES = [
    Example("Represent the given image.", image=picture(0)),
    Example("Find the caption", text="a dog running on the beach with a red ball"),
    Example("Answer", text="what colour is it?", image=picture(1, (50, 90))),
    Example("Query", text="short"),
    Example("", image=picture(2)),
]


@pytest.fixture(scope="module")
def tiny() -> MMaDAEncoder:
    return MMaDAEncoder.build("tiny", seed=0).eval()


@pytest.fixture(scope="module")
def real_meta() -> MMaDAEncoder:
    with torch.device("meta"):
        return MMaDAEncoder.build("real")


# -- facts and sizes --------------------------------------------------------------------


def test_registered_with_the_papers_facts():
    spec = get_family("mmada").spec
    assert (spec.paradigm, spec.attention, spec.pooling, spec.paper_name) == ("diffusion", "bidirectional", "mean", "MMaDA")
    assert spec.hub_id == "Gen-Verse/MMaDA-8B-Base" and spec.backbone == "LLaDA-8B"
    assert spec.vision_encoder == "MAGVIT-v2 (LFQ, 8192 codes)" and spec.padding_side == "right"


def test_real_language_model_size_is_within_1_percent_of_published(real_meta):
    parts = real_meta.count_parameters().by_part
    lm = parts["lm"] + parts["lm_head"]
    assert lm == 8_082_690_048  # LLaDA-8B + 2 x 8192 x 4096 image-code rows
    assert abs(lm / real_meta.spec.published_params - 1) < 0.01  # 8.02B, LLaDA paper
    assert parts["vq_model"] == 95_387_004


def test_llada_shaped_backbone_matches_the_llada_paper():
    # LLaDA paper (Nie et al. 2025): 8.02B total, 6.98B without embeddings.
    config = MMaDAConfig().llama_config()
    config.vocab_size = 126_464  # LLaDA-8B before MMaDA added the image codes
    with torch.device("meta"):
        body = LlamaModel(config)
    embeddings = 2 * 126_464 * 4096  # input embedding + untied head
    total = sum(p.numel() for p in body.parameters()) + 126_464 * 4096
    assert total == 8_015_581_184
    assert abs(total / 8.02e9 - 1) < 0.001 and abs((total - embeddings) / 6.98e9 - 1) < 0.001


def test_published_lm_keys_map_one_to_one_with_shapes(real_meta):
    ours = {k: tuple(v.shape) for k, v in real_meta.state_dict().items() if not k.startswith("vq_model.")}
    converted = LLADA_KEY_MAP.convert({k: torch.empty(0) for k in LM_KEYS})
    assert len(converted) == len(LM_KEYS) == len(ours) == 291
    assert set(converted) == set(ours)
    mapped = {LLADA_KEY_MAP.to_ours(k): tuple(shape) for k, shape in LM_KEYS.items()}
    assert mapped == ours
    assert {LLADA_KEY_MAP.to_original(k) for k in ours} == set(LM_KEYS)


def test_published_vq_keys_are_our_image_tokenizer_keys(real_meta):
    ours = {k.removeprefix("vq_model."): list(v.shape) for k, v in real_meta.state_dict().items() if k.startswith("vq_model.")}
    assert ours == VQ_KEYS


def test_block_ff_out_is_the_down_projection_and_the_top_ff_out_the_head():
    assert LLADA_KEY_MAP.to_ours("model.transformer.blocks.7.ff_out.weight") == "lm.layers.7.mlp.down_proj.weight"
    assert LLADA_KEY_MAP.to_ours("model.transformer.blocks.7.ff_proj.weight") == "lm.layers.7.mlp.gate_proj.weight"
    assert LLADA_KEY_MAP.to_ours("model.transformer.ff_out.weight") == "lm_head.weight"


def test_docs_carry_the_current_key_map():
    docs = (Path(__file__).parents[2] / "docs" / "models-mmada.md").read_text()
    assert LLADA_KEY_MAP.markdown() in docs


def test_ids_and_vocabulary(tiny, real_meta):
    real = real_meta.mmada_config
    assert (real.mmu_token_id, real.soi_token_id, real.eoi_token_id, real_meta.mask_token_id) == (126089, 126084, 126085, 126336)
    assert real.vocab_size == 134_656 and real.image_token_offset + 8192 <= real.vocab_size
    cfg = tiny.mmada_config
    assert tiny.mask_token_id == tiny.tokenizer.convert_tokens_to_ids("<|mdm_mask|>")
    assert cfg.image_token_offset == len(tiny.tokenizer) and cfg.vocab_size == len(tiny.tokenizer) + 64
    batch = tiny.collate(EXAMPLES[:2])
    with torch.no_grad():
        logits = tiny.output_logits(tiny.hidden_states(batch))
    assert logits.shape == (*batch["input_ids"].shape, cfg.vocab_size)  # text + image-code ids


# -- inputs -----------------------------------------------------------------------------


def test_collate_lays_out_mmu_soi_codes_eoi_then_chat_text(tiny):
    cfg = tiny.mmada_config
    batch = tiny.collate(EXAMPLES[:3])
    ids, kinds = batch["input_ids"], batch["token_kinds"]
    per_image = cfg.magvit.tokens_per_image
    row = ids[0].tolist()
    assert row[:2] == [cfg.mmu_token_id, cfg.soi_token_id]
    assert row[2 + per_image : 4 + per_image] == [cfg.eoi_token_id, cfg.bos_token_id]
    codes = ids[0, 2 : 2 + per_image] - cfg.image_token_offset
    assert int(codes.min()) >= 0 and int(codes.max()) < cfg.magvit.codebook_size
    assert (kinds[0] == KIND_IMAGE).sum() == per_image and (kinds[0, 2 : 2 + per_image] == KIND_IMAGE).all()
    assert ids[1, 0] == cfg.bos_token_id and not (kinds[1] == KIND_IMAGE).any()  # text only: no image block
    header = tiny.tokenizer.convert_tokens_to_ids("<|start_header_id|>")
    assert ids[1, 1] == header and ids[0, 4 + per_image] == header
    # Right padding, and the mask says where.
    lengths = batch["attention_mask"].sum(1)
    for r, n in enumerate(lengths.tolist()):
        assert batch["attention_mask"][r, :n].all() and not batch["attention_mask"][r, n:].any()
        assert (kinds[r, n:] == KIND_PAD).all()
    assert "pixel_values" not in batch  # frozen tokenizer: codes only


def test_collate_codes_are_the_tokenizer_codes_of_the_preprocessed_image(tiny):
    from pipeline.models.families.mmada.magvit2 import preprocess_image

    pixels = preprocess_image(EXAMPLES[0].image, 64, "crop")[None]
    with torch.no_grad():
        expected = tiny.vq_model.get_code(pixels)[0] + tiny.mmada_config.image_token_offset
    got = tiny.collate(EXAMPLES[:1])["input_ids"][0, 2:18]
    assert torch.equal(got, expected)


# -- attention ----------------------------------------------------------------------------


def first_token_state(encoder: MMaDAEncoder, last_word: str) -> torch.Tensor:
    batch = encoder.collate([Example("Query", text=f"one two three {last_word}")])
    with torch.no_grad():
        return encoder.hidden_states(batch)[0, 0]


def test_a_later_token_changes_an_earlier_state_only_when_bidirectional():
    encoder = MMaDAEncoder.build("tiny", seed=3).eval()
    assert not torch.allclose(first_token_state(encoder, "apple"), first_token_state(encoder, "zebra"))
    encoder.set_options(EncoderOptions(attention="causal"))
    assert torch.allclose(first_token_state(encoder, "apple"), first_token_state(encoder, "zebra"), atol=1e-6)
    encoder.set_options(EncoderOptions(attention="bidirectional"))
    assert not torch.allclose(first_token_state(encoder, "apple"), first_token_state(encoder, "zebra"))


def test_block_attention_sees_its_block_and_earlier_blocks_only():
    encoder = MMaDAEncoder.build("tiny", seed=4, options=EncoderOptions(attention="block", block_size=4)).eval()
    batch = encoder.collate([Example("Query", text="one two three four five six seven eight nine ten")])
    assert batch["input_ids"].shape[1] > 12

    def states(position: int | None) -> torch.Tensor:
        ids = batch["input_ids"].clone()
        if position is not None:
            ids[0, position] = 500
        with torch.no_grad():
            return encoder.hidden_states(dict(batch, input_ids=ids))[0]

    original, in_block_2, in_block_1 = states(None), states(9), states(5)
    assert torch.allclose(original[:8], in_block_2[:8], atol=1e-6)  # blocks 0-1 never see block 2
    assert not torch.allclose(original[8], in_block_2[8])  # position 8 sees 9: same block
    assert torch.allclose(original[:4], in_block_1[:4], atol=1e-6)
    assert not torch.allclose(original[4], in_block_1[4])
    assert not torch.allclose(original[-1], in_block_1[-1])  # later blocks see earlier ones


# -- batching -----------------------------------------------------------------------------


def test_padding_and_batch_composition_do_not_change_embeddings(tiny):
    together = tiny.encode(EXAMPLES, batch_size=8)
    alone = torch.cat([tiny.encode([ex]) for ex in EXAMPLES])
    assert together.shape == (len(EXAMPLES), 64)
    assert torch.allclose(together, alone, atol=1e-5)
    reordered = tiny.encode(EXAMPLES[::-1], batch_size=2)
    assert torch.allclose(reordered.flip(0), together, atol=1e-5)


def test_encode_returns_unit_vectors_in_input_order(tiny):
    vectors = tiny.encode(EXAMPLES, batch_size=2)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(len(EXAMPLES)), atol=1e-5)
    for i, ex in enumerate(EXAMPLES):
        assert torch.allclose(vectors[i], tiny.encode([ex])[0], atol=1e-5)
    assert not torch.allclose(vectors[0], vectors[1])


# -- checkpoints ----------------------------------------------------------------------------


@pytest.fixture()
def saved(tmp_path) -> tuple[MMaDAEncoder, Path]:
    model = MMaDAEncoder.build("tiny", seed=5).eval()
    model.save_original(str(tmp_path))
    return model, tmp_path


def test_saved_original_layout_loads_back_with_identical_embeddings(saved):
    model, directory = saved
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["MMadaModelLM"] and config["block_type"] == "llama"
    assert (directory / "magvitv2" / "pytorch_model.bin").is_file()
    index = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    assert "model.transformer.ff_out.weight" in index and "model.transformer.blocks.1.up_proj.weight" in index
    loaded = MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32)
    assert loaded.mmada_config == model.mmada_config
    assert not any(p.requires_grad for p in loaded.vq_model.parameters())
    assert torch.equal(loaded.encode(EXAMPLES), model.encode(EXAMPLES))


def test_bf16_loads_the_language_model_in_bf16_and_the_tokenizer_in_fp32(saved):
    _, directory = saved
    loaded = MMaDAEncoder.from_pretrained(str(directory), dtype=torch.bfloat16, device="cpu")
    assert loaded.lm.embed_tokens.weight.dtype == torch.bfloat16 and loaded.lm_head.weight.dtype == torch.bfloat16
    assert loaded.vq_model.encoder.conv_in.weight.dtype == torch.float32
    assert loaded.lm.config._attn_implementation == "sdpa"
    vectors = loaded.encode(EXAMPLES[:2])
    assert vectors.dtype == torch.float32 and torch.isfinite(vectors).all()


def edit_shard(directory: Path, edit) -> None:
    shard = directory / "model-00001-of-00001.safetensors"
    state = load_file(str(shard))
    edit(state)
    save_file(state, str(shard), metadata={"format": "pt"})


def test_a_missing_language_model_key_fails_listing_it(saved):
    _, directory = saved
    edit_shard(directory, lambda s: s.pop("model.transformer.blocks.1.up_proj.weight"))
    with pytest.raises(CheckpointMismatchError, match=r"missing:\s+lm\.layers\.1\.mlp\.up_proj\.weight"):
        MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32)


def test_an_unexpected_key_fails_listing_it(saved):
    _, directory = saved
    edit_shard(directory, lambda s: s.__setitem__("model.transformer.blocks.0.extra.weight", torch.zeros(2)))
    with pytest.raises(CheckpointMismatchError, match=r"model\.transformer\.blocks\.0\.extra\.weight"):
        MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32)


def test_a_wrongly_shaped_or_missing_image_tokenizer_key_fails_listing_it(saved):
    _, directory = saved
    path = directory / "magvitv2" / "pytorch_model.bin"
    state = torch.load(path, weights_only=True)
    state.pop("encoder.conv_in.bias")
    state["encoder.conv_out.bias"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as err:
        MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32)
    assert "vq_model.encoder.conv_in.bias" in str(err.value) and "vq_model.encoder.conv_out.bias" in str(err.value)


def test_image_tokenizer_buffers_may_be_absent_but_not_different(saved):
    _, directory = saved
    path = directory / "magvitv2" / "pytorch_model.bin"
    state = torch.load(path, weights_only=True)
    state.pop("quantize.embedding")
    torch.save(state, path)
    MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32)  # recomputed constant
    state["quantize.power_vals"] = state["quantize.power_vals"].flip(0)
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match="quantize.power_vals"):
        MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32)


def test_image_tokenizer_location_convention(saved, tmp_path_factory, monkeypatch):
    model, directory = saved
    elsewhere = tmp_path_factory.mktemp("vq") / "magvit"
    (directory / "magvitv2").rename(elsewhere)
    monkeypatch.delenv(VQ_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="vq_model_path"):
        resolve_vq_dir(directory)
    loaded = MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32, vq_model_path=str(elsewhere))
    assert torch.equal(loaded.encode(EXAMPLES[:1]), model.encode(EXAMPLES[:1]))
    monkeypatch.setenv(VQ_ENV, str(elsewhere))
    assert resolve_vq_dir(directory) == elsewhere
    with pytest.raises(FileNotFoundError, match="no/such/dir"):
        resolve_vq_dir(directory, "no/such/dir")  # an explicit path never falls back


def test_an_unsupported_llada_variant_is_refused(saved):
    _, directory = saved
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "activation_type": "swiglu"}))
    with pytest.raises(ValueError, match="unsupported LLaDA variant"):
        MMaDAEncoder.from_pretrained(str(directory), dtype=torch.float32)


# -- LoRA and the train-vision switch --------------------------------------------------------


def lora_modules(model: torch.nn.Module) -> set[str]:
    return {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_modules() if n.endswith(".lora_A")}


def test_lora_hits_only_language_model_projections_in_blocks():
    model = apply_lora(MMaDAEncoder.build("tiny", seed=6), LoraSettings())
    names = lora_modules(model)
    suffixes = {n.rsplit(".", 1)[1] for n in names}
    assert suffixes == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert all(n.startswith("lm.layers.") for n in names) and len(names) == 2 * 7
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_lora_with_train_vision_adds_the_image_encoder_convolutions_only():
    model = apply_lora(MMaDAEncoder.build("tiny", seed=6), LoraSettings(train_vision=True))
    names = lora_modules(model)
    vision = {n for n in names if n.startswith("vq_model.")}
    assert vision and all(n.startswith("vq_model.encoder.") for n in vision)
    assert "vq_model.encoder.conv_in" in vision and "vq_model.encoder.quant_conv" in vision
    assert not any(n.startswith("lm_head") for n in names)
    assert model.vision_trainable()


def contrastive_loss(model: MMaDAEncoder, examples: list[Example]) -> torch.Tensor:
    vectors = model(model.collate(examples))
    return -(vectors[0] * vectors[1]).sum()


def vision_grads(model: MMaDAEncoder) -> list[torch.Tensor]:
    return [p.grad for p in model.vq_model.encoder.parameters() if p.grad is not None]


def test_image_encoder_gets_gradients_only_with_train_vision():
    pair = [EXAMPLES[0], EXAMPLES[1]]  # image query, text target
    frozen = apply_lora(MMaDAEncoder.build("tiny", seed=7), LoraSettings())
    frozen.train()
    contrastive_loss(frozen, pair).backward()
    assert vision_grads(frozen) == []
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in frozen.named_parameters() if "lm.layers" in n)

    trained = apply_lora(MMaDAEncoder.build("tiny", seed=7), LoraSettings(train_vision=True, dropout=0.0))
    trained.train()
    with torch.no_grad():  # LoRA B starts at zero: give the adapters a value so A gets gradients too
        for n, p in trained.named_parameters():
            if "vq_model" in n and "lora_B" in n:
                p.normal_(0, 0.02)
    batch = trained.collate(pair)
    assert batch["pixel_values"].shape == (1, 3, 64, 64)
    contrastive_loss(trained, pair).backward()
    grads = vision_grads(trained)
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_fully_unfrozen_encoder_gets_gradients_and_embeddings_do_not_change():
    model = MMaDAEncoder.build("tiny", seed=8).eval()
    before = model.encode(EXAMPLES)
    model.vq_model.encoder.requires_grad_(True)
    assert torch.equal(model.encode(EXAMPLES), before)  # no_grad: no extra path
    batch = model.collate(EXAMPLES[:3])
    with_path = model(batch)
    assert torch.allclose(with_path, before[:3], atol=1e-6)  # the path adds exactly zero
    (with_path[0] * with_path[2]).sum().backward()
    assert model.vq_model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.vq_model.decoder.parameters())


def test_code_embedding_gradient_is_the_bit_flip_difference():
    torch.manual_seed(0)
    table = torch.randn(16, 5)
    power = torch.tensor([8, 4, 2, 1])
    codes = torch.tensor([[11, 4]])[..., None]  # (N=1, T=2, 1)
    bits = torch.zeros(1, 2, 4, requires_grad=True)
    upstream = torch.randn(1, 2, 5)
    out = _CodeEmbeddingGradient.apply(bits, codes | power, codes & ~power, table)
    assert torch.equal(out, torch.zeros(1, 2, 5))
    (out * upstream).sum().backward()
    expected = torch.stack([
        torch.stack([(table[int(c) | int(p)] - table[int(c) & ~int(p)]) @ upstream[0, t] for p in power])
        for t, c in enumerate(codes[0, :, 0])
    ])[None]
    assert torch.allclose(bits.grad, expected, atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------


def test_unsupported_images_are_refused_clearly(tiny):
    with pytest.raises(ImageError, match="expected a PIL image"):
        tiny.collate([Example("q", image="cat.png")])  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="too small"):
        tiny.collate([Example("q", image=Image.new("RGB", (1, 1)))])


def test_text_over_the_limit_is_truncated_with_a_warning_or_refused(caplog):
    long_text = " ".join(["word"] * 200)
    truncating = MMaDAEncoder.build("tiny", options=EncoderOptions(max_length=64))
    with caplog.at_level(logging.WARNING):
        batch = truncating.collate([Example("q", text=long_text)])
    assert batch["input_ids"].shape[1] == 64 and "truncating" in caplog.text
    strict = MMaDAEncoder.build("tiny", options=EncoderOptions(max_length=64, on_overflow="error"))
    with pytest.raises(InputTooLongError, match="on_overflow"):
        strict.collate([Example("q", text=long_text)])
    with pytest.raises(InputTooLongError, match="image"):
        MMaDAEncoder.build("tiny", options=EncoderOptions(max_length=16)).collate([Example("q", image=picture(3))])


def test_empty_examples_are_refused(tiny):
    with pytest.raises(EmptyExampleError):
        Example("instruction only", text="   ")
    with pytest.raises(ValueError, match="at least one example"):
        tiny.collate([])
    assert tiny.encode([]).numel() == 0


def test_unknown_attention_and_size_are_refused(tiny):
    with pytest.raises(ValueError, match="attention"):
        tiny.apply_attention("sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        MMaDAEncoder.build("huge")  # type: ignore[arg-type]


def test_config_refuses_image_ids_beyond_the_embedding():
    with pytest.raises(ValueError, match="do not fit"):
        MMaDAConfig(vocab_size=126_464)
