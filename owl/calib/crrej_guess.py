"""ACSREJ's initial guess (hstcal's ``acsrej_init``): per pixel, the median or the minimum of
the sky-subtracted, exposure-normalised images whose DQ has none of the BADINPDQ bits."""

from __future__ import annotations

import numpy as np
from numba import prange

from owl.calib.crrej_kernels import F32, Stack, jit_kernel


@jit_kernel(parallel=True)
def median_guess(pic: Stack, dq: Stack, efac: F32, dqpat: int, ave: F32) -> None:
    """Median of the good values of ``pic`` (sky-subtracted, exposure-normalised; 0 when
    none)."""
    n = len(pic)
    ny, nx = pic[0].shape
    for j in prange(ny):
        buf = np.empty(n, dtype=np.float32)
        for i in range(nx):
            m = 0
            for k in range(n):
                if efac[k] > 0 and (dq[k][j, i] & dqpat) == 0:
                    v = pic[k][j, i]
                    p = m
                    while p > 0 and buf[p - 1] > v:
                        buf[p] = buf[p - 1]
                        p -= 1
                    buf[p] = v
                    m += 1
            if m == 0:
                ave[j, i] = 0
            elif m % 2 == 1:
                ave[j, i] = buf[m // 2]
            else:
                ave[j, i] = (buf[m // 2 - 1] + buf[m // 2]) / np.float32(2)


@jit_kernel(parallel=True)
def minimum_guess(pic: Stack, dq: Stack, efac: F32, dqpat: int, good_only: bool,
                  ave: F32) -> None:
    """Minimum guess from ``pic`` (sky-subtracted, exposure-normalised): hstcal's rule, or
    (``good_only``) the minimum of the good values.

    hstcal takes image 0's value, then any smaller value, and stores 0 instead whenever
    the value it takes is flagged (its own comment: "slightly buggy"), so a bad pixel in an
    image resets the guess to 0 for the images after it to beat. An image without exposure
    time offers 0, flagged.
    """
    n = len(pic)
    ny, nx = pic[0].shape
    inf = np.float32(np.inf)
    zero = np.float32(0)
    for j in prange(ny):
        cur = np.full(nx, inf, dtype=np.float32)
        for k in range(n):
            live = efac[k] > 0
            prow, qrow = pic[k][j], dq[k][j]
            for i in range(nx):
                ok = live & ((qrow[i] & dqpat) == 0)
                v = prow[i] if live else zero
                c = cur[i]
                if good_only:
                    cur[i] = v if ok & (v < c) else c
                else:
                    cur[i] = (v if ok else zero) if (k == 0) | (v < c) else c
        arow = ave[j]
        for i in range(nx):
            arow[i] = zero if cur[i] == inf else cur[i]
