"""Finding the images MMEB rows name by relative path, in folders and zip files.

MMEB-train ships its images as per-subset zips (``images_zip/ImageNet_1K.zip``) whose members
lack the ``images/`` prefix the rows use, MMEB-eval as one ``images.zip`` that unpacks into
``eval_images/``; the built-in benchmark writes plain PNG files. An :class:`ImageStore`
answers "where is this path, how big is it, give me its bytes" for all of them, zipped or
unpacked (`pipeline.data.layouts.image_roots`), without unpacking anything: zip members are
read on demand.
"""

from __future__ import annotations

import logging
import os
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from pipeline.data.images import ImageError, open_image
from pipeline.data.layouts import IMAGE_FOLDERS, image_roots, zip_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Location:
    zip_path: Path | None  # None: a plain file
    name: str  # the file path, or the member name inside the zip
    size: int


def _member_index(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Zip members by name, also without a leading image folder (``images/``, ``eval_images/``)
    so a zip packed with or without it serves the same rows; macOS's ``__MACOSX/`` copies are left out."""
    index: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue
        index[info.filename] = info
        head, _, rest = info.filename.partition("/")
        if head in IMAGE_FOLDERS and rest:
            index.setdefault(rest, info)
    return index


class ImageStore:
    """Images under one or more roots: folders (searched for ``*.zip`` too) or zip files.

    A key is the relative path a row stores (``images/NIGHTS/Train/ref_000.jpg``). It is
    tried as given and with leading folders dropped (``NIGHTS/Train/ref_000.jpg``), first as a
    file under each folder root and its unpacked image folders (``images/``, ``eval_images/``,
    and those of its ``train/`` and ``eval/`` halves), then as a member of each zip.
    """

    def __init__(self, roots: Sequence[str | os.PathLike[str]]):
        self.roots = [Path(r) for r in roots]
        missing = [str(r) for r in self.roots if not r.exists()]
        if missing:
            raise FileNotFoundError(f"image root(s) not found: {', '.join(missing)}; pass an existing folder or zip")
        self._located: dict[str, _Location | None] = {}
        self._zip_members: dict[Path, dict[str, zipfile.ZipInfo]] | None = None
        self._folder_roots: list[Path] | None = None
        self._handles: dict[Path, zipfile.ZipFile] = {}
        self._handles_pid = os.getpid()
        self._lock = threading.Lock()

    # -- lookup -------------------------------------------------------------------------
    def _zip_paths(self) -> list[Path]:
        return [z for z in zip_files(self.roots) if zipfile.is_zipfile(z)]

    def _folders(self) -> list[Path]:
        if self._folder_roots is None:
            folders: list[Path] = []
            for root in self.roots:
                if root.is_dir():
                    folders += [f for f in image_roots(root) if f not in folders]
            self._folder_roots = folders
        return self._folder_roots

    def _members(self) -> dict[Path, dict[str, zipfile.ZipInfo]]:
        if self._zip_members is None:
            members = {}
            for path in self._zip_paths():
                try:
                    with zipfile.ZipFile(path) as zf:
                        members[path] = _member_index(zf.infolist())
                except (zipfile.BadZipFile, OSError) as exc:
                    log.warning("skipping unreadable zip %s (%s)", path, exc)
            self._zip_members = members
        return self._zip_members

    @staticmethod
    def _candidates(key: str) -> list[str]:
        parts = PurePosixPath(key.replace("\\", "/")).parts
        parts = tuple(p for p in parts if p not in ("", "."))
        if not parts or ".." in parts:
            return []
        # Dropping leading folders, but keep at least two parts so "img_0.jpg" of one subset
        # never stands in for another subset's file of the same name.
        keep = min(len(parts), 2)
        return ["/".join(parts[i:]) for i in range(0, len(parts) - keep + 1)]

    def locate(self, key: str) -> _Location | None:
        if key in self._located:
            return self._located[key]
        found = None
        if os.path.isabs(key):
            path = Path(key)
            found = _Location(None, str(path), path.stat().st_size) if path.is_file() else None
        else:
            found = self._find_relative(key)
        self._located[key] = found
        return found

    def _find_relative(self, key: str) -> _Location | None:
        candidates = self._candidates(key)
        for name in candidates:
            for root in self._folders():
                path = root / name
                if path.is_file():
                    return _Location(None, str(path), path.stat().st_size)
        for zip_path, members in self._members().items():
            for name in candidates:
                info = members.get(name)
                if info is not None:
                    return _Location(zip_path, info.filename, info.file_size)
        return None

    # -- access -------------------------------------------------------------------------
    def size(self, key: str) -> int | None:
        """Bytes of the image, or None when it is not there."""
        loc = self.locate(key)
        return None if loc is None else loc.size

    def read_bytes(self, key: str) -> bytes:
        loc = self.locate(key)
        if loc is None:
            raise ImageError(f"{key}: no such image under {', '.join(map(str, self.roots))}")
        if loc.zip_path is None:
            return Path(loc.name).read_bytes()
        try:
            with self._lock:
                return self._zip(loc.zip_path).read(loc.name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ImageError(f"{key}: unreadable member of {loc.zip_path.name} ({exc}); re-download the zip") from exc

    def open(self, key: str) -> Image.Image:
        """The image as RGB, through `open_image` (raises ImageError for bad files)."""
        if self.size(key) == 0:
            raise ImageError(f"{key}: the file is empty (0 bytes); re-export or re-download it")
        try:
            return open_image(self.read_bytes(key))
        except ImageError as exc:
            reason = str(exc).removeprefix("upload: ")  # open_image names raw bytes "upload"
            raise ImageError(f"{key}: {reason}") from exc

    def _zip(self, path: Path) -> zipfile.ZipFile:
        # A forked data-loader worker must not share the parent's file offsets.
        if os.getpid() != self._handles_pid:
            self._handles = {}
            self._handles_pid = os.getpid()
        handle = self._handles.get(path)
        if handle is None:
            handle = self._handles[path] = zipfile.ZipFile(path)
        return handle

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._handles_pid = os.getpid()
