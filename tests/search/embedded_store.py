"""A small store with real embeddings: two tiny models (one autoregressive, one diffusion)
trained briefly on the coloured-squares benchmark, with a checkpoint each, projected with
PCA and t-SNE. Built once per test session (about 15 s on 2 idle cores)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODELS = {"tiny llava": "llava_next", "tiny lavida": "lavida"}
CHECKPOINT_SAMPLES = 32
METHODS = ("pca", "tsne")  # UMAP's first call compiles numba kernels (~30 s); its own tests cover it


@dataclass(frozen=True)
class EmbeddedStore:
    path: Path
    benchmark: Path  # the MMEB-format folder (its images are the stored eval queries)
    runs: list[str]  # run ids in landing order: per model checkpoint, then final

    @property
    def finals(self) -> list[str]:
        return [r for r in self.runs if r.endswith(":final")]

    def eval_image(self, i: int = 0) -> Path:
        return self.benchmark / "images" / f"eval{i}.png"


def build_embedded_store(root: Path, models: dict[str, str] | None = None,
                         methods: tuple[str, ...] = METHODS) -> EmbeddedStore:
    """The store; `models` (name -> family) replaces the two default ones (the browser walk uses four)."""
    from pipeline.analysis.store_projections import project_store
    from pipeline.experiment import DataEntry, Experiment, ModelEntry
    from pipeline.runner import ExperimentRunner
    from pipeline.train.config import TrainConfig
    from tests.pipeline.toy_benchmark import write_toy_benchmark

    benchmark = write_toy_benchmark(root / "toy")
    train = TrainConfig.from_dict(dict(global_batch_size=16, chunk_size=8, learning_rate=1e-3, epochs=1,
                                       warmup_ratio=0.0, checkpoint_samples=(CHECKPOINT_SAMPLES,), seed=0))
    experiment = Experiment(
        name="toy", source="pipeline", meta_tasks=("classification",), zero_shot=False,
        models=tuple(ModelEntry(name=n, family=f, base="random:tiny:0") for n, f in (models or MODELS).items()),
        data=DataEntry(root=str(benchmark), selection="builtin"), train=train,
        output_dir=str(root / "runs"), eval_batch_size=16,
    )
    store = root / "store.duckdb"
    runs = ExperimentRunner(experiment, store).run()
    project_store(store, methods=methods, progress=False)
    return EmbeddedStore(store, benchmark, runs)
