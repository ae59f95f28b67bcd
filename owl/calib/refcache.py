"""A bounded in-process cache of reference images (bias, dark, flats, SATUFILE…).

A worker that calibrates one exposure after another reads the same reference files again
and again; this keeps the last ones read, keyed by path, inode, size and modification times
(a rewritten or replaced file is read again), up to ``OWL_REF_CACHE_MB`` megabytes (default
1024; 0 turns the cache off), least recently used out first. Cached arrays are made
read-only, so a step that tried to change a reference in place would fail instead of
corrupting later exposures.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from owl.calib.fitsio import Frame

_cache: OrderedDict[tuple[str, int, int, int, int], tuple[Frame, int]] = OrderedDict()


def limit_bytes() -> int:
    """The cache's bound from ``OWL_REF_CACHE_MB`` (bad values read as the default)."""
    try:
        mb = float(os.environ.get("OWL_REF_CACHE_MB", "1024"))
    except ValueError:
        mb = 1024.0
    return max(int(mb * 1024 * 1024), 0)


def _nbytes(frame: Frame) -> int:
    # zero-stride views (constant extensions) hold one value, not their shape
    return sum(a.nbytes for s in frame.imsets for a in (s.sci, s.err, s.dq)
               if not all(st == 0 for st in a.strides))


def cached(path: Path, load: Callable[[Path], Frame]) -> Frame:
    """``load(path)``, or the frame kept from an earlier call for the same file version."""
    limit = limit_bytes()
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit[0]
    frame = load(path)
    size = _nbytes(frame)
    if limit <= 0 or size > limit:
        return frame
    for s in frame.imsets:
        for a in (s.sci, s.err, s.dq):
            a.flags.writeable = False
    _cache[key] = (frame, size)
    total = sum(n for _, n in _cache.values())
    while total > limit:
        _, (_, n) = _cache.popitem(last=False)
        total -= n
    return frame


def clear() -> None:
    """Forget every cached reference (the next read of each is a cold one)."""
    _cache.clear()
