"""The reference cache: one read per file version, read-only arrays, bounded, switchable."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

from owl.calib import refcache
from owl.calib.fitsio import Frame, Imset, write_frame
from owl.calib.step import load_ref_imsets


def _write(path: Path, value: float) -> None:
    h = fits.Header([("CCDCHIP", 1)])
    sci = np.full((40, 50), value, np.float32)
    sci[0, 0] = value + 1  # an array, not a constant extension
    frame = Frame(primary=fits.Header([("INSTRUME", "ACS"), ("DETECTOR", "WFC")]),
                  imsets=[Imset(sci, np.zeros_like(sci), np.zeros(sci.shape, np.int16),
                                h.copy(), h.copy(), h.copy(), 1)], path=None)
    write_frame(frame, path, overwrite=True)


@pytest.fixture(autouse=True)
def _empty() -> None:
    refcache.clear()


def test_second_read_is_the_cached_frame_and_read_only(tmp_path: Path) -> None:
    path = tmp_path / "x_bia.fits"
    _write(path, 3.0)
    first = load_ref_imsets(path)
    assert load_ref_imsets(path) is first
    with pytest.raises(ValueError, match="read-only"):
        first.imsets[0].sci[0, 0] = 0


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "x_bia.fits"
    _write(path, 3.0)
    first = load_ref_imsets(path)
    _write(path, 5.0)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = load_ref_imsets(path)
    assert again is not first and float(again.imsets[0].sci[1, 1]) == 5.0


def test_bound_and_off_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [tmp_path / f"x{i}_bia.fits" for i in range(3)]
    for i, p in enumerate(paths):
        _write(p, float(i))
    one = 40 * 50 * 4  # the SCI array (ERR and DQ are constant: zero-stride views)
    monkeypatch.setenv("OWL_REF_CACHE_MB", str(2.5 * one / 2**20))
    frames = [load_ref_imsets(p) for p in paths]  # the first falls out
    assert load_ref_imsets(paths[2]) is frames[2]
    assert load_ref_imsets(paths[0]) is not frames[0]
    monkeypatch.setenv("OWL_REF_CACHE_MB", "0")
    refcache.clear()
    a = load_ref_imsets(paths[1])
    assert load_ref_imsets(paths[1]) is not a and a.imsets[0].sci.flags.writeable
