"""The built-in offline benchmark: MMEB-format datasets made only from what packages ship.

`build_benchmark` writes them (``vlmembed build-bench``); :class:`pipeline.data.mmeb.MMEBReader`
reads them back, exactly as it reads real MMEB.
"""

from pipeline.data.builtin.build import BuildConfig, BuildResult, build_benchmark

__all__ = ["BuildConfig", "BuildResult", "build_benchmark"]
