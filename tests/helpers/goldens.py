"""Checking an output against a golden record (keywords and sampled SCI/ERR/DQ pixels, as
``tools/make_hstcal_goldens*.py`` write them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from owl.calib.fitsio import read_frame


def same(a: Any, b: Any) -> bool:
    """Keyword values equal as hstcal wrote them: numbers to 1e-6, text case-blind."""
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=0.0))
    return str(a).strip().upper() == str(b).strip().upper()


def check_golden(path: Path, want: dict[str, Any], pixels: np.ndarray) -> None:
    """The file's keywords and its pixels at ``pixels`` (rows of y, x) equal the record."""
    frame = read_frame(path)
    for key, value in want["primary"].items():
        assert same(frame.primary.get(key), value), (path.name, key)
    ys, xs = pixels[:, 0], pixels[:, 1]
    for extver, part in want["imsets"].items():
        imset = next(s for s in frame.imsets if s.extver == int(extver))
        for key, value in part["keys"].items():
            assert same(imset.sci_header.get(key), value), (path.name, extver, key)
        np.testing.assert_array_equal(imset.sci[ys, xs], np.float32(part["sci"]))
        np.testing.assert_array_equal(imset.err[ys, xs], np.float32(part["err"]))
        np.testing.assert_array_equal(imset.dq[ys, xs], np.int16(part["dq"]))
