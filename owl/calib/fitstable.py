"""Columns of small reference tables (CCDTAB, OSCNTAB, BPIXTAB) read without astropy's
FITS_rec.

astropy builds a ``ColDefs``, a ``FITS_rec`` and a column object per field before the first
value comes out: for a table of a few rows that is most of the cost of a calibration step's
table reads. Here a plain binary table (fields of one fixed-size value: L, B, I, J, K, E, D,
or a string rA; no scaling, no heap, no TDIM) is read with one structured numpy dtype; the
columns are the values astropy gives (strings cut at a NUL and stripped of trailing blanks,
as its character arrays do; numbers in native byte order; L as bools). Any other table is
read through astropy.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

from owl.calib.fitsdata import is_gzip

_FORMAT = re.compile(r"^\s*(\d*)([LBIJKEDA])\s*$")
_CODES = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_UNSUPPORTED = re.compile(r"^(TSCAL|TZERO|TDIM|THEAP|TNULL)\d*$")


def table_columns(hdul: Any, ext: int, path: str) -> dict[str, npt.NDArray[Any]]:
    """The columns of binary-table extension ``ext`` of the open ``hdul`` (read from
    ``path``), by the names the file gives them."""
    hdu = hdul[ext]
    fast = None if is_gzip(path) else _plain_columns(hdu, path)
    if fast is not None:
        return fast
    table = hdu.data
    return {n: np.asarray(table[n]) for n in table.columns.names}


def _plain_columns(hdu: Any, path: str) -> dict[str, npt.NDArray[Any]] | None:
    h = hdu.header
    if not isinstance(hdu, fits.BinTableHDU) or int(h.get("PCOUNT", 0)) != 0 \
            or int(h.get("GCOUNT", 1)) != 1 or any(_UNSUPPORTED.match(k) for k in h):
        return None
    names, fields = [], []
    for i in range(1, int(h["TFIELDS"]) + 1):
        m = _FORMAT.match(str(h.get(f"TFORM{i}", "")))
        name = h.get(f"TTYPE{i}")
        if m is None or not isinstance(name, str) or (m.group(1) not in ("", "1")
                                                      and m.group(2) != "A"):
            return None
        n = int(m.group(1) or 1)
        fields.append((f"f{i}", f"S{n}" if m.group(2) == "A" else _CODES[m.group(2)]))
        names.append((name.strip(), m.group(2)))
    dtype = np.dtype(fields)
    nrows, width = int(h["NAXIS2"]), int(h["NAXIS1"])
    if dtype.itemsize != width or len({n for n, _ in names}) != len(names):
        return None
    with open(path, "rb") as f:
        f.seek(int(hdu.fileinfo()["datLoc"]))
        buf = f.read(nrows * width)
    if len(buf) != nrows * width:
        return None
    rec = np.frombuffer(buf, dtype=dtype, count=nrows)
    out: dict[str, npt.NDArray[Any]] = {}
    for i, (name, code) in enumerate(names, start=1):
        col = rec[f"f{i}"]
        if code == "A":
            try:
                out[name] = np.array([v.split(b"\0", 1)[0].decode("ascii").rstrip()
                                      for v in col.tolist()], dtype=str)
            except UnicodeDecodeError:
                return None
        elif code == "L":
            out[name] = col == b"T"
        else:
            out[name] = col.astype(col.dtype.newbyteorder("="))
    return out
