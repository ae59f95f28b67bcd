"""Statistics of the good pixels of an imset, hstcal's ``doStat``.

ACS2D (and hstcal's ACSSUM) end by writing, for the pixels without a serious DQ flag and with
ERR > 0: NGOODPIX, GOODMIN, GOODMAX, GOODMEAN and SNRMIN, SNRMAX, SNRMEAN (SNR = SCI/ERR)
into the SCI header, and NGOODPIX, GOODMIN, GOODMAX, GOODMEAN of ERR into the ERR header.
Sums are in float64 in row order, as hstcal's loop, and the values are stored as float32
(hstcal's ``PutKeyFlt``), so the keywords are the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed
from numpy.typing import NDArray


@numba.njit(cache=True, nogil=True)
def _good_stats(sci: NDArray[np.float32], err: NDArray[np.float32], dq: NDArray[np.int16],
                sdqflags: int) -> tuple[int, NDArray[np.float64]]:
    # out: valmin valmax valsum errmin errmax errsum snrmin snrmax snrsum, kept in locals
    # (registers) over the loop; the first good pixel is found first, so the loop over the
    # rest has no first-pixel branch. Same operations in the same order as before.
    out = np.zeros(9)
    ny, nx = sci.shape
    j0 = i0 = -1
    for j in range(ny):
        for i in range(nx):
            if (dq[j, i] & sdqflags) == 0 and not np.float64(err[j, i]) <= 0.0:
                j0, i0 = j, i
                break
        if j0 >= 0:
            break
    if j0 < 0:
        return 0, out
    value = np.float64(sci[j0, i0])
    sigma = np.float64(err[j0, i0])
    snr = value / sigma
    vmin = vmax = vsum = value
    emin = emax = esum = sigma
    smin = smax = ssum = snr
    n = 1
    for j in range(j0, ny):
        for i in range(i0 + 1 if j == j0 else 0, nx):
            if dq[j, i] & sdqflags:
                continue
            value = np.float64(sci[j, i])
            sigma = np.float64(err[j, i])
            if sigma <= 0.0:
                continue
            snr = value / sigma
            vsum += value
            esum += sigma
            ssum += snr
            vmin = min(vmin, value)
            vmax = max(vmax, value)
            emin = min(emin, sigma)
            emax = max(emax, sigma)
            smin = min(smin, snr)
            smax = max(smax, snr)
            n += 1
    out[0], out[1], out[2] = vmin, vmax, vsum
    out[3], out[4], out[5] = emin, emax, esum
    out[6], out[7], out[8] = smin, smax, ssum
    return n, out


@dataclass(frozen=True)
class GoodStats:
    """``doStat``'s numbers for one imset (float32 values, as hstcal writes them)."""

    ngood: int
    sci: tuple[float, float, float]
    err: tuple[float, float, float]
    snr: tuple[float, float, float]


def good_stats(sci: NDArray[np.float32], err: NDArray[np.float32], dq: NDArray[np.int16],
               sdqflags: int) -> GoodStats:
    """(min, max, mean) of SCI, ERR and SCI/ERR over the good pixels."""
    n, v = _good_stats(np.ascontiguousarray(sci, np.float32),
                       np.ascontiguousarray(err, np.float32),
                       np.ascontiguousarray(dq, np.int16), int(sdqflags) & 0xFFFF)
    if n:
        v[[2, 5, 8]] /= n

    def f32(a: int, b: int, c: int) -> tuple[float, float, float]:
        return float(np.float32(v[a])), float(np.float32(v[b])), float(np.float32(v[c]))

    return GoodStats(int(n), f32(0, 1, 2), f32(3, 4, 5), f32(6, 7, 8))


def write_stats(sci_header: fits.Header, err_header: fits.Header, s: GoodStats) -> None:
    """Put the ``doStat`` keywords into the SCI and ERR headers (only NGOODPIX when none)."""
    sci_header["NGOODPIX"] = (s.ngood, "number of good pixels")
    err_header["NGOODPIX"] = (s.ngood, "number of good pixels")
    if not s.ngood:
        return
    for key, value, text in (("GOODMIN", s.sci[0], "minimum good data value"),
                             ("GOODMAX", s.sci[1], "maximum good data value"),
                             ("GOODMEAN", s.sci[2], "average of good data values"),
                             ("SNRMIN", s.snr[0], "minimum S/N of good data values"),
                             ("SNRMAX", s.snr[1], "maximum S/N of good data values"),
                             ("SNRMEAN", s.snr[2], "mean S/N of good data values")):
        sci_header[key] = (value, text)
    for key, value, text in (("GOODMIN", s.err[0], "minimum sigma for good data"),
                             ("GOODMAX", s.err[1], "maximum sigma for good data"),
                             ("GOODMEAN", s.err[2], "average of sigma for good data")):
        err_header[key] = (value, text)
