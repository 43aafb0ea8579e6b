"""The trainer: resumes bit for bit after a kill, stops on NaN keeping the last good
checkpoint, uses hard negatives, and GradCache matches a full-batch step on a real family."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from pipeline.models import Example, build
from pipeline.models.lora import LoraSettings, apply_lora
from pipeline.train.checkpointing import latest_checkpoint
from pipeline.train.config import TrainConfig
from pipeline.train.gradcache import full_batch_step, gradcache_step
from pipeline.train.loss import InfoNCELoss
from pipeline.train.trainer import ContrastivePair, ContrastiveTrainer, TrainingDivergedError, dataset_batches

COLOURS = [(230, 25, 25), (30, 200, 40), (30, 60, 230), (240, 230, 30), (10, 10, 10), (250, 250, 250)]
NAMES = ["red", "green", "blue", "yellow", "black", "white"]


def _pairs(n: int = 24) -> list[ContrastivePair]:
    return [ContrastivePair(Example("Which colour?", None, Image.new("RGB", (32, 32), COLOURS[i % 6])),
                            Example("", NAMES[i % 6]), (Example("", NAMES[(i + 1) % 6]),)) for i in range(n)]


def _trainer(tmp_path, pairs, **overrides) -> ContrastiveTrainer:
    config = dict(global_batch_size=8, chunk_size=4, learning_rate=1e-3, epochs=2, warmup_ratio=0.0,
                  checkpoint_every=2, seed=3)
    config.update(overrides)
    torch.manual_seed(0)
    encoder = build("lavida", "tiny", seed=0)
    return ContrastiveTrainer(encoder, TrainConfig.from_dict(config), len(pairs), lambda idx: [pairs[i] for i in idx],
                              tmp_path)


def _trainable(trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.encoder.named_parameters() if p.requires_grad}


def test_kill_and_resume_ends_in_the_uninterrupted_state(tmp_path):
    pairs = _pairs()
    straight = _trainer(tmp_path / "a", pairs)
    straight.train()
    expected = _trainable(straight)

    killed = _trainer(tmp_path / "b", pairs)
    calls = {"n": 0}
    real = killed.pairs_at

    def crash_in_step_4(idx):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("killed")  # after the checkpoint at step 2, mid step 4
        return real(idx)

    killed.pairs_at = crash_in_step_4
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    assert latest_checkpoint(tmp_path / "b").step == 2
    resumed = _trainer(tmp_path / "b", pairs)  # a new process would build everything afresh
    result = resumed.train()
    assert result.steps == straight.total_steps == 6
    got = _trainable(resumed)
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    assert [e["loss"] for e in result.log] == [e["loss"] for e in straight.train(resume=True).log]


def test_nan_loss_stops_with_a_clear_message_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    pairs = _pairs()
    trainer = _trainer(tmp_path, pairs)
    real_step = trainer._step
    calls = {"n": 0}

    def nan_at_step_3(batch):
        calls["n"] += 1
        terms = real_step(batch)
        return {**terms, "loss": math.nan} if calls["n"] == 3 else terms

    monkeypatch.setattr(trainer, "_step", nan_at_step_3)
    with pytest.raises(TrainingDivergedError, match=r"step 3.*step-0000002"):
        trainer.train()
    good = latest_checkpoint(tmp_path)
    assert good is not None and good.step == 2
    state = torch.load(good.path / "weights.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values())


def test_hard_negatives_are_encoded_and_used(tmp_path, monkeypatch):
    pairs = _pairs(8)
    trainer = _trainer(tmp_path, pairs, epochs=1, hard_negatives=1, checkpoint_every=0)
    seen = []
    real_loss = trainer.loss_fn.forward

    def spy(q, t, n=None):
        seen.append(None if n is None else tuple(n.shape))
        return real_loss(q, t, n)

    monkeypatch.setattr(trainer.loss_fn, "forward", spy)
    trainer.train()
    assert seen == [(8, 64)]
    trainer_without = _trainer(tmp_path / "none", pairs, epochs=1, hard_negatives=0, checkpoint_every=0)
    seen.clear()
    monkeypatch.setattr(trainer_without.loss_fn, "forward", spy)
    trainer_without.train()
    assert seen == [None]


def test_too_few_pairs_for_a_batch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot fill one global batch"):
        _trainer(tmp_path, _pairs(4))


@pytest.mark.parametrize("family", ["llava_next", "lavida"])
def test_gradcache_equals_full_batch_on_a_real_tiny_family(family):
    torch.manual_seed(0)
    encoder = build(family, "tiny", seed=0)
    apply_lora(encoder, LoraSettings(r=4, dropout=0.0))
    encoder.train()
    pairs = _pairs(8)
    queries, targets = [p.query for p in pairs], [p.positive for p in pairs]
    negatives = [n for p in pairs for n in p.negatives]
    loss_fn = InfoNCELoss(0.05, gather=False)
    full_batch_step(encoder, encoder.collate(queries), encoder.collate(targets), encoder.collate(negatives), loss_fn)
    expected = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.requires_grad}
    encoder.zero_grad()
    chunk = lambda xs: [encoder.collate(xs[i : i + 3]) for i in range(0, len(xs), 3)]  # noqa: E731
    gradcache_step(encoder, chunk(queries), chunk(targets), chunk(negatives), loss_fn)
    for name, grad in expected.items():
        got = dict(encoder.named_parameters())[name].grad
        assert torch.allclose(got, grad, atol=1e-5, rtol=1e-4), name
    assert any(g.abs().sum() > 0 for g in expected.values())


def test_dataset_batches_hold_one_dataset_each_and_repeat_per_seed():
    groups = ["digits"] * 10 + ["emoji"] * 7 + ["scenes"] * 3
    batches = dataset_batches(groups, batch_size=3, seed=0, epoch=0)
    assert len(batches) == 3 + 2 + 1  # each dataset drops its own remainder
    assert all(len({groups[i] for i in b}) == 1 and len(b) == 3 for b in batches)
    assert len({i for b in batches for i in b}) == 18
    again = dataset_batches(groups, batch_size=3, seed=0, epoch=0)
    assert [b.tolist() for b in batches] == [b.tolist() for b in again]
    assert [b.tolist() for b in batches] != [b.tolist() for b in dataset_batches(groups, 3, seed=0, epoch=1)]


def test_batch_by_dataset_trains_on_single_dataset_batches(tmp_path):
    pairs = _pairs(24)
    groups = ["a" if i < 16 else "b" for i in range(24)]
    config = TrainConfig(global_batch_size=8, chunk_size=8, max_steps=3, lora=None, batch_by_dataset=True)
    trainer = ContrastiveTrainer(build("lavida", "tiny", seed=0), config, 24, lambda idx: [pairs[i] for i in idx],
                                 tmp_path, groups=groups)
    assert trainer.batches_per_epoch == 3
    assert all(len({groups[i] for i in trainer.batch_indices(step)}) == 1 for step in range(6))


def test_batch_by_dataset_without_datasets_or_full_batches_is_refused(tmp_path):
    config = TrainConfig(global_batch_size=8, chunk_size=8, max_steps=1, lora=None, batch_by_dataset=True)
    with pytest.raises(ValueError, match="needs the dataset"):
        ContrastiveTrainer(build("lavida", "tiny", seed=0), config, 24, lambda idx: idx, tmp_path)
    with pytest.raises(ValueError, match="no dataset has 8"):
        ContrastiveTrainer(build("lavida", "tiny", seed=0), config, 24, lambda idx: idx, tmp_path,
                           groups=[str(i % 4) for i in range(24)])


def test_masking_false_negatives_needs_item_ids(tmp_path):
    pairs = _pairs(8)  # no ids
    trainer = _trainer(tmp_path, pairs, global_batch_size=8, chunk_size=8, max_steps=1, mask_false_negatives=True)
    with pytest.raises(ValueError, match="item id"):
        trainer.train()
    with_ids = [ContrastivePair(p.query, p.positive, p.negatives, positive_id=p.positive.text,
                                negative_ids=tuple(n.text for n in p.negatives)) for p in pairs]
    trainer = _trainer(tmp_path / "ids", with_ids, global_batch_size=8, chunk_size=4, max_steps=1,
                       mask_false_negatives=True)
    assert math.isfinite(trainer.train().log[-1]["loss"])  # 8 pairs of 6 colours: copies masked, GradCache path
