"""numba kernels of ACSREJ: initial guess, detection, SPILL growth and combination.

They reproduce hstcal's ``acsrej_init`` and ``acsrej_loop`` pixel for pixel, float32
arithmetic in the same order; rows run in parallel, which hstcal's row-sequential scrolling
buffers allow because a row's result depends on other rows only through SPILL marks made by
hits on rows above it (and on the same row), tested against the previous iteration's guess.

hstcal's rejection mask starts as the input DQ value; the kernels keep that rule:

- ``EXCLUDE`` (not tested for a hit): DQ has a ``dqpat`` (BADINPDQ) bit and is not exactly 2,
  or DQ is exactly 4 (the value of EXCLUDE itself);
- left out of the sum: the mask value has a ``maskdq`` bit (2, 4, 8; 2 and 8 for a BIAS or
  DARK stack), i.e. input DQ bits 2, 4 and 8 never enter the combination;
- rejected (counted, CR bit written back): a mask value of exactly HIT (8) or SPILL (2);
- output DQ: the OR of the inputs' DQ without the CR bit and bit 2, plus the CR bit where
  every image is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

#: hstcal's mask values (``acsrej_loop.c``).
OK, SPILL, EXCLUDE, HIT = 0, 2, 4, 8

F32 = NDArray[np.float32]
_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(parallel: bool) -> Callable[[_F], _F]:
    # numba ships no type information; the cast keeps each kernel's signature for mypy.
    return cast(Callable[[_F], _F], numba.njit(cache=True, parallel=parallel, nogil=True))


@_jit(parallel=True)
def median_guess(sci: F32, dq: NDArray[np.int16], sky: F32, efac: F32, dqpat: int,
                 ave: F32) -> None:
    """Median of the good, sky-subtracted, exposure-normalised values (0 when none)."""
    n, ny, nx = sci.shape
    for j in prange(ny):
        buf = np.empty(n, dtype=np.float32)
        for i in range(nx):
            m = 0
            for k in range(n):
                if efac[k] > 0 and (dq[k, j, i] & dqpat) == 0:
                    v = (sci[k, j, i] - sky[k]) / efac[k]
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


@_jit(parallel=True)
def minimum_guess(sci: F32, dq: NDArray[np.int16], sky: F32, efac: F32, dqpat: int,
                  good_only: bool, ave: F32) -> None:
    """Minimum guess: hstcal's rule, or (``good_only``) the minimum of the good values.

    hstcal takes image 0's value, then any smaller value, and stores 0 instead whenever
    the value it takes is flagged (its own comment: "slightly buggy"), so a bad pixel in an
    image resets the guess to 0 for the images after it to beat.
    """
    n, ny, nx = sci.shape
    inf = np.float32(np.inf)
    for j in prange(ny):
        for i in range(nx):
            cur = inf
            for k in range(n):
                ok = efac[k] > 0 and (dq[k, j, i] & dqpat) == 0
                v = (sci[k, j, i] - sky[k]) / efac[k] if efac[k] > 0 else np.float32(0)
                if good_only:
                    if ok and v < cur:
                        cur = v
                elif k == 0 or v < cur:
                    cur = v if ok else np.float32(0)
            ave[j, i] = 0 if cur == inf else cur


@_jit(parallel=True)
def detect(sci: F32, err: F32, dq: NDArray[np.int16], sky: F32, efac: F32, ave: F32,
           sig2: np.float32, scale: np.float32, dqpat: int, w: int,
           state: NDArray[np.uint8], hitbits: NDArray[np.uint16]) -> None:
    """Mark HIT (``sci`` outliers against ``ave``) and EXCLUDE per pixel, hstcal's test.

    ``hitbits[k, j, c]`` bit ``m`` says: a hit on row ``j`` lies ``m`` columns from ``c``.
    """
    n, ny, nx = sci.shape
    zero = np.float32(0)
    for j in prange(ny):
        for k in range(n):
            t = efac[k]
            bits = hitbits[k, j]
            bits[:] = 0
            if t <= 0:
                state[k, j, :] = OK
                continue
            t2 = t * t
            for i in range(nx):
                d0 = dq[k, j, i]
                # The mask holds the DQ value, so a DQ of exactly 4 reads as EXCLUDE too.
                if ((d0 & dqpat) != 0 and d0 != SPILL) or d0 == EXCLUDE:
                    state[k, j, i] = EXCLUDE
                    continue
                a = ave[j, i]
                d = (sci[k, j, i] - sky[k]) / t - a
                e = err[k, j, i]
                s = scale * max(a * t, zero)
                if d * d > sig2 * (e * e + s * s) / t2:
                    state[k, j, i] = HIT
                    for c in range(max(i - w, 0), min(i + w + 1, nx)):
                        bits[c] |= np.uint16(1 << abs(c - i))
                else:
                    state[k, j, i] = OK


@_jit(parallel=True)
def reach_excluded(sci: F32, err: F32, sky: F32, efac: F32, ave: F32, sig2: np.float32,
                   psig2: np.float32, scale: np.float32, spans: NDArray[np.int64],
                   state: NDArray[np.uint8], hitbits: NDArray[np.uint16]) -> None:
    """Test the EXCLUDE pixels that SPILL reaches before hstcal tests them for a hit.

    A SPILL mark replaces the mask value, so an excluded pixel marked from a row above (or
    from a hit to its left on its own row) is tested like any other and, when it is a hit,
    grows SPILL in turn: rows in order, images in parallel.
    """
    n, ny, nx = sci.shape
    w = (spans.shape[0] - 1) // 2
    zero = np.float32(0)
    for k in prange(n):
        t = efac[k]
        if t <= 0:
            continue
        t2 = t * t
        for j in range(ny):
            for i in range(nx):
                if state[k, j, i] != EXCLUDE:
                    continue
                near = False
                for dj in range(-w, 0):
                    jj = j + dj
                    if jj >= 0 and spans[dj + w] >= 0 and (
                            hitbits[k, jj, i] & np.uint16((1 << (spans[dj + w] + 1)) - 1)):
                        near = True
                for m in range(1, spans[w] + 1):
                    if i - m >= 0 and state[k, j, i - m] == HIT:
                        near = True
                if not near:
                    continue
                a = ave[j, i]
                d = (sci[k, j, i] - sky[k]) / t - a
                e = err[k, j, i]
                if not d * d > psig2 * (sig2 * (e * e) / t2):
                    continue
                s = scale * max(a * t, zero)
                if d * d > sig2 * (e * e + s * s) / t2:
                    state[k, j, i] = HIT
                    for c in range(max(i - w, 0), min(i + w + 1, nx)):
                        hitbits[k, j, c] |= np.uint16(1 << abs(c - i))


@_jit(parallel=True)
def spill_combine(sci: F32, err: F32, dq: NDArray[np.int16], sky: F32, efac: F32, ave: F32,
                  sig2: np.float32, psig2: np.float32, spans: NDArray[np.int64],
                  below: bool, maskdq: int, crval: int, state: NDArray[np.uint8],
                  hitbits: NDArray[np.uint16], last: bool, texpt: np.float32,
                  skysum: np.float32, out_err: F32, out_dq: NDArray[np.int16],
                  rejected: NDArray[np.bool_], nrej_rows: NDArray[np.int64]) -> None:
    """Grow SPILL around the hits, rebuild ``ave``; on the last pass write SCI/ERR/DQ.

    SPILL comes from hits on the rows above and the same row (hstcal's scrolling buffer;
    ``below`` adds the rows below too, symmetric growth).
    """
    n, ny, nx = sci.shape
    w = (spans.shape[0] - 1) // 2
    top = w if below else 0
    nocr = np.int16(~crval)
    nospill = np.int16(~SPILL)
    for j in prange(ny):
        near_above = np.zeros(nx, dtype=np.uint16)
        near = np.zeros(nx, dtype=np.uint16)
        value = np.empty(nx, dtype=np.int16)
        copy = np.empty(nx, dtype=np.int16)
        total = np.zeros(nx, dtype=np.float32)
        pixexp = np.zeros(nx, dtype=np.float32)
        err2 = np.zeros(nx, dtype=np.float32)
        dq2 = np.zeros(nx, dtype=np.int16)
        dqo = np.full(nx, np.int16(crval))
        nrej = 0
        for k in range(n):
            t = efac[k]
            if t <= 0:
                continue
            near_above[:] = 0
            near[:] = 0
            for dj in range(-w, top + 1):
                jj = j + dj
                if 0 <= jj < ny and spans[dj + w] >= 0:
                    bits = np.uint16((1 << (spans[dj + w] + 1)) - 1)
                    row = hitbits[k, jj]
                    target = near_above if dj < 0 else near
                    for i in range(nx):
                        target[i] |= row[i] & bits
            t2 = t * t
            for i in range(nx):
                st = state[k, j, i]
                d0 = dq[k, j, i]
                copy[i] = d0
                value[i] = HIT if st == HIT else (EXCLUDE if st == EXCLUDE else d0)
                if near_above[i] or near[i]:
                    d = (sci[k, j, i] - sky[k]) / t - ave[j, i]
                    e = err[k, j, i]
                    if d * d > psig2 * (sig2 * (e * e) / t2):
                        if st != HIT:
                            value[i] = SPILL
                        # A SPILL mark from a row above is in the mask before this row
                        # is tested and combined (a later HIT there included), so
                        # hstcal's DQ copy sees SPILL instead of the DQ.
                        if near_above[i]:
                            copy[i] = SPILL
                if (value[i] & maskdq) == 0:
                    pic = (sci[k, j, i] - sky[k]) / t
                    total[i] += pic * t
                    pixexp[i] += t
                    e = err[k, j, i]
                    err2[i] += e * e
                bad = value[i] == HIT or value[i] == SPILL
                rejected[k, j, i] = bad
                if bad:
                    nrej += 1
                if last:
                    b = np.int16((copy[i] | dq2[i]) & nocr & nospill)
                    sval = np.int16(b | dqo[i])
                    if bad:
                        b = np.int16(b | crval)
                    else:
                        sval = np.int16(sval & nocr)
                    dq2[i] = b
                    dqo[i] = sval
        for i in range(nx):
            if pixexp[i] > 0:
                ave[j, i] = total[i] / pixexp[i]
                if last:
                    q = np.float32(texpt / pixexp[i])
                    out_err[j, i] = np.float32(np.float64(q) * math.sqrt(np.float64(err2[i])))
            elif last:
                ave[j, i] = 0
                out_err[j, i] = 0
            if last:
                ave[j, i] = ave[j, i] * texpt + skysum
                out_dq[j, i] = dqo[i]
        nrej_rows[j] = nrej


def spans(radius: float) -> NDArray[np.int64]:
    """Half-width of the disc of ``radius`` on each row offset ``-w..w`` (-1: none).

    hstcal's test is ``(float)(dx² + dy²) <= radius²`` with float32 radius².
    """
    w = math.ceil(radius)
    r2 = float(np.float32(radius) * np.float32(radius))
    out = []
    for dj in range(-w, w + 1):
        half = -1
        for dx in range(w + 1):
            if dx * dx + dj * dj <= r2:
                half = dx
        out.append(half)
    return np.array(out, dtype=np.int64)
