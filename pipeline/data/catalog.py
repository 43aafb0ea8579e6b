"""Dataset metadata records, the MMEB catalog and named selections.

Every dataset the project trains or evaluates on, real MMEB or built-in, is described by one
:class:`DatasetInfo`. MMEB's 36 image datasets are listed here with the first instruction of
each (the one VLM2Vec uses); the paper's 32 (its Table 5) are the selection ``paper32``.

Facts and where they come from:
* subset names, instructions, meta-tasks, in-domain / OOD: TIGER-AI-Lab/VLM2Vec
  (`experiments/public/train/train_image.yaml`, `experiments/public/eval/image.yaml`,
  `archive/instruction_dict.py` at commit 2bd8131) and MMEB-eval rows as quoted in public audits;
* #train / #eval / #candidates and query/target modalities of the 32: the paper's Table 5
  (`/work/shared/paper/analyzing-diffusion-and-ar-vlm-embeddings.txt`).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

MetaTask = Literal["classification", "vqa", "retrieval", "grounding"]
Modality = Literal["I", "T", "I+T"]
Benchmark = Literal["MMEB", "builtin"]
Role = Literal["benchmark", "pretraining"]

META_TASKS: tuple[str, ...] = ("classification", "vqa", "retrieval")  # the paper's three
TRAIN_CAP = 20_000  # the paper caps every in-domain training set at 20K pairs
MANIFEST = "manifest.json"  # a benchmark folder's index of datasets (written by the built-in builder)

# Target-side instructions MMEB writes before image candidates (e.g. "<|image_1|>\nRepresent the given image.").
REPRESENT_IMAGE = "Represent the given image."
REPRESENT_WIKI = "Represent the given Wikipedia image with related text information:"
REPRESENT_NEWS = "Represent the given image with related text information:"
REPRESENT_CROP = "Represent the given cropped image of the object"


def _check(value: Any, allowed: Any, what: str, name: str) -> None:
    if value not in get_args(allowed):
        raise ValueError(f"{name}: {what} must be one of {get_args(allowed)}, got {value!r}")


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: task, modalities, split role, sizes, instruction and provenance.

    ``n_train`` is 0 for datasets without a training split (OOD) and None where unknown.
    """

    name: str
    benchmark: Benchmark
    meta_task: MetaTask
    query_modality: Modality
    target_modality: Modality
    in_domain: bool
    n_train: int | None
    n_eval: int | None
    n_candidates: int | None
    instruction: str
    target_instruction: str = ""
    description: str = ""
    source: str = ""
    licence: str = ""
    paper_name: str | None = None  # the name in the paper's Table 5, where it differs or exists
    train_subset: str | None = None  # MMEB-train subset name when it differs (ImageNet_1K)
    role: Role = "benchmark"
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name != self.name.strip():
            raise ValueError(f"dataset name must be a plain non-empty name, got {self.name!r}")
        _check(self.benchmark, Benchmark, "benchmark", self.name)
        _check(self.meta_task, MetaTask, "meta_task", self.name)
        _check(self.query_modality, Modality, "query_modality", self.name)
        _check(self.target_modality, Modality, "target_modality", self.name)
        _check(self.role, Role, "role", self.name)
        for key in ("n_train", "n_eval", "n_candidates"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{self.name}: {key} must be a non-negative int or None, got {value!r}")
        if not self.in_domain and self.n_train:
            raise ValueError(f"{self.name}: an out-of-domain dataset has no training split (n_train={self.n_train})")

    @property
    def has_train(self) -> bool:
        return bool(self.in_domain and self.n_train != 0)

    @property
    def subset_names(self) -> tuple[str, ...]:
        """Names under which this dataset's files may be stored (eval name first)."""
        names = [self.name]
        if self.train_subset and self.train_subset != self.name:
            names.append(self.train_subset)
        return tuple(names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _mmeb(name: str, task: str, q: str, t: str, ood: bool, n_train: int | None, n_cand: int | None,
          instruction: str, target_instruction: str = "", **extra: Any) -> DatasetInfo:
    return DatasetInfo(
        name=name, benchmark="MMEB", meta_task=task, query_modality=q, target_modality=t,  # type: ignore[arg-type]
        in_domain=not ood, n_train=0 if ood else n_train, n_eval=1000, n_candidates=n_cand,
        instruction=instruction, target_instruction=target_instruction,
        source="TIGER-Lab/MMEB-train, TIGER-Lab/MMEB-eval (processed by VLM2Vec)",
        licence="per source dataset (see MMEB's dataset card)", **extra,
    )


_VQA = "Represent the given image with the following question:"
_CLS = "Represent the given image for classification."
_SCENE = "Identify the scene shown in the image"
_OBJECT = "Identify the object shown in the image"

# In Table 5 order, then MMEB's four visual-grounding datasets (not in the paper).
MMEB_DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    _mmeb("ImageNet-1K", "classification", "I", "T", False, 20_000, 1000, _CLS, train_subset="ImageNet_1K"),
    _mmeb("N24News", "classification", "I+T", "T", False, 20_000, 24,
          "Represent the given news image with the following caption for domain classification:",
          notes="Table 5 lists the target as I; MMEB's candidates are the 24 domain labels (text)."),
    _mmeb("HatefulMemes", "classification", "I", "T", False, 8_000, 2,
          "Represent the given image for binary classification to determine whether it constitutes hateful speech or not."),
    _mmeb("VOC2007", "classification", "I", "T", False, 8_000, 20, _OBJECT),
    _mmeb("SUN397", "classification", "I", "T", False, 20_000, 397, _SCENE),
    _mmeb("Place365", "classification", "I", "T", True, 0, 365, _SCENE),
    _mmeb("ImageNet-A", "classification", "I", "T", True, 0, 1000, _CLS),
    _mmeb("ImageNet-R", "classification", "I", "T", True, 0, 200, _CLS),
    _mmeb("ObjectNet", "classification", "I", "T", True, 0, 313, _OBJECT),
    _mmeb("Country211", "classification", "I", "T", True, 0, 211, "Identify the country depicted in the image",
          paper_name="Country-211"),
    _mmeb("OK-VQA", "vqa", "I+T", "T", False, 9_000, 1000, _VQA),
    _mmeb("A-OKVQA", "vqa", "I+T", "T", False, 17_000, 1000, _VQA),
    _mmeb("DocVQA", "vqa", "I+T", "T", False, 20_000, 1000, _VQA),
    _mmeb("InfographicsVQA", "vqa", "I+T", "T", False, 20_000, 1000, _VQA, paper_name="InfographicVQA"),
    _mmeb("ChartQA", "vqa", "I+T", "T", False, 20_000, 1000, _VQA),
    _mmeb("Visual7W", "vqa", "I+T", "T", False, 20_000, 1000, _VQA),
    _mmeb("ScienceQA", "vqa", "I+T", "T", True, 0, 1000, _VQA),
    _mmeb("VizWiz", "vqa", "I+T", "T", True, 0, 1000, _VQA),
    _mmeb("GQA", "vqa", "I+T", "T", True, 0, 1000, _VQA),
    _mmeb("TextVQA", "vqa", "I+T", "T", True, 0, 1000, _VQA),
    _mmeb("VisDial", "retrieval", "T", "I", False, 20_000, 1000,
          "Represent the given dialogue about an image, which is used for image retrieval:", REPRESENT_IMAGE),
    _mmeb("CIRR", "retrieval", "I+T", "I", False, 20_000, 1000,
          "Given an image, find a similar everyday image with the described changes:", REPRESENT_IMAGE),
    _mmeb("VisualNews_t2i", "retrieval", "T", "I", False, 20_000, 1000, "Retrieve an image of this news caption.",
          REPRESENT_IMAGE, paper_name="VisualNews.t2i"),
    _mmeb("VisualNews_i2t", "retrieval", "I", "T", False, 20_000, 1000, "Find a caption for the news in the given photo.",
          paper_name="VisualNews.i2t"),
    _mmeb("MSCOCO_t2i", "retrieval", "T", "I", False, 20_000, 1000,
          "Find me an everyday image that matches the given caption:", REPRESENT_IMAGE, paper_name="MSCOCO.t2i"),
    _mmeb("MSCOCO_i2t", "retrieval", "I", "T", False, 20_000, 1000,
          "Find an image caption describing the given everyday image.", paper_name="MSCOCO.i2t"),
    _mmeb("NIGHTS", "retrieval", "I", "I", False, 16_000, 1000,
          "Find a day-to-day image that looks similar to the provided image.", REPRESENT_IMAGE),
    _mmeb("WebQA", "retrieval", "T", "I+T", False, 17_000, 1000, "Find a Wikipedia image that answers this question:",
          REPRESENT_WIKI),
    _mmeb("OVEN", "retrieval", "I+T", "I+T", True, 0, 1000,
          "Retrieve a Wikipedia image-description pair that provides evidence for the question of this image:",
          REPRESENT_WIKI),
    _mmeb("FashionIQ", "retrieval", "I+T", "I", True, 0, 1000, "Find an image to match the fashion image and style note:",
          REPRESENT_IMAGE),
    _mmeb("EDIS", "retrieval", "T", "I+T", True, 0, 1000, "Find a news image that matches the provided caption:",
          REPRESENT_NEWS),
    _mmeb("Wiki-SS-NQ", "retrieval", "T", "I", True, 0, 1000, "Find the document image that can answer the given query:",
          REPRESENT_IMAGE),
    _mmeb("MSCOCO", "grounding", "I+T", "I", False, None, None,
          "Select the portion of the image that isolates the object labeled as", REPRESENT_CROP,
          notes="visual grounding; not in the paper"),
    _mmeb("RefCOCO", "grounding", "I+T", "I", True, 0, None,
          "Select the portion of the image that follows the language expressions.", REPRESENT_CROP,
          notes="visual grounding; not in the paper"),
    _mmeb("RefCOCO-Matching", "grounding", "I+T", "I+T", True, 0, None,
          "Select the portion of the image that follows the language expressions:",
          "Select the portion of the image that follows the language expressions:",
          notes="visual grounding; not in the paper"),
    _mmeb("Visual7W-Pointing", "grounding", "I+T", "I", True, 0, None,
          "Select the portion of the image that answers the question", REPRESENT_CROP,
          notes="visual grounding; not in the paper"),
)}

