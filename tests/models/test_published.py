"""Published-layout helpers: tokenizer without remote code, dtype checks, special ids."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from pipeline.models.published import check_dtype, checked_special_id, load_tokenizer, token_id


@pytest.fixture()
def dream_style_tokenizer_dir(tmp_path):
    """vocab.json + merges.txt whose tokenizer_config names a custom class, as Dream's does."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(["a red square to the left of a blue circle"] * 20, trainer)
    bpe.model.save(str(tmp_path))
    config = {"tokenizer_class": "DreamTokenizer",
              "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
              "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
              "added_tokens_decoder": {"300": {"content": "<|mask|>", "special": True, "lstrip": False,
                                               "rstrip": False, "normalized": False, "single_word": False}}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    return tmp_path


def test_custom_tokenizer_class_is_read_without_remote_code(dream_style_tokenizer_dir):
    tokenizer = load_tokenizer(dream_style_tokenizer_dir)
    assert tokenizer("a red square")["input_ids"]
    assert token_id(tokenizer, "<|mask|>") is not None
    assert token_id(tokenizer, "<|not-a-token|>") is None


def test_missing_tokenizer_files_say_what_to_copy(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        load_tokenizer(tmp_path)


def test_config_wins_over_a_disagreeing_tokenizer(dream_style_tokenizer_dir, caplog):
    tokenizer = load_tokenizer(dream_style_tokenizer_dir)
    with caplog.at_level(logging.WARNING):
        assert checked_special_id(tokenizer, "<|mask|>", 151666, "test") == 151666
    assert "151666" in caplog.text


def test_dtypes():
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        check_dtype(dtype)
    with pytest.raises(ValueError, match="unsupported dtype"):
        check_dtype(torch.float64)
