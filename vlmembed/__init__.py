"""vlmembed's public Python API: load a stored model in one line and embed with it.

    import vlmembed
    model = vlmembed.load("RUN_ID_OR_FOLDER", store="results.duckdb")
    vectors = model.encode(["a red square", {"image": "cat.png", "instruction": "Find the caption."}])
    model.similarity(vectors, vectors)

A thin facade over `pipeline` (models) and `storage` (the store); those packages stay where
they are.
"""

from vlmembed.model import EmbeddingModel, load

__all__ = ["EmbeddingModel", "load"]