PAPER32: tuple[str, ...] = tuple(n for n, d in MMEB_DATASETS.items() if d.meta_task != "grounding")

# Instructions other than a dataset's own first one that MMEB text is known to start with.
KNOWN_TARGET_INSTRUCTIONS: tuple[str, ...] = (REPRESENT_IMAGE, REPRESENT_WIKI, REPRESENT_NEWS, REPRESENT_CROP)


class UnknownDatasetError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def mmeb_info(name: str) -> DatasetInfo:
    """The MMEB record for an eval name or a train-subset name (ImageNet_1K)."""
    if name in MMEB_DATASETS:
        return MMEB_DATASETS[name]
    for info in MMEB_DATASETS.values():
        if name in info.subset_names or name == info.paper_name:
            return info
    close = difflib.get_close_matches(name, list(MMEB_DATASETS), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownDatasetError(f"{name!r} is not one of MMEB's 36 image datasets{hint}")


def selection_names() -> list[str]:
    names = []
    for base in ("paper32", "mmeb36", "builtin"):
        names.append(base)
        names += [f"{base}:{t}" for t in META_TASKS]
    return names


def select(spec: str, builtin: list[DatasetInfo] | None = None) -> list[DatasetInfo]:
    """Datasets of a named selection: ``BASE[:META_TASK][:id|ood]``.

    BASE is ``paper32`` (the paper's Table 5), ``mmeb36`` (all of MMEB's image datasets) or
    ``builtin`` (the offline benchmark; pass its records, e.g. from a manifest, or the
    static specs are used). Pretraining-only datasets (captions) are never selected.
    """
    parts = spec.split(":")
    base, filters = parts[0], parts[1:]
    if base == "paper32":
        pool = [MMEB_DATASETS[n] for n in PAPER32]
    elif base == "mmeb36":
        pool = list(MMEB_DATASETS.values())
    elif base == "builtin":
        if builtin is None:
            from pipeline.data.builtin.specs import BUILTIN_DATASETS

            builtin = list(BUILTIN_DATASETS.values())
        pool = [d for d in builtin if d.role == "benchmark"]
    else:
        raise UnknownDatasetError(f"unknown selection {spec!r}; use one of {', '.join(selection_names())}")
    for f in filters:
        if f in get_args(MetaTask):
            pool = [d for d in pool if d.meta_task == f]
        elif f in ("id", "ood"):
            pool = [d for d in pool if d.in_domain == (f == "id")]
        else:
            raise UnknownDatasetError(f"selection {spec!r}: {f!r} is neither a meta-task {get_args(MetaTask)} nor id/ood")
    return pool
