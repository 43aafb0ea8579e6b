"""A vlmembed model as an `mteb` encoder (optional extra: `pip install 'vlmembed[mteb]'`).

    import mteb, vlmembed
    from vlmembed.mteb_encoder import MTEBEncoder
    encoder = MTEBEncoder(vlmembed.load("RUN_ID"), query_instruction="Find a paraphrase of the text:")
    mteb.evaluate(encoder, mteb.get_tasks(tasks=["STS12"]))

It follows mteb 2's `EncoderProtocol` (mteb/models/models_protocols.py): `encode` takes a
DataLoader of `BatchedInput` dicts (`text`, `image`, ...) plus the task's metadata, split, subset
and prompt type, and returns an (N, D) array; `similarity` and `similarity_pairwise` are cosine
(vlmembed encoders return unit vectors). Queries get `query_instruction`, documents
`document_instruction`: vlmembed's models are instruction-conditioned, as in VLM2Vec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from vlmembed.model import EmbeddingModel


class MTEBEncoder:
    """Wraps an `EmbeddingModel` (from `vlmembed.load`) for `mteb.evaluate`."""

    def __init__(self, model: EmbeddingModel, name: str | None = None, query_instruction: str = "",
                 document_instruction: str = "", batch_size: int = 32) -> None:
        self.model = model
        self.name = name or f"vlmembed/{model.name}"
        # mteb 2 calls the corpus side "document" (PromptType.document); mteb 1 called it "passage".
        self.instructions = {"query": query_instruction, "document": document_instruction,
                             "passage": document_instruction}
        self.batch_size = batch_size

    def encode(self, inputs: Iterable[Mapping[str, Any]], *, task_metadata: Any = None, hf_split: str = "",
               hf_subset: str = "", prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        """(N, D) float32 unit vectors for every item of every batch, in order."""
        kind = getattr(prompt_type, "value", prompt_type)  # mteb's PromptType is a str enum
        instruction = self.instructions.get(kind or "", "")
        rows: list[dict[str, Any]] = []
        for batch in inputs:
            texts, images = batch.get("text"), batch.get("image")
            count = len(texts) if texts is not None else len(images or [])
            for i in range(count):
                rows.append({"text": texts[i] if texts is not None else None,
                             "image": images[i] if images is not None else None, "instruction": instruction})
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return self.model.encode(rows, batch_size=self.batch_size)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        return torch.as_tensor(EmbeddingModel.similarity(_tensor(embeddings1), _tensor(embeddings2)))

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        a, b = (torch.nn.functional.normalize(_tensor(x).reshape(-1, _tensor(x).shape[-1]), dim=-1)
                for x in (embeddings1, embeddings2))
        return (a * b).sum(dim=-1)

    @property
    def mteb_model_meta(self) -> Any:
        """What mteb records about the model: its name and cosine similarity; the rest unknown."""
        from mteb.models.model_meta import ModelMeta

        return ModelMeta.create_empty(overwrites={"name": self.name, "similarity_fn_name": "cosine",
                                                  "framework": ["PyTorch"], "revision": "local"})


def _tensor(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
