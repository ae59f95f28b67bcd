"""Resolve reference-file names the way hstcal does (``jref$name`` via the environment).

Inside :func:`recording`, every reference resolved is also reported to a callback (the
engine's provenance recorder: which reference files a step really used).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from owl.errors import CalibError

#: (keyword, name as given, resolved path) of each reference resolved, while recording.
Used = Callable[[str, str, Path], None]
_USED: ContextVar[Used | None] = ContextVar("owl_calib_refs_used", default=None)


@contextmanager
def recording(used: Used) -> Iterator[None]:
    """Report every reference file resolved inside the block to ``used``."""
    token = _USED.set(used)
    try:
        yield
    finally:
        _USED.reset(token)


def resolve_ref(name: str, *, keyword: str = "", source: str = "") -> Path:
    """Turn a header value such as ``jref$pctetab_synth.fits`` into an existing path.

    ``prefix$file`` takes the directory from the environment variable ``prefix`` (hstcal
    expects a trailing slash; we accept either). When ``file`` is absent but ``file.gz``
    exists, that is used, as cfitsio does.
    """
    where = f"{keyword} in {source}" if keyword and source else (keyword or source or "reference")
    value = name.strip()
    if not value or value.upper() == "N/A":
        raise CalibError(f"{where}: no reference file given ({name!r})")
    if "$" in value:
        prefix, _, rest = value.partition("$")
        directory = os.environ.get(prefix)
        if directory is None:
            raise CalibError(
                f"{where}: {value!r} needs the environment variable {prefix!r} "
                f"(a directory, e.g. export {prefix}=/path/to/refs/)"
            )
        path = Path(directory) / rest
    else:
        path = Path(value)
    found = path if path.exists() else path.with_name(path.name + ".gz")
    if found.exists():
        used = _USED.get()
        if used is not None:
            used(keyword, value, found)
        return found
    raise CalibError(f"{where}: reference file {str(path)!r} does not exist")
