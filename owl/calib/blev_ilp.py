"""Post-SM4 BLEVCORR kernels run on several amps at once (:mod:`owl.calib.blev_postsm4`).

The bias-shift recursion and the good-row sums are chains of float64 operations, each step
waiting for the one before: one amp at a time, they run at the latency of a multiply and
an add, not at the machine's throughput. Here two amps' recursions (and four amps' sums)
advance in one loop, so their independent chains overlap. Each chain does the same
operations in the same order as the one-amp kernels, so the numbers are the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
_F = TypeVar("_F", bound=Callable[..., Any])

NBIAS_COLS = 24
NOSCN_ROWS = 20


def _jit(parallel: bool) -> Callable[[_F], _F]:
    # numba ships no type information; the cast keeps each kernel's signature for mypy.
    return cast(Callable[[_F], _F], numba.njit(cache=True, parallel=parallel, nogil=True))


@_jit(parallel=False)
def magic_square(a: Any) -> float:
    """Mean of the "magic square" of a turned amp: rows 2057-2066, columns 13-22."""
    s = 0.0
    num = 0
    for j in range(2057, 2067):
        for k in range(13, 23):
            s += a[j, k]
            num += 1
    return s / num


@_jit(parallel=False)
def bias_shift_pair(va: F32, vb: F32, da: F64, db: F64, tca: float, tcb: float,
                    dca: float, dcb: float, dsia: float, dsib: float) -> tuple[float, float]:
    """The bias shift (``_bias_shift_f32``) of two turned amps of one shape, in place, with
    float64 scratch amps ``da``, ``db``; returns their magic-square levels."""
    rows, cols = va.shape
    serial_freq = 1000.0 / 22.0
    ngap = int(serial_freq * 3.212 + 0.5)
    msa = magic_square(va)
    msb = magic_square(vb)
    width = cols + ngap
    fa = 1.0 - math.exp(-1.0 / (tca * serial_freq))
    fb = 1.0 - math.exp(-1.0 / (tcb * serial_freq))
    pa: float = msa * dca
    pb: float = msb * dcb
    for j in range(rows):
        for k in range(cols):
            xa = float(va[j, k])
            xb = float(vb[j, k])
            ca = xa * fa * dca + (1.0 - fa) * pa
            cb = xb * fb * dcb + (1.0 - fb) * pb
            da[j, k] = (xa - dsia * ca) - (10.0 / 22.0) * (ca - pa)
            db[j, k] = (xb - dsib * cb) - (10.0 / 22.0) * (cb - pb)
            pa = ca
            pb = cb
        for _ in range(cols, width):
            pa = msa * fa * dca + (1.0 - fa) * pa
            pb = msb * fb * dcb + (1.0 - fb) * pb
    la = magic_square(da)
    lb = magic_square(db)
    for j in range(rows):
        for k in range(cols):
            va[j, k] = np.float32(da[j, k] - la)
            vb[j, k] = np.float32(db[j, k] - lb)
    return la, lb


@_jit(parallel=False)
def good_rows4(p: F64, v0: F32, v1: F32, v2: F32, v3: F32, good: NDArray[np.uint8]) -> None:
    """``_good_rows`` of the four turned amps (one shape): prescans ``p[k]``, rows of
    ``good[k]``; the four amps' sums advance together, each in its own order."""
    rows, cols = v0.shape
    bm = np.zeros(4)
    for k in range(4):
        s = 0.0
        for i in range(rows - NOSCN_ROWS):
            for j in range(NBIAS_COLS):
                s += p[k, i, j]
        bm[k] = s / ((rows - NOSCN_ROWS) * NBIAS_COLS)
    s0 = s1 = s2 = s3 = 0.0
    b0, b1, b2, b3 = bm[0], bm[1], bm[2], bm[3]
    for i in range(rows - NOSCN_ROWS):
        for j in range(NBIAS_COLS, cols):
            s0 += np.float64(v0[i, j]) - b0
            s1 += np.float64(v1[i, j]) - b1
            s2 += np.float64(v2[i, j]) - b2
            s3 += np.float64(v3[i, j]) - b3
    n = (cols - NBIAS_COLS) * (rows - NOSCN_ROWS)
    amp_mean = (s0 / n, s1 / n, s2 / n, s3 / n)
    for k in range(4):
        good[k, 0] = 0
    ref = np.empty(4)
    for i in range(1, rows):
        for k in range(4):
            s = 0.0
            for j in range(NBIAS_COLS):
                s += p[k, i, j] + p[k, i - 1, j]
            ref[k] = s / (2 * NBIAS_COLS)
        s0 = s1 = s2 = s3 = 0.0
        r0, r1, r2, r3 = ref[0], ref[1], ref[2], ref[3]
        for j in range(NBIAS_COLS, cols):
            s0 += np.float64(v0[i, j]) - r0
            s1 += np.float64(v1[i, j]) - r1
            s2 += np.float64(v2[i, j]) - r2
            s3 += np.float64(v3[i, j]) - r3
        m = cols - NBIAS_COLS
        _good_row(good, 0, i, s0 / m - amp_mean[0], v0)
        _good_row(good, 1, i, s1 / m - amp_mean[1], v1)
        _good_row(good, 2, i, s2 / m - amp_mean[2], v2)
        _good_row(good, 3, i, s3 / m - amp_mean[3], v3)


@_jit(parallel=False)
def _good_row(good: NDArray[np.uint8], k: int, i: int, diff: float, v: F32) -> None:
    bright = False
    for j in range(24, 30):
        if v[i, j] > 70000:
            bright = True
    # C's abs() of a double goes through int: |trunc(x)| > 100.
    good[k, i] = 0 if (abs(int(diff)) > 100 or bright) else 1
