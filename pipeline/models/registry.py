"""The one place model families are registered.

Families are discovered: every module in `pipeline/models/families/` is imported and each
class decorated with :func:`register` lands here. Adding a family is adding one file.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import pkgutil
from importlib.metadata import entry_points

import torch

from pipeline.models import families
from pipeline.models.base import EncoderOptions, FamilySpec, Size, VLMEncoder

log = logging.getLogger(__name__)

# Third-party families: `[project.entry-points."vlmembed.families"] name = "package.module"`
ENTRY_POINT_GROUP = "vlmembed.families"
_FAMILIES: dict[str, type[VLMEncoder]] = {}
_DISCOVERED = False


class UnknownFamilyError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0])


def register(cls: type[VLMEncoder]) -> type[VLMEncoder]:
    """Class decorator: add a family; a second family with the same name is an error."""
    spec = getattr(cls, "spec", None)
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"{cls.__name__} must define `spec = FamilySpec(...)` to be registered")
    existing = _FAMILIES.get(spec.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"family {spec.name!r} registered twice: {existing.__module__} and {cls.__module__}")
    _FAMILIES[spec.name] = cls
    return cls


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    for info in pkgutil.iter_modules(families.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{families.__name__}.{info.name}")
    _discover_plugins()
    _DISCOVERED = True


def _discover_plugins() -> None:
    """Families of other installed distributions, declared under the `vlmembed.families`
    entry-point group: a module (its @register classes land here on import) or a class."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not take the built-in families down
            log.warning("model family plugin %s = %s failed to load (%s: %s); reinstall or remove it",
                        entry.name, entry.value, type(exc).__name__, exc)
            continue
        if isinstance(loaded, type) and issubclass(loaded, VLMEncoder):
            register(loaded)


def family_names() -> list[str]:
    _discover()
    return sorted(_FAMILIES)


def get_family(name: str) -> type[VLMEncoder]:
    _discover()
    try:
        return _FAMILIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_FAMILIES), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownFamilyError(
            f"unknown model family {name!r}.{hint} Known: {', '.join(sorted(_FAMILIES))} (see `vlmembed models`)."
        ) from None


def all_specs() -> list[FamilySpec]:
    return [get_family(name).spec for name in family_names()]


DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp32": torch.float32, "float32": torch.float32,
          "fp16": torch.float16, "float16": torch.float16}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}") from None


def load(
    family: str,
    path_or_id: str,
    dtype: str | torch.dtype = "bf16",
    device: str | torch.device | None = None,
    options: EncoderOptions | None = None,
) -> VLMEncoder:
    """Load a published checkpoint of `family` from a local directory or hub id."""
    return get_family(family).from_pretrained(path_or_id, dtype=parse_dtype(dtype), device=device, options=options)


def build(family: str, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> VLMEncoder:
    """A randomly initialised encoder of a family's real or tiny configuration."""
    return get_family(family).build(size=size, options=options, seed=seed)
