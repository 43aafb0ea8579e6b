"""Errors a user can act on; each message names the command that fixes it."""

from __future__ import annotations

REBUILD_HINT = (
    "Rebuild it with `vlmembed import-paper --store {path}` (the paper's numbers, seconds) "
    "or `vlmembed demo --store {path}` (paper + demo runs, minutes)."
)


class StoreError(Exception):
    """Base of the store's errors; the CLI prints these without a traceback."""

    user_facing = True

    def __reduce__(self):
        # A demo worker's error must reach its parent as itself: the subclasses' own __init__
        # arguments differ from the message Exception pickles, so rebuild from the message.
        return _rebuild, (type(self), self.args)


def _rebuild(cls: type[StoreError], args: tuple) -> StoreError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


class StoreMissingError(StoreError):
    def __init__(self, path):
        super().__init__(f"no results store at {path}. " + REBUILD_HINT.format(path=path))


class StoreCorruptError(StoreError):
    def __init__(self, path, reason: str):
        super().__init__(
            f"{path} is not a readable vlmembed store ({reason}). Move it aside, then "
            + REBUILD_HINT.format(path=path)
        )


class StoreSchemaError(StoreError):
    pass


class StoreReadOnlyError(StoreError):
    """The store's folder cannot be written: readers still work, writers cannot."""

    def __init__(self, path, folder):
        super().__init__(f"cannot write {path}: {folder} is read-only: choose --store elsewhere")


class StoreLocationError(StoreError):
    """The store path goes through a regular file, so neither it nor its folder can exist."""

    def __init__(self, path, blocker):
        super().__init__(f"cannot use {path}: {blocker} is a file, not a folder: choose --store elsewhere")


class StoreBusyError(StoreError):
    pass


class RunConflictError(StoreError):
    pass
