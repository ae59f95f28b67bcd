"""ACSREJ's SHADCORR: the shutter-shading image the way hstcal's ``acsrej_loop`` uses it.

hstcal applies the SHADFILE (seconds of extra exposure per pixel) inside the combination,
not as a separate division, in two places (``acsrej_loop.c``):

- the SCALENSE term of the hit threshold of image ``k``: its signal is
  ``ave * t_k / (1 + S / t_k)`` instead of ``ave * t_k`` (``getShadcorr``, ``calc_thresholds``);
- the rebuilt guess, every iteration: ``ave = (sum / t_good) / (1 + S / t_good)`` with
  ``t_good`` the exposure time of the images kept at the pixel (``getShadLine``).

Which shading values those are follows hstcal's buffers, not the pixel's own row:

- ``getShadBuff`` fills a buffer of ``SECTLINES * ry`` rows every ``SECTLINES * ry`` image
  rows, from binned rows ``y0 + line / ry`` and the next, expanded by ``unbinArray``
  (bilinear, no half-pixel offset: ``ai = m / rx``, unlike ACS2D's ``unbinsect``) and cut
  from column ``x0 * rx``;
- the threshold of row ``r`` is computed when the scrolling buffer takes that row in, at
  image row ``line = max(r - width, 0)`` (``width = ceil(CRRADIUS)``), from buffer row
  ``r % (SECTLINES * ry)`` of the buffer filled for ``line``: another image row's shading
  (row ``r - 2`` or ``r - 4`` for a full-size SHADFILE and CRRADIUS 2.1);
- the combination of row ``r`` reads its own row, but ``getShadLine`` copies only
  ``nx / rx`` values into a line that starts as zeros: with a binned SHADFILE only the first
  ``nx / rx`` columns are corrected.

The SHADFILE extension is the one with the EXTVER of the first input's imset (``grp[0]``),
not the one of the same CCDCHIP; its ERR and DQ are not used. :func:`find_line_hdr` is
hstcal's ``FindLineHdr`` (``GetCorner``, ``FromLT``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from owl.errors import CalibError

F32 = NDArray[np.float32]

#: hstcal's ``SECTLINES``: binned SHADFILE rows read (and expanded) together.
SECTLINES = 2


@dataclass(frozen=True)
class RejShading:
    """The shading values of one chip as hstcal's ACSREJ reads them.

    Attributes
    ----------
    image : ndarray of float32, shape (nblocks * SECTLINES * ry, nx)
        Row ``B + z`` is row ``z`` of the buffer hstcal fills at image row ``B`` (a
        multiple of ``SECTLINES * ry``): row ``r`` of the image for ``r < ny``.
    thr_row : ndarray of int64, shape (ny,)
        The row of ``image`` whose values enter the threshold of image row ``r``.
    ncols : int
        Columns that the combination corrects (``nx // rx``; the others get 0).
    """

    image: F32
    thr_row: NDArray[np.int64]
    ncols: int


def _nint(x: float) -> int:
    """hstcal's ``NINT``: round half away from zero."""
    return int(x + 0.5) if x >= 0.0 else int(x - 0.5)


def _corner(header: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(bin, corner)`` in X and Y (hstcal's ``GetCorner`` with ``rsize`` 1)."""
    ltm = (float(header.get("LTM1_1", 1.0)), float(header.get("LTM2_2", 1.0)))
    ltv = (float(header.get("LTV1", 0.0)), float(header.get("LTV2", 0.0)))
    if ltm[0] <= 0 or ltm[1] <= 0:
        raise CalibError(f"(LTM1_1, LTM2_2) = ({ltm[0]:.8g}, {ltm[1]:.8g}) is invalid")
    dbin = (1.0 / ltm[0], 1.0 / ltm[1])
    corner = tuple(_nint((d - 1.0) - d * v) for d, v in zip(dbin, ltv, strict=True))
    return (_nint(dbin[0]), _nint(dbin[1])), (corner[0], corner[1])


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    return int(a / b) if b else 0


def find_line_hdr(sci_header: Any, ref_header: Any, dimx: int,
                  refx: int) -> tuple[int, int, int, int]:
    """``(rx, ry, x0, y0)`` of a reference relative to a science image (``FindLineHdr``).

    ``rx, ry`` are bin ratios, ``x0, y0`` the science corner in reference pixels.
    """
    sbin, scorner = _corner(sci_header)
    rbin, rcorner = _corner(ref_header)
    if scorner == rcorner and sbin == rbin and dimx == refx:
        return 1, 1, 0, 0
    if rbin[0] > sbin[0] or rbin[1] > sbin[1]:
        return (_cdiv(rbin[0], sbin[0]), _cdiv(rbin[1], sbin[1]),
                _cdiv(scorner[0] - rcorner[0], rbin[0]), _cdiv(scorner[1] - rcorner[1], rbin[1]))
    rx, ry = _cdiv(sbin[0], rbin[0]), _cdiv(sbin[1], rbin[1])
    if rx * rbin[0] != sbin[0] or ry * rbin[1] != sbin[1]:
        raise CalibError(f"bin sizes {sbin} of the image and {rbin} of the reference do not "
                         "divide (hstcal: SIZE_MISMATCH)")
    return (rx, ry, _cdiv(scorner[0] - rcorner[0], rbin[0]),
            _cdiv(scorner[1] - rcorner[1], rbin[1]))


def _interp_info(a: F32, npts: int) -> tuple[NDArray[np.int64], F32, F32]:
    """hstcal's ``InterpInfo``: index ``i`` (clipped to ``0..npts-2``) and weights ``p, q``."""
    i = np.trunc(a).astype(np.int64)
    i = np.where(i < 0, 0, i)
    i = np.where(i >= npts - 1, npts - 2, i)
    q = (a - i.astype(np.float32)).astype(np.float32)
    return i, (np.float32(1.0) - q).astype(np.float32), q


def _expand(sci: F32, ny: int, nx: int, rx: int, ry: int, x0: int, y0: int,
            path: str) -> F32:
    """Every buffer ``getShadBuff`` fills for an image of ``ny`` x ``nx``, stacked."""
    dimy = SECTLINES * ry
    nblocks = -(-ny // dimy)
    nrows, shad_x = sci.shape
    first, last = y0, y0 + SECTLINES * nblocks - 1
    if first < 0 or last >= nrows:
        raise CalibError(f"{path}: SHADFILE rows {first}..{last} are outside its {nrows} rows")
    k = x0 * rx
    if k < 0 or k + nx > shad_x * rx:
        raise CalibError(f"{path}: SHADFILE of width {shad_x} x {rx} does not cover {nx} "
                         f"columns from {k}")
    rows = sci[first:last + 1].astype(np.float32)
    if rx == 1 and ry == 1:
        return np.ascontiguousarray(rows[:, k:k + nx])
    # unbinArray on each pair of binned rows: out[n][m] = p*r*a[0][i] + q*r*a[0][i+1]
    # + p*s*a[1][i] + q*s*a[1][i+1], float32, in that order.
    aj = np.arange(dimy, dtype=np.float32) / np.float32(ry)
    _, r, s = _interp_info(aj, SECTLINES)
    ai = np.arange(k, k + nx, dtype=np.float32) / np.float32(rx)
    i, p, q = _interp_info(ai, shad_x)
    a0, a1 = rows[0::2][:, None, :], rows[1::2][:, None, :]
    out = (p[None, :] * r[:, None])[None] * a0[..., i]
    out += (q[None, :] * r[:, None])[None] * a0[..., i + 1]
    out += (p[None, :] * s[:, None])[None] * a1[..., i]
    out += (q[None, :] * s[:, None])[None] * a1[..., i + 1]
    return np.ascontiguousarray(out.reshape(nblocks * dimy, nx), dtype=np.float32)


def rej_shading(sci: F32, ref_header: Any, sci_header: Any, shape: tuple[int, int],
                radius: float, path: str) -> RejShading:
    """The SHADFILE chip ``sci`` (its SCI header ``ref_header``) as ACSREJ applies it to an
    image of ``shape`` whose SCI header is ``sci_header``, for CRRADIUS ``radius``."""
    ny, nx = shape
    try:
        rx, ry, x0, y0 = find_line_hdr(sci_header, ref_header, nx, sci.shape[1])
    except CalibError as exc:
        raise CalibError(f"{path}: {exc}") from None
    if rx < 1 or ry < 1:
        raise CalibError(f"{path}: SHADFILE bin ratio {rx} x {ry} is not usable")
    image = _expand(sci, ny, nx, rx, ry, x0, y0, path)
    dimy = SECTLINES * ry
    width = math.ceil(radius)
    r = np.arange(ny, dtype=np.int64)
    line = np.maximum(r - width, 0)
    thr_row = (line // dimy) * dimy + r % dimy
    return RejShading(image=image, thr_row=thr_row, ncols=nx // rx)
