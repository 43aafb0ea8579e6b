"""`vlmembed.load` and the model it returns: sentence-transformers' calls over a vlmembed encoder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.models.base import VLMEncoder
from pipeline.models.model_folder import load_model
from pipeline.models.recipe import EncoderRecipe
from pipeline.search.encoders import EncoderSource, EncoderUnavailable, resolve_device
from storage import StoreReader
from storage.paths import default_store_path
from vlmembed.inputs import to_example


class EmbeddingModel:
    """A trained (or zero-shot) vlmembed encoder with `encode` and `similarity`."""

    def __init__(self, encoder: VLMEncoder, name: str = ""):
        self.encoder = encoder.eval()
        self.name = name or encoder.spec.name

    def __repr__(self) -> str:
        return f"EmbeddingModel({self.name!r}, family={self.encoder.spec.name!r}, device={self.device})"

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    def encode(self, inputs: Any, batch_size: int = 32, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, convert_to_tensor: bool = False, show_progress_bar: bool = False,
               instruction: str = "") -> np.ndarray | torch.Tensor:
        """Embed one input (a 1-D result) or a list of them ((N, D)), in input order.

        The encoders return unit vectors by contract, so `normalize_embeddings=False` leaves them
        as they come (still unit length). `instruction` is prefixed to inputs that name none.
        """
        single = not isinstance(inputs, Sequence) or isinstance(inputs, str | dict)
        items = [inputs] if single else list(inputs)
        examples = [to_example(x, instruction) for x in items]
        vectors = self.encoder.encode(examples, batch_size=batch_size, progress=show_progress_bar)  # (N, D)
        if normalize_embeddings and len(examples):
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        if single:
            vectors = vectors[0]
        if convert_to_tensor or not convert_to_numpy:
            return vectors
        return vectors.numpy()

    @staticmethod
    def similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Cosine similarity of every row of `a` with every row of `b`, (N, M); numpy in, numpy out."""
        as_numpy = isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        ta, tb = (torch.as_tensor(np.asarray(x) if isinstance(x, np.ndarray) else x).float() for x in (a, b))
        ta, tb = (t.unsqueeze(0) if t.ndim == 1 else t for t in (ta, tb))
        sims = torch.nn.functional.normalize(ta, dim=-1) @ torch.nn.functional.normalize(tb, dim=-1).T
        return sims.numpy() if as_numpy else sims


def _from_run(run_id: str, store: str | os.PathLike | None, device: str) -> VLMEncoder:
    path = Path(store or default_store_path()).expanduser()
    runs = StoreReader(path).runs()
    match = runs[runs["run_id"] == run_id]
    if match.empty:
        raise ValueError(f"no run {run_id!r} in {path}; list them with `vlmembed sql \"SELECT run_id FROM runs\"`")
    row = match.iloc[0]
    source = EncoderSource.of_run(row["checkpoint"], row["config"])
    if source.directory is not None:
        return load_model(source.directory, device=device)
    return EncoderRecipe(**source.recipe).build(device=device)  # type: ignore[arg-type]


def load(run_or_dir: str | os.PathLike, store: str | os.PathLike | None = None,
         device: str | None = None) -> EmbeddingModel:
    """A model from a folder (`vlmembed export-model`'s, or a run's checkpoint) or a stored run's id.

    `store` is the DuckDB file to look a run id up in (default $VLMEMBED_STORE, else
    ~/.cache/vlmembed/store.duckdb); `device` defaults to $VLMEMBED_DEVICE, else the CPU.
    """
    device = resolve_device(device)
    if Path(run_or_dir).expanduser().is_dir():
        return EmbeddingModel(load_model(Path(run_or_dir).expanduser(), device=device), name=str(run_or_dir))
    try:
        encoder = _from_run(str(run_or_dir), store, device)
    except EncoderUnavailable as exc:
        raise ValueError(f"run {run_or_dir}: {exc}") from None
    return EmbeddingModel(encoder, name=str(run_or_dir))
