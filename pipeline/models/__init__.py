"""VLM families as embedding encoders behind one interface (see base.py)."""

from pipeline.models.base import (
    EmptyExampleError,
    EncoderOptions,
    Example,
    FamilySpec,
    ImageError,
    InputTooLongError,
    VLMEncoder,
)
from pipeline.models.registry import all_specs, build, family_names, get_family, load, register

__all__ = [
    "EmptyExampleError",
    "EncoderOptions",
    "Example",
    "FamilySpec",
    "ImageError",
    "InputTooLongError",
    "VLMEncoder",
    "all_specs",
    "build",
    "family_names",
    "get_family",
    "load",
    "register",
]
