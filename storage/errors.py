"""Errors a user can act on; each message names the command that fixes it."""

from __future__ import annotations

REBUILD_HINT = (
    "Rebuild it with `vlmembed import-paper --store {path}` (the paper's numbers, seconds) "
    "or `vlmembed demo --store {path}` (paper + demo runs, minutes)."
)


class StoreError(Exception):
    """Base of the store's errors; the CLI prints these without a traceback."""

    user_facing = True

    def __init_subclass__(cls, **kwargs):
        # Record each error's own constructor arguments, so it pickles: a demo worker process's
        # error must reach its parent as itself, not break the process pool while unpickling.
        super().__init_subclass__(**kwargs)
        init = cls.__init__

        def recording_init(self, *args, **kw):
            self._init_args = args
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def __reduce__(self):
        return type(self), getattr(self, "_init_args", self.args)


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
