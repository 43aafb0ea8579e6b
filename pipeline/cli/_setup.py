"""Turning a bad experiment file or data folder into one line and exit code 2.

Only the setup (reading the TOML, opening the data folder) is wrapped: an error raised later,
deep in training, is a bug to see with its traceback.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterator

from pipeline.cli import UserError

SETUP_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, tomllib.TOMLDecodeError,
                ValueError, KeyError, TypeError)


@contextlib.contextmanager
def setup_errors(what: str) -> Iterator[None]:
    """Re-raise what goes wrong inside as a UserError naming `what` (e.g. the TOML's path)."""
    try:
        yield
    except UserError:
        raise
    except SETUP_ERRORS as exc:
        detail = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        if isinstance(exc, OSError) and exc.filename and exc.strerror:
            detail = f"{exc.filename}: {exc.strerror}"
        first = detail.splitlines()[0] if detail else type(exc).__name__
        raise UserError(first if what in first else f"{what}: {first}") from exc
