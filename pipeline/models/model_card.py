"""The README.md of an exported model folder: what it is, how it was trained, how it scored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

PAPER = ("Analyzing Diffusion and Autoregressive Vision Language Models in Multimodal Embedding Space "
         "(the paper vlmembed reproduces)")


@dataclass(frozen=True)
class CardScore:
    dataset: str
    metric: str
    value: float  # as stored: percent


@dataclass(frozen=True)
class ModelCard:
    name: str
    recipe: dict  # pipeline.models.recipe.EncoderRecipe as a dict
    run_id: str | None = None
    training: dict = field(default_factory=dict)  # the run's config (train settings, data, meta-task)
    scores: Sequence[CardScore] = ()

    def markdown(self) -> str:
        base = self.recipe.get("base", "")
        front = ["---", "library_name: peft" if self.recipe.get("lora") else "library_name: vlmembed",
                 "tags: [vlmembed, embeddings, multimodal]"]
        if base and not base.startswith("random:"):
            front.append(f"base_model: {base}")
        lines = [*front, "---", "", f"# {self.name}", "",
                 f"A multimodal embedding model trained with vlmembed (family `{self.recipe.get('family')}`, "
                 f"base `{base}`).", ""]
        if self.run_id:
            lines += [f"Run: `{self.run_id}`.", ""]
        lines += ["## Use", "", "```python", "import vlmembed", "", "model = vlmembed.load(\"PATH_TO_THIS_FOLDER\")",
                  "vectors = model.encode([\"a red square\", {\"text\": \"a cat\", \"instruction\": \"Find the image.\"}])",
                  "```", ""]
        if self.recipe.get("lora"):
            lines += ["With PEFT on the base encoder (`pipeline.models.registry.build` or `load`):", "",
                      "```python", "from peft import PeftModel", "model = PeftModel.from_pretrained(base_encoder, "
                      "\"PATH_TO_THIS_FOLDER\")", "```", ""]
        lines += self._scores() + ["## Training configuration", "", "```json",
                                   json.dumps({"recipe": self.recipe, **self.training}, indent=1, default=str),
                                   "```", "", "## Reference", "", PAPER + ".", ""]
        return "\n".join(lines)

    def _scores(self) -> list[str]:
        if not self.scores:
            return []
        rows = ["## Scores", "", "| dataset | metric | value (%) |", "|---|---|---|"]
        rows += [f"| {s.dataset} | {s.metric} | {s.value:.2f} |" for s in self.scores]
        return [*rows, ""]
