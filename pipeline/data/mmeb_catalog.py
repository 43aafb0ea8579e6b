"""MMEB's 36 image datasets as records, with the first instruction of each (the one VLM2Vec uses).

The paper's 32 (its Table 5) are :data:`PAPER32`; MMEB's four visual-grounding datasets follow.

Facts and where they come from:
* subset names, instructions, meta-tasks, in-domain / OOD: TIGER-AI-Lab/VLM2Vec
  (`experiments/public/train/train_image.yaml`, `experiments/public/eval/image.yaml`,
  `archive/instruction_dict.py` at commit 2bd8131) and MMEB-eval rows as quoted in public audits;
* #train / #eval / #candidates and query/target modalities of the 32: Table 5 of Wang et al.,
  "Analyzing Diffusion and Autoregressive Vision Language Models in Multimodal Embedding Space"
  (code and results: github.com/ZihangWang93/diff_vlm2vec).
"""

from __future__ import annotations

import difflib

from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.instructions import REPRESENT_CROP, REPRESENT_IMAGE, REPRESENT_NEWS, REPRESENT_WIKI

TRAIN_CAP = 20_000  # the paper caps every in-domain training set at 20K pairs
N_EVAL = 1000  # MMEB-eval samples 1,000 queries per dataset


def _mmeb(name: str, *, meta_task: str, query: str, target: str, in_domain: bool, n_candidates: int | None,
          instruction: str, n_train: int | None = 0, target_instruction: str = "", **extra: str) -> DatasetInfo:
    return DatasetInfo(
        name=name, benchmark="MMEB", meta_task=meta_task, query_modality=query, target_modality=target,  # type: ignore[arg-type]
        in_domain=in_domain, n_train=n_train if in_domain else 0, n_eval=N_EVAL, n_candidates=n_candidates,
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
    _mmeb("ImageNet-1K", meta_task="classification", query="I", target="T", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction=_CLS, train_subset="ImageNet_1K"),
    _mmeb("N24News", meta_task="classification", query="I+T", target="T", in_domain=True, n_train=20_000,
          n_candidates=24,
          instruction="Represent the given news image with the following caption for domain classification:",
          notes="Table 5 lists the target as I; MMEB's candidates are the 24 domain labels (text)."),
    _mmeb("HatefulMemes", meta_task="classification", query="I", target="T", in_domain=True, n_train=8_000,
          n_candidates=2,
          instruction="Represent the given image for binary classification to determine whether it constitutes hateful speech or not."),
    _mmeb("VOC2007", meta_task="classification", query="I", target="T", in_domain=True, n_train=8_000,
          n_candidates=20, instruction=_OBJECT),
    _mmeb("SUN397", meta_task="classification", query="I", target="T", in_domain=True, n_train=20_000,
          n_candidates=397, instruction=_SCENE),
    _mmeb("Place365", meta_task="classification", query="I", target="T", in_domain=False, n_candidates=365,
          instruction=_SCENE),
    _mmeb("ImageNet-A", meta_task="classification", query="I", target="T", in_domain=False, n_candidates=1000,
          instruction=_CLS),
    _mmeb("ImageNet-R", meta_task="classification", query="I", target="T", in_domain=False, n_candidates=200,
          instruction=_CLS),
    _mmeb("ObjectNet", meta_task="classification", query="I", target="T", in_domain=False, n_candidates=313,
          instruction=_OBJECT),
    _mmeb("Country211", meta_task="classification", query="I", target="T", in_domain=False, n_candidates=211,
          instruction="Identify the country depicted in the image", paper_name="Country-211"),
    _mmeb("OK-VQA", meta_task="vqa", query="I+T", target="T", in_domain=True, n_train=9_000,
          n_candidates=1000, instruction=_VQA),
    _mmeb("A-OKVQA", meta_task="vqa", query="I+T", target="T", in_domain=True, n_train=17_000,
          n_candidates=1000, instruction=_VQA),
    _mmeb("DocVQA", meta_task="vqa", query="I+T", target="T", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction=_VQA),
    _mmeb("InfographicsVQA", meta_task="vqa", query="I+T", target="T", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction=_VQA, paper_name="InfographicVQA"),
    _mmeb("ChartQA", meta_task="vqa", query="I+T", target="T", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction=_VQA),
    _mmeb("Visual7W", meta_task="vqa", query="I+T", target="T", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction=_VQA),
    _mmeb("ScienceQA", meta_task="vqa", query="I+T", target="T", in_domain=False, n_candidates=1000,
          instruction=_VQA),
    _mmeb("VizWiz", meta_task="vqa", query="I+T", target="T", in_domain=False, n_candidates=1000,
          instruction=_VQA),
    _mmeb("GQA", meta_task="vqa", query="I+T", target="T", in_domain=False, n_candidates=1000,
          instruction=_VQA),
    _mmeb("TextVQA", meta_task="vqa", query="I+T", target="T", in_domain=False, n_candidates=1000,
          instruction=_VQA),
    _mmeb("VisDial", meta_task="retrieval", query="T", target="I", in_domain=True, n_train=20_000,
          n_candidates=1000,
          instruction="Represent the given dialogue about an image, which is used for image retrieval:",
          target_instruction=REPRESENT_IMAGE),
    _mmeb("CIRR", meta_task="retrieval", query="I+T", target="I", in_domain=True, n_train=20_000,
          n_candidates=1000,
          instruction="Given an image, find a similar everyday image with the described changes:",
          target_instruction=REPRESENT_IMAGE),
    _mmeb("VisualNews_t2i", meta_task="retrieval", query="T", target="I", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction="Retrieve an image of this news caption.",
          target_instruction=REPRESENT_IMAGE, paper_name="VisualNews.t2i"),
    _mmeb("VisualNews_i2t", meta_task="retrieval", query="I", target="T", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction="Find a caption for the news in the given photo.",
          paper_name="VisualNews.i2t"),
    _mmeb("MSCOCO_t2i", meta_task="retrieval", query="T", target="I", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction="Find me an everyday image that matches the given caption:",
          target_instruction=REPRESENT_IMAGE, paper_name="MSCOCO.t2i"),
    _mmeb("MSCOCO_i2t", meta_task="retrieval", query="I", target="T", in_domain=True, n_train=20_000,
          n_candidates=1000, instruction="Find an image caption describing the given everyday image.",
          paper_name="MSCOCO.i2t"),
    _mmeb("NIGHTS", meta_task="retrieval", query="I", target="I", in_domain=True, n_train=16_000,
          n_candidates=1000, instruction="Find a day-to-day image that looks similar to the provided image.",
          target_instruction=REPRESENT_IMAGE),
    _mmeb("WebQA", meta_task="retrieval", query="T", target="I+T", in_domain=True, n_train=17_000,
          n_candidates=1000, instruction="Find a Wikipedia image that answers this question:",
          target_instruction=REPRESENT_WIKI),
    _mmeb("OVEN", meta_task="retrieval", query="I+T", target="I+T", in_domain=False, n_candidates=1000,
          instruction="Retrieve a Wikipedia image-description pair that provides evidence for the question of this image:",
          target_instruction=REPRESENT_WIKI),
    _mmeb("FashionIQ", meta_task="retrieval", query="I+T", target="I", in_domain=False, n_candidates=1000,
          instruction="Find an image to match the fashion image and style note:",
          target_instruction=REPRESENT_IMAGE),
    _mmeb("EDIS", meta_task="retrieval", query="T", target="I+T", in_domain=False, n_candidates=1000,
          instruction="Find a news image that matches the provided caption:",
          target_instruction=REPRESENT_NEWS),
    _mmeb("Wiki-SS-NQ", meta_task="retrieval", query="T", target="I", in_domain=False, n_candidates=1000,
          instruction="Find the document image that can answer the given query:",
          target_instruction=REPRESENT_IMAGE),
    _mmeb("MSCOCO", meta_task="grounding", query="I+T", target="I", in_domain=True, n_train=None,
          n_candidates=None,
          instruction="Select the portion of the image that isolates the object labeled as",
          target_instruction=REPRESENT_CROP, notes="visual grounding; not in the paper"),
    _mmeb("RefCOCO", meta_task="grounding", query="I+T", target="I", in_domain=False, n_candidates=None,
          instruction="Select the portion of the image that follows the language expressions.",
          target_instruction=REPRESENT_CROP, notes="visual grounding; not in the paper"),
    _mmeb("RefCOCO-Matching", meta_task="grounding", query="I+T", target="I+T", in_domain=False,
          n_candidates=None,
          instruction="Select the portion of the image that follows the language expressions:",
          target_instruction="Select the portion of the image that follows the language expressions:",
          notes="visual grounding; not in the paper"),
    _mmeb("Visual7W-Pointing", meta_task="grounding", query="I+T", target="I", in_domain=False,
          n_candidates=None, instruction="Select the portion of the image that answers the question",
          target_instruction=REPRESENT_CROP, notes="visual grounding; not in the paper"),
)}

PAPER32: tuple[str, ...] = tuple(n for n, d in MMEB_DATASETS.items() if d.meta_task != "grounding")


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
