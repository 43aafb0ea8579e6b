"""Reading published checkpoints and converting their key names to our modules.

A family whose published layout differs from the modules we build (LaViDa, MMaDA/LLaDA,
Dream-VL, DiffusionVL) declares a :class:`KeyMap`: a documented table of
`original pattern -> our pattern` rows. `{n}` stands for a layer number and `{rest}` for
the remainder of a dotted name. The same table converts both ways, so a model can be
saved in the original layout and loaded back (the round-trip tests rely on it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

_TOKENS = {"{n}": r"(?P<n>\d+)", "{rest}": r"(?P<rest>.+)"}


def _compile(pattern: str) -> re.Pattern[str]:
    out = re.escape(pattern)
    for token, regex in _TOKENS.items():
        out = out.replace(re.escape(token), regex)
    return re.compile(f"^{out}$")


def _fill(template: str, groups: Mapping[str, str]) -> str:
    out = template
    for name, value in groups.items():
        out = out.replace("{" + name + "}", value)
    return out


@dataclass(frozen=True)
class KeyRule:
    original: str
    ours: str
    note: str = ""


class KeyMap:
    """An ordered, two-way table of checkpoint key patterns; the first matching row wins."""

    def __init__(self, rules: Iterable[KeyRule | tuple[str, str]], drop: Iterable[str] = ()):
        self.rules = [r if isinstance(r, KeyRule) else KeyRule(*r) for r in rules]
        self._to_ours = [(_compile(r.original), r.ours) for r in self.rules]
        self._to_original = [(_compile(r.ours), r.original) for r in self.rules]
        # Keys of the published checkpoint that carry no weights we use (e.g. rotary caches).
        self._drop = [_compile(p) for p in drop]

    def dropped(self, key: str) -> bool:
        return any(p.match(key) for p in self._drop)

    def to_ours(self, key: str) -> str | None:
        for pattern, template in self._to_ours:
            m = pattern.match(key)
            if m:
                return _fill(template, m.groupdict())
        return None

    def to_original(self, key: str) -> str | None:
        for pattern, template in self._to_original:
            m = pattern.match(key)
            if m:
                return _fill(template, m.groupdict())
        return None

    def convert(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Original-layout state dict -> ours; unknown keys raise with the full list."""
        out: dict[str, torch.Tensor] = {}
        unknown = []
        for key, value in state.items():
            if self.dropped(key):
                continue
            new = self.to_ours(key)
            if new is None:
                unknown.append(key)
            else:
                out[new] = value
        if unknown:
            raise CheckpointMismatchError(unexpected=unknown, missing=[], shapes=[], where="key conversion")
        return out

    def revert(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Our state dict -> original layout (for round-trip tests and exports)."""
        out = {}
        for key, value in state.items():
            orig = self.to_original(key)
            if orig is None:
                raise KeyError(f"no row of the key map covers our parameter {key!r}")
            out[orig] = value
        return out

    def markdown(self) -> str:
        """The table as documentation (docs/checkpoints.md is generated from this)."""
        lines = ["| published key | our module | note |", "|---|---|---|"]
        lines += [f"| `{r.original}` | `{r.ours}` | {r.note} |" for r in self.rules]
        return "\n".join(lines)


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys or shapes do not match the model; lists every difference."""

    def __init__(self, missing: list[str], unexpected: list[str], shapes: list[str], where: str = "checkpoint"):
        self.missing, self.unexpected, self.shapes = missing, unexpected, shapes
        parts = [f"{where} does not match the model:"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                shown = "\n    ".join(items[:40])
                more = f"\n    ... and {len(items) - 40} more" if len(items) > 40 else ""
                parts.append(f"  {len(items)} {title}:\n    {shown}{more}")
        parts.append("Check that the path holds the checkpoint of this family (see `vlmembed models`).")
        super().__init__("\n".join(parts))


def check_state_dict(model_state: Mapping[str, torch.Tensor], loaded: Mapping[str, torch.Tensor],
                     optional: Iterable[str] = ()) -> None:
    """Raise listing every missing, unexpected and wrongly shaped key."""
    optional = set(optional)
    missing = sorted(k for k in model_state if k not in loaded and k not in optional)
    unexpected = sorted(k for k in loaded if k not in model_state)
    shapes = sorted(
        f"{k}: checkpoint {tuple(loaded[k].shape)} vs model {tuple(model_state[k].shape)}"
        for k in loaded
        if k in model_state and tuple(loaded[k].shape) != tuple(model_state[k].shape)
    )
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(missing, unexpected, shapes)


def read_state_dict(path: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory or file: sharded or single safetensors, or .bin."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_file():
        files = [path]
    else:
        index = next((p for p in (path / "model.safetensors.index.json", path / "pytorch_model.bin.index.json") if p.is_file()), None)
        if index is not None:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            files = [path / s for s in shards]
        else:
            files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin")) or sorted(path.glob("*.pt")) or sorted(path.glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"no weights (*.safetensors, *.bin, *.pt) under {path}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        part = load_file(str(f)) if f.suffix == ".safetensors" else torch.load(f, map_location="cpu", weights_only=True)
        if isinstance(part, dict) and "state_dict" in part and isinstance(part["state_dict"], dict):
            part = part["state_dict"]
        state.update({k: v for k, v in part.items() if k.startswith(prefix)})
    return state


def write_state_dict(state: Mapping[str, torch.Tensor], directory: str | Path, shard_bytes: int = 2 * 2**30) -> None:
    """Save as (sharded) safetensors with an index, the layout the hub uses."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in state.items():
        nbytes = value.numel() * value.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = value.detach().contiguous().clone()
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))


def resolve_local(path_or_id: str) -> Path:
    """A local directory for a path or hub id; a hub id resolves only through the local cache
    unless a hub is reachable (huggingface_hub decides; offline it fails with a clear error)."""
    path = Path(path_or_id).expanduser()
    if path.exists():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path_or_id))
    except Exception as exc:  # noqa: BLE001 - any hub failure means "not available here"
        raise FileNotFoundError(
            f"{path_or_id!r} is neither a local directory nor a hub id that can be fetched here ({exc}). "
            "Download the checkpoint where a hub is reachable and pass its local directory."
        ) from exc
