"""owl's plain binary-table reader gives astropy's column values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]

from owl.calib.fitstable import _plain_columns, table_columns


def _write(path: Path, cols: list[fits.Column]) -> None:
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)


def _astropy(path: Path) -> dict[str, list[object]]:
    with fits.open(path) as hdul:
        d = hdul[1].data
        return {n: np.asarray(d[n]).tolist() for n in d.columns.names}


def test_plain_table_equals_astropy(tmp_path: Path) -> None:
    p = tmp_path / "t.fits"
    _write(p, [
        fits.Column("CCDAMP", "8A", array=np.array(["ABCD", "A  ", "", "N/A"])),
        fits.Column("CCDCHIP", "J", array=np.array([1, 2, -3, 2**31 - 1])),
        fits.Column("VALUE", "I", array=np.array([4, -1, 0, 32767])),
        fits.Column("BIG", "K", array=np.array([1, 2**40, -5, 0])),
        fits.Column("GAIN", "E", array=np.array([2.0, 1.886, np.nan, -0.0])),
        fits.Column("D", "D", array=np.array([1e300, 0.1, -2.5, 3.0])),
        fits.Column("B", "B", array=np.array([0, 255, 7, 1])),
        fits.Column("FLAG", "L", array=np.array([True, False, True, False])),
    ])
    with fits.open(p, memmap=False) as hdul:
        assert _plain_columns(hdul[1], str(p)) is not None
        got = {k: v.tolist() for k, v in table_columns(hdul, 1, str(p)).items()}
    want = _astropy(p)
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(np.array(got[k]), np.array(want[k]))
        assert [type(x) for x in got[k]] == [type(x) for x in want[k]]


def test_scaled_or_array_columns_go_through_astropy(tmp_path: Path) -> None:
    p = tmp_path / "u.fits"
    _write(p, [fits.Column("U", "J", bzero=2**31, array=np.array([1, 2], dtype=np.uint32)),
               fits.Column("V", "3D", array=np.ones((2, 3)))])
    with fits.open(p, memmap=False) as hdul:
        assert _plain_columns(hdul[1], str(p)) is None
        got = table_columns(hdul, 1, str(p))
    assert got["U"].tolist() == [1, 2] and got["V"].shape == (2, 3)
