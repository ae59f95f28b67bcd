"""Resolve reference-file names the way hstcal does (``jref$name`` via the environment)."""

from __future__ import annotations

import os
from pathlib import Path

from owl.errors import CalibError


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
    if path.exists():
        return path
    gz = path.with_name(path.name + ".gz")
    if gz.exists():
        return gz
    raise CalibError(f"{where}: reference file {str(path)!r} does not exist")
