"""numba kernels for the per-pixel CALACS steps (DQICORR … FLATCORR, trimming).

Same functions, signatures and conventions as :mod:`owl.calib.kernels_numpy` (read that
module for the definitions and the amplifier layout); these fuse each step into one pass
over memory and run rows in parallel (``prange``). Public functions are thin typed wrappers
that normalise arguments (float32 scalars and ``(2, 2)`` per-amp arrays, clipped amp
boundaries) and call a compiled kernel. ``numba.set_num_threads`` controls the threads.

Results equal the numpy versions to float32 rounding: the arithmetic is done in float32 in
the same order (tests hold them to 1e-6 relative).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

from owl.calib import kernels_numpy as N
from owl.calib.kernels_numpy import (
    CALIBDEFECT,
    SATPIXEL,
    BiasLevel,
    clean_bias_levels,
    drift_slope,
    fit_bias_level,
    fit_line,
)

__all__ = [
    "CALIBDEFECT",
    "SATPIXEL",
    "BiasLevel",
    "apply_bpixtab",
    "clean_bias_levels",
    "divide_flat",
    "drift_slope",
    "fit_bias_level",
    "fit_line",
    "flag_above",
    "flag_saturation",
    "init_err",
    "multiply_quadrants",
    "overscan_row_levels",
    "subtract_bias_level",
    "subtract_scaled",
    "trim",
    "virtual_overscan_columns",
]

F32 = NDArray[np.float32]
I16 = NDArray[np.int16]
_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(parallel: bool) -> Callable[[_F], _F]:
    # numba ships no type information; the cast keeps each kernel's own signature visible
    # to mypy instead of turning every decorated function into Any.
    return cast(Callable[[_F], _F], numba.njit(cache=True, parallel=parallel, nogil=True))


def _quad(quad: NDArray[np.floating]) -> F32:
    q = np.ascontiguousarray(np.asarray(quad, dtype=np.float32))
    if q.shape != (2, 2):
        raise ValueError(f"per-amp values must have shape (2, 2), not {q.shape}")
    return q


def _bounds(shape: tuple[int, ...], ampx: int, ampy: int) -> tuple[int, int]:
    return min(max(int(ampx), 0), shape[1]), min(max(int(ampy), 0), shape[0])


@_jit(parallel=False)
def _apply_bpixtab(dq: I16, rows: NDArray[np.int64], x0: int, y0: int) -> None:
    ny, nx = dq.shape
    for k in range(rows.shape[0]):
        x = rows[k, 0] - 1 + x0
        y = rows[k, 1] - 1 + y0
        n, ax, val = rows[k, 2], rows[k, 3], rows[k, 4]
        for m in range(n):
            xi, yi = (x + m, y) if ax == 1 else (x, y + m)
            if 0 <= xi < nx and 0 <= yi < ny:
                dq[yi, xi] |= val


def apply_bpixtab(dq: I16, pix1: NDArray[np.integer], pix2: NDArray[np.integer],
                  length: NDArray[np.integer], axis: NDArray[np.integer],
                  value: NDArray[np.integer], x0: int, y0: int) -> None:
    """OR the flags of a bad-pixel table into ``dq`` in place (see the numpy version)."""
    rows = np.ascontiguousarray(np.stack([pix1, pix2, length, axis, value], axis=1),
                                dtype=np.int64).reshape(-1, 5)
    _apply_bpixtab(dq, rows, int(x0), int(y0))


@_jit(parallel=True)
def _subtract_scaled(sci: F32, err: F32, dq: I16, ref_sci: F32, ref_err: F32, ref_dq: I16,
                     s: np.float32) -> None:
    ny, nx = sci.shape
    for j in prange(ny):
        for i in range(nx):
            sci[j, i] -= s * ref_sci[j, i]
            e = s * ref_err[j, i]
            err[j, i] = np.sqrt(err[j, i] * err[j, i] + e * e)
            dq[j, i] |= ref_dq[j, i]


@_jit(parallel=True)
def _subtract_scaled_c(sci: F32, err: F32, dq: I16, ref_sci: F32, ref_err: np.float32,
                       ref_dq: np.int16, s: np.float32) -> None:
    ny, nx = sci.shape
    for j in prange(ny):
        for i in range(nx):
            sci[j, i] -= s * ref_sci[j, i]
            e = s * ref_err
            err[j, i] = np.sqrt(err[j, i] * err[j, i] + e * e)
            dq[j, i] |= ref_dq


def _constant(a: NDArray[Any]) -> bool:
    """True for a zero-stride view (a constant extension, see :func:`fitsio.read_frame`)."""
    return a.size > 0 and all(st == 0 for st in a.strides)


def subtract_scaled(sci: F32, err: F32, dq: I16, ref_sci: F32, ref_err: F32, ref_dq: I16,
                    scale: float) -> None:
    """Subtract ``scale`` times a reference image (SCI, ERR, DQ) in place (bias, dark, flash).

    Constant reference ERR and DQ (zero-stride views) go to a kernel that takes them as
    scalars: the same arithmetic, without reading two arrays of one value.
    """
    if _constant(ref_err) and _constant(ref_dq) and ref_sci.shape == sci.shape:
        _subtract_scaled_c(sci, err, dq, ref_sci, np.float32(ref_err.flat[0]),
                           np.int16(ref_dq.flat[0]), np.float32(scale))
        return
    _subtract_scaled(sci, err, dq, ref_sci, ref_err, ref_dq, np.float32(scale))


@_jit(parallel=True)
def _divide_flat(sci: F32, err: F32, dq: I16, flat_sci: F32, flat_err: F32,
                 flat_dq: I16, defect: int) -> None:
    ny, nx = sci.shape
    for j in prange(ny):
        for i in range(nx):
            f = flat_sci[j, i]
            if f == 0:
                dq[j, i] |= flat_dq[j, i] | defect
            else:
                a = sci[j, i]
                sci[j, i] = a / f
                ea = err[j, i] / f
                eb = flat_err[j, i] * a / f / f
                err[j, i] = np.sqrt(ea * ea + eb * eb)
                dq[j, i] |= flat_dq[j, i]


@_jit(parallel=True)
def _divide_flat_c(sci: F32, err: F32, dq: I16, flat_sci: F32, flat_err: np.float32,
                   flat_dq: np.int16, defect: int) -> None:
    ny, nx = sci.shape
    for j in prange(ny):
        for i in range(nx):
            f = flat_sci[j, i]
            if f == 0:
                dq[j, i] |= flat_dq | defect
            else:
                a = sci[j, i]
                sci[j, i] = a / f
                ea = err[j, i] / f
                eb = flat_err * a / f / f
                err[j, i] = np.sqrt(ea * ea + eb * eb)
                dq[j, i] |= flat_dq


def divide_flat(sci: F32, err: F32, dq: I16, flat_sci: F32, flat_err: F32,
                flat_dq: I16) -> None:
    """Divide by a flat field with ERR propagation in place (see the numpy version).

    Constant flat ERR and DQ (zero-stride views) are passed to the kernel as scalars.
    """
    if _constant(flat_err) and _constant(flat_dq) and flat_sci.shape == sci.shape:
        _divide_flat_c(sci, err, dq, flat_sci, np.float32(flat_err.flat[0]),
                       np.int16(flat_dq.flat[0]), CALIBDEFECT)
        return
    _divide_flat(sci, err, dq, flat_sci, flat_err, flat_dq, CALIBDEFECT)


@_jit(parallel=True)
def _multiply_quadrants(sci: F32, err: F32, q: F32, ampx: int, ampy: int) -> None:
    ny, nx = sci.shape
    for j in prange(ny):
        r = 1 if j >= ampy else 0
        for i in range(nx):
            g = q[r, 0] if i < ampx else q[r, 1]
            sci[j, i] *= g
            err[j, i] *= g


def multiply_quadrants(sci: F32, err: F32, quad: NDArray[np.floating], ampx: int,
                       ampy: int) -> None:
    """Multiply SCI and ERR by a per-amp factor (the gain) in place."""
    bx, by = _bounds(sci.shape, ampx, ampy)
    _multiply_quadrants(sci, err, _quad(quad), bx, by)


@_jit(parallel=True)
def _init_err(sci: F32, err: F32, rn: F32, ampx: int, ampy: int) -> None:
    ny, nx = sci.shape
    zero = np.float32(0)
    for j in prange(ny):
        r = 1 if j >= ampy else 0
        for i in range(nx):
            n = rn[r, 0] if i < ampx else rn[r, 1]
            e = err[j, i]
            err[j, i] = np.sqrt(max(sci[j, i], zero) + n * n + e * e)


def init_err(sci: F32, err: F32, readnoise: NDArray[np.floating], ampx: int,
             ampy: int) -> None:
    """Initialise ERR from read noise and Poisson noise (electrons) in place."""
    bx, by = _bounds(sci.shape, ampx, ampy)
    _init_err(sci, err, _quad(readnoise), bx, by)


@_jit(parallel=True)
def _flag_saturation(sci: F32, dq: I16, sat: F32, ampx: int, ampy: int, flag: int) -> None:
    ny, nx = sci.shape
    for j in prange(ny):
        r = 1 if j >= ampy else 0
        for i in range(nx):
            limit = sat[r, 0] if i < ampx else sat[r, 1]
            if sci[j, i] > limit:
                dq[j, i] |= flag


def flag_saturation(sci: F32, dq: I16, fullwell: NDArray[np.floating], ampx: int,
                    ampy: int, flag: int = SATPIXEL) -> None:
    """OR ``flag`` into ``dq`` where ``sci`` exceeds the per-amp full well (in place)."""
    bx, by = _bounds(sci.shape, ampx, ampy)
    _flag_saturation(sci, dq, _quad(fullwell), bx, by, int(flag))


@_jit(parallel=True)
def _flag_above(sci: F32, dq: I16, limit: F32, x0: int, y0: int, flag: int) -> None:
    ly, lx = limit.shape
    for j in prange(ly):
        for i in range(lx):
            if sci[y0 + j, x0 + i] > limit[j, i]:
                dq[y0 + j, x0 + i] |= flag


def flag_above(sci: F32, dq: I16, limit: F32, x0: int, y0: int,
               flag: int = SATPIXEL) -> None:
    """OR ``flag`` into ``dq`` where ``sci`` exceeds a limit image (see the numpy version)."""
    ly, lx = limit.shape
    if x0 < 0 or y0 < 0 or y0 + ly > sci.shape[0] or x0 + lx > sci.shape[1]:
        raise ValueError(f"limit image {limit.shape} at ({y0}, {x0}) exceeds {sci.shape}")
    _flag_above(sci, dq, limit, int(x0), int(y0), int(flag))


def trim(image: NDArray[np.generic], x0: int, x1: int, y0: int,
         y1: int) -> NDArray[np.generic]:
    """Return a contiguous copy of ``image[y0:y1, x0:x1]`` (overscan removal).

    A copy is all memory traffic: numpy's row ``memcpy`` is already at the floor, so this is
    the numpy version (a numba loop measured 2x slower).
    """
    return N.trim(image, x0, x1, y0, y1)


@_jit(parallel=False)
def _insert(buf: NDArray[np.float64], n: int, value: float) -> int:
    # Insertion sort: overscan rows and columns hold a few dozen values.
    p = n
    while p > 0 and buf[p - 1] > value:
        buf[p] = buf[p - 1]
        p -= 1
    buf[p] = value
    return n + 1


@_jit(parallel=False)
def _sorted_median(buf: NDArray[np.float64], n: int) -> float:
    if n == 0:
        return np.nan
    if n % 2:
        return float(buf[n // 2])
    return float(0.5 * (buf[n // 2 - 1] + buf[n // 2]))


@_jit(parallel=True)
def _overscan_row_levels(sci: F32, dq: I16, cols: NDArray[np.int64], row0: int,
                         sdqflags: int, out: NDArray[np.float64]) -> None:
    for k in prange(out.shape[0]):
        j = row0 + k
        buf = np.empty(cols.shape[0], dtype=np.float64)
        n = 0
        for c in cols:
            if (dq[j, c] & sdqflags) == 0:
                n = _insert(buf, n, sci[j, c])
        out[k] = _sorted_median(buf, n)


def overscan_row_levels(sci: F32, dq: I16, sections: NDArray[np.integer], row0: int,
                        row1: int, sdqflags: int) -> NDArray[np.float64]:
    """Median of the good overscan pixels of each row (see the numpy version)."""
    cols = np.concatenate([np.arange(a, b + 1) for a, b in sections]
                          + [np.empty(0, np.int64)]).astype(np.int64)
    out = np.empty(max(row1 - row0, 0), dtype=np.float64)
    _overscan_row_levels(sci, dq, cols, int(row0), int(sdqflags), out)
    return out


@_jit(parallel=True)
def _virtual_overscan_columns(sci: F32, dq: I16, vx0: int, vy0: int, vy1: int,
                              sdqflags: int, out: NDArray[np.float64]) -> None:
    for k in prange(out.shape[0]):
        i = vx0 + k
        buf = np.empty(vy1 - vy0 + 1, dtype=np.float64)
        n = 0
        for j in range(vy0, vy1 + 1):
            if (dq[j, i] & sdqflags) == 0:
                n = _insert(buf, n, sci[j, i])
        out[k] = _sorted_median(buf, n)


def virtual_overscan_columns(sci: F32, dq: I16, vx0: int, vx1: int, vy0: int, vy1: int,
                             sdqflags: int) -> NDArray[np.float64]:
    """Median over rows ``vy0..vy1`` of each column ``vx0..vx1`` (see the numpy version)."""
    out = np.empty(max(vx1 - vx0 + 1, 0), dtype=np.float64)
    _virtual_overscan_columns(sci, dq, int(vx0), int(vy0), int(vy1), int(sdqflags), out)
    return out


@_jit(parallel=True)
def _subtract_bias_level(sci: F32, row0: int, row1: int, col0: int, col1: int,
                         per_row: NDArray[np.float64], per_col: NDArray[np.float64]) -> None:
    for j in prange(row0, row1):
        level = per_row[j - row0]
        for i in range(col0, col1):
            sci[j, i] = np.float32(np.float64(sci[j, i]) - level - per_col[i - col0])


def subtract_bias_level(sci: F32, row0: int, row1: int, col0: int, col1: int,
                        level: BiasLevel) -> None:
    """Subtract a fitted bias level from an amp region in place (see the numpy version)."""
    rows = np.arange(row0, row1, dtype=np.float64)
    cols = np.arange(col0, col1, dtype=np.float64)
    per_row = level.intercept + level.slope * (rows - level.mid_row)
    per_col = level.drift_slope * (cols - level.drift_zero)
    _subtract_bias_level(sci, int(row0), int(row1), int(col0), int(col1), per_row, per_col)
