"""A vlmembed model runs under mteb as an encoder, on mteb's own tiny local task (no hub)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.models.registry import build
from vlmembed.model import EmbeddingModel
from vlmembed.mteb_encoder import MTEBEncoder

mteb = pytest.importorskip("mteb", reason="mteb is not installed (optional extra: pip install 'vlmembed[mteb]')")


@pytest.fixture(scope="module")
def encoder() -> MTEBEncoder:
    return MTEBEncoder(EmbeddingModel(build("dream_text", "tiny", seed=0)), query_instruction="Find the document:")


def test_encode_follows_mtebs_protocol_and_prompt_types(encoder: MTEBEncoder) -> None:
    from mteb.types import PromptType

    batches = [{"text": ["a red circle", "two blue squares"]}, {"text": ["a green star"]}]
    query = encoder.encode(batches, task_metadata=None, hf_split="test", hf_subset="default",
                           prompt_type=PromptType.query)
    document = encoder.encode(batches, task_metadata=None, hf_split="test", hf_subset="default",
                             prompt_type=PromptType.document)
    assert query.shape == (3, 64) and np.allclose(np.linalg.norm(query, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(query, document, atol=1e-3)  # the query instruction reaches the model
    sims = encoder.similarity(query, document)
    assert tuple(sims.shape) == (3, 3)
    assert np.allclose(encoder.similarity_pairwise(query, document).numpy(), np.diag(sims.numpy()), atol=1e-6)


def test_mteb_evaluates_the_encoder_on_its_mock_retrieval_task(encoder: MTEBEncoder) -> None:
    from mteb.mocks.mock_tasks.retrieval import MockRetrievalTask

    result = mteb.evaluate(encoder, MockRetrievalTask(), cache=None, show_progress_bar=False)
    score = result.task_results[0].get_score()
    assert result.model_name == "vlmembed/dream_text"
    assert math.isfinite(score) and 0.0 <= score <= 1.0
