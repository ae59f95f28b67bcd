"""numba kernels of ACSREJ: detection, SPILL growth and combination (the initial guess is in
:mod:`owl.calib.crrej_guess`).

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
#: The SHADFILE as the kernels take it (:func:`shade_args`): image, threshold rows, 1/t per
#: image (float32), columns the combination corrects. An image of no rows: no SHADCORR.
Shade = tuple[F32, NDArray[np.int64], F32, int]
#: A stack of images: a 3-D array or a tuple of 2-D arrays of one shape (indexed ``[k][j]``).
Stack = tuple[NDArray[Any], ...]
_F = TypeVar("_F", bound=Callable[..., Any])


def jit_kernel(parallel: bool) -> Callable[[_F], _F]:
    # numba ships no type information; the cast keeps each kernel's signature for mypy.
    # error_model="numpy": no zero-division checks in the loops (every divisor here is
    # positive where its quotient is used), so they vectorise.
    return cast(Callable[[_F], _F], numba.njit(cache=True, parallel=parallel, nogil=True,
                                               error_model="numpy"))


@jit_kernel(parallel=True)
def scaled(sci: Stack, err: Stack, sky: F32, efac: F32, pic: Stack, ee: Stack) -> None:
    """``pic[k] = (sci[k] - sky[k]) / efac[k]`` (e/s; hstcal's scrolling buffer ``pic``) and
    ``ee[k] = err[k]²``, once for every iteration; images without exposure time are left
    alone (no kernel reads them). ``pic`` may be ``sci`` and ``ee`` may be ``err``."""
    n = len(pic)
    ny, nx = pic[0].shape
    for j in prange(ny):
        for k in range(n):
            t = efac[k]
            if t <= 0:
                continue
            sk = sky[k]
            srow, erow, prow, qrow = sci[k][j], err[k][j], pic[k][j], ee[k][j]
            for i in range(nx):
                prow[i] = (srow[i] - sk) / t
                e = erow[i]
                qrow[i] = e * e


@jit_kernel(parallel=True)
def excluded_index(dq: Stack, efac: F32, dqpat: int) -> tuple[
        NDArray[np.int64], NDArray[np.int32]]:
    """The pixels hstcal never tests for a hit (``EXCLUDE``), per image and row.

    ``(start, col)``: the columns of row ``j`` of image ``k`` are
    ``col[start[k * ny + j]:start[k * ny + j + 1]]``, in increasing order. The set depends
    on DQ alone, so one index serves every iteration.
    """
    n = len(dq)
    ny, nx = dq[0].shape
    count = np.zeros(n * ny + 1, dtype=np.int64)
    for r in prange(n * ny):
        k, j = r // ny, r % ny
        if efac[k] <= 0:
            continue
        row = dq[k][j]
        c = 0
        for i in range(nx):
            c += _excluded(row[i], dqpat)
        count[r + 1] = c
    start = np.cumsum(count)
    col = np.empty(start[-1], dtype=np.int32)
    for r in prange(n * ny):
        k, j = r // ny, r % ny
        if efac[k] <= 0:
            continue
        row = dq[k][j]
        p = start[r]
        for i in range(nx):
            if _excluded(row[i], dqpat):
                col[p] = i
                p += 1
    return start, col


@numba.njit(inline="always")
def _excluded(d0: int, dqpat: int) -> bool:
    # The mask holds the DQ value, so a DQ of exactly 4 reads as EXCLUDE too.
    return (((d0 & dqpat) != 0) & (d0 != SPILL)) | (d0 == EXCLUDE)


@jit_kernel(parallel=True)
def detect(pic: Stack, ee: Stack, dq: Stack, efac: F32, ave: F32,
           sig2: np.float32, scale: np.float32, dqpat: int, shade: Shade,
           state: NDArray[np.uint8], nhit: NDArray[np.int64]) -> None:
    """Mark HIT (``pic`` outliers against ``ave``) and EXCLUDE per pixel, hstcal's test;
    ``nhit[k, j]`` counts the hits on row ``j`` of image ``k``. ``pic`` and ``ee`` are the
    sky-subtracted images in e/s and the squared errors (:func:`scaled`); ``shade`` the
    SHADFILE as :func:`shade_args` passes it."""
    n = len(pic)
    ny, nx = pic[0].shape
    zero = np.float32(0)
    one = np.float32(1)
    shad, thr_row, kf, _ = shade
    shaded = shad.shape[0] > 0
    for j in prange(ny):
        arow = ave[j]
        srow = shad[thr_row[j]] if shaded else arow
        for k in range(n):
            t = efac[k]
            st = state[k, j]
            if t <= 0:
                st[:] = OK
                nhit[k, j] = 0
                continue
            t2 = t * t
            kk = kf[k]
            prow, erow, qrow = pic[k][j], ee[k][j], dq[k][j]
            c = 0
            for i in range(nx):
                a = arow[i]
                d = prow[i] - a
                x = a * t
                if shaded:  # hstcal's signal ave * t / (1 + SHADFILE / t)
                    x = x / (srow[i] * kk + one)
                s = scale * (x if x > zero else zero)  # hstcal's clip (NaN -> 0)
                hit = d * d > sig2 * (erow[i] + s * s) / t2
                v = np.uint8(EXCLUDE) if _excluded(qrow[i], dqpat) else (
                    np.uint8(HIT) if hit else np.uint8(OK))
                st[i] = v
                c += v == HIT
            nhit[k, j] = c


@jit_kernel(parallel=True)
def reach_excluded(pic: Stack, ee: Stack, efac: F32, ave: F32, sig2: np.float32,
                   psig2: np.float32, scale: np.float32, spans: NDArray[np.int64],
                   start: NDArray[np.int64], col: NDArray[np.int32], shade: Shade,
                   state: NDArray[np.uint8], nhit: NDArray[np.int64]) -> None:
    """Test the EXCLUDE pixels that SPILL reaches before hstcal tests them for a hit.

    A SPILL mark replaces the mask value, so an excluded pixel marked from a row above (or
    from a hit to its left on its own row) is tested like any other and, when it is a hit,
    grows SPILL in turn: rows in order, images in parallel. ``start``/``col`` list the
    excluded pixels (:func:`excluded_index`).
    """
    n = len(pic)
    ny, nx = pic[0].shape
    w = (spans.shape[0] - 1) // 2
    zero = np.float32(0)
    one = np.float32(1)
    shad, thr_row, kf, _ = shade
    shaded = shad.shape[0] > 0
    for k in prange(n):
        t = efac[k]
        if t <= 0:
            continue
        t2 = t * t
        kk = kf[k]
        pk, ek = pic[k], ee[k]
        for j in range(ny):
            for p in range(start[k * ny + j], start[k * ny + j + 1]):
                i = col[p]
                near = False
                for dj in range(-w, 0):
                    jj = j + dj
                    h = spans[dj + w]
                    if jj < 0 or h < 0 or nhit[k, jj] == 0:
                        continue
                    for c in range(max(i - h, 0), min(i + h + 1, nx)):
                        if state[k, jj, c] == HIT:
                            near = True
                if nhit[k, j] > 0:
                    for m in range(1, spans[w] + 1):
                        if i - m >= 0 and state[k, j, i - m] == HIT:
                            near = True
                if not near:
                    continue
                a = ave[j, i]
                d = pk[j, i] - a
                e2 = ek[j, i]
                if not d * d > psig2 * (sig2 * e2 / t2):
                    continue
                x = a * t
                if shaded:
                    x = x / (shad[thr_row[j], i] * kk + one)
                s = scale * (x if x > zero else zero)  # hstcal's clip (NaN -> 0)
                if d * d > sig2 * (e2 + s * s) / t2:
                    state[k, j, i] = HIT
                    nhit[k, j] += 1


@jit_kernel(parallel=True)
def hit_index(state: NDArray[np.uint8], nhit: NDArray[np.int64]) -> tuple[
        NDArray[np.int64], NDArray[np.int32]]:
    """The columns of the hits, per image and row, as :func:`excluded_index` lists them."""
    n, ny, nx = state.shape
    start = np.zeros(n * ny + 1, dtype=np.int64)
    start[1:] = np.cumsum(nhit.ravel())
    col = np.empty(start[-1], dtype=np.int32)
    for r in prange(n * ny):
        k, j = r // ny, r % ny
        if nhit[k, j] == 0:
            continue
        row = state[k, j]
        p = start[r]
        for i in range(nx):
            if row[i] == HIT:
                col[p] = i
                p += 1
    return start, col


@numba.njit(inline="always")
def _near(hstart: NDArray[np.int64], hcol: NDArray[np.int32], spans: NDArray[np.int64],
          ny: int, k: int, j: int, lo: int, hi: int, out: NDArray[np.uint8]) -> None:
    """``out[i]`` = 1 where a hit on rows ``j+lo..j+hi`` of image ``k`` lies within the
    disc's half-width of that row from column ``i``, else 0."""
    nx = out.shape[0]
    w = (spans.shape[0] - 1) // 2
    out[:] = 0
    for dj in range(lo, hi + 1):
        jj = j + dj
        h = spans[dj + w]
        if jj < 0 or jj >= ny or h < 0:
            continue
        r = k * ny + jj
        for p in range(hstart[r], hstart[r + 1]):
            c = hcol[p]
            for x in range(max(c - h, 0), min(c + h + 1, nx)):
                out[x] = 1


@jit_kernel(parallel=True)
def spill_combine(pic: Stack, ee: Stack, dq: Stack, efac: F32, ave: F32,
                  sig2: np.float32, psig2: np.float32, spans: NDArray[np.int64],
                  below: bool, maskdq: int, crval: int, shade: Shade,
                  state: NDArray[np.uint8], hstart: NDArray[np.int64], hcol: NDArray[np.int32],
                  last: bool, texpt: np.float32, skysum: np.float32, out_err: F32,
                  out_dq: NDArray[np.int16], rejected: NDArray[np.bool_],
                  nrej_rows: NDArray[np.int64]) -> None:
    """Grow SPILL around the hits, rebuild ``ave``; on the last pass write SCI/ERR/DQ and
    the rejected pixels.

    SPILL comes from hits on the rows above and the same row (hstcal's scrolling buffer;
    ``below`` adds the rows below too, symmetric growth). ``hstart``/``hcol`` list the
    hits (:func:`hit_index`). With a SHADFILE the guess is hstcal's
    ``(sum / t_good) / (1 + SHADFILE / t_good)`` on its first ``ncols`` columns.
    """
    n = len(pic)
    ny, nx = pic[0].shape
    w = (spans.shape[0] - 1) // 2
    top = w if below else 0
    nocr = np.int16(~crval)
    nospill = np.int16(~SPILL)
    mdq = np.int16(maskdq)
    one = np.float32(1)
    shad, _, _, ncols = shade
    shaded = shad.shape[0] > 0
    for j in prange(ny):
        near_above = np.zeros(nx, dtype=np.uint8)
        near = np.zeros(nx, dtype=np.uint8)
        value = np.empty(nx, dtype=np.int16)
        copy = np.empty(nx, dtype=np.int16)
        total = np.zeros(nx, dtype=np.float32)
        pixexp = np.zeros(nx, dtype=np.float32)
        err2 = np.zeros(nx, dtype=np.float32)
        dq2 = np.zeros(nx, dtype=np.int16)
        dqo = np.full(nx, np.int16(crval))
        arow = ave[j]
        nrej = 0
        for k in range(n):
            t = efac[k]
            if t <= 0:
                continue
            _near(hstart, hcol, spans, ny, k, j, -w, -1, near_above)
            _near(hstart, hcol, spans, ny, k, j, 0, top, near)
            t2 = t * t
            prow, erow, qrow, st = pic[k][j], ee[k][j], dq[k][j], state[k, j]
            for i in range(nx):
                s0 = st[i]
                d0 = qrow[i]
                p = prow[i]
                d = p - arow[i]
                e2 = erow[i]
                sp = ((near_above[i] | near[i]) != 0) & (d * d > psig2 * (sig2 * e2 / t2))
                v = np.int16(HIT) if s0 == HIT else (np.int16(SPILL) if sp else (
                    np.int16(EXCLUDE) if s0 == EXCLUDE else d0))
                value[i] = v
                # A SPILL mark from a row above is in the mask before this row is tested
                # and combined (a later HIT there included), so hstcal's DQ copy sees
                # SPILL instead of the DQ.
                copy[i] = np.int16(SPILL) if sp & (near_above[i] != 0) else d0
                use = (v & mdq) == 0
                total[i] = total[i] + p * t if use else total[i]
                pixexp[i] = pixexp[i] + t if use else pixexp[i]
                err2[i] = err2[i] + e2 if use else err2[i]
            if last:
                rej = rejected[k, j]
                for i in range(nx):
                    v = value[i]
                    bad = (v == HIT) | (v == SPILL)
                    rej[i] = bad
                    nrej += bad
                    b = np.int16((copy[i] | dq2[i]) & nocr & nospill)
                    sval = np.int16(b | dqo[i])
                    dq2[i] = np.int16(b | crval) if bad else b
                    dqo[i] = sval if bad else np.int16(sval & nocr)
        if last:
            for i in range(nx):
                if pixexp[i] > 0:
                    q = np.float32(texpt / pixexp[i])
                    out_err[j, i] = np.float32(np.float64(q) * math.sqrt(np.float64(err2[i])))
                    a = total[i] / pixexp[i]
                else:
                    out_err[j, i] = 0
                    a = np.float32(0)
                arow[i] = a * texpt + skysum
                out_dq[j, i] = dqo[i]
            nrej_rows[j] = nrej
        else:
            for i in range(nx):
                arow[i] = total[i] / pixexp[i] if pixexp[i] > 0 else arow[i]
        if shaded:  # the same guess divided by (1 + SHADFILE / t_good), first ncols only
            srow = shad[j]
            for i in range(min(ncols, nx)):
                if pixexp[i] > 0:
                    a = (total[i] / pixexp[i]) / (one + srow[i] / pixexp[i])
                    arow[i] = a * texpt + skysum if last else a


@jit_kernel(parallel=True)
def flag_dq(dq: NDArray[np.int16], rejected: NDArray[np.bool_], crval: int,
            out: NDArray[np.uint16]) -> None:
    """``dq`` with ``crval`` set where ``rejected`` and cleared elsewhere, as big-endian
    16-bit words (``out.view('>i2')`` reads the values; its bytes are FITS's)."""
    ny, nx = dq.shape
    cr = np.int16(crval)
    nocr = np.int16(~crval)
    for j in prange(ny):
        for i in range(nx):
            v = np.uint16(np.int16(dq[j, i] | cr) if rejected[j, i] else np.int16(dq[j, i] & nocr))
            out[j, i] = np.uint16((v >> np.uint16(8)) | (v << np.uint16(8)))


def shade_args(image: F32 | None, thr_row: NDArray[np.int64] | None, ncols: int,
               efac: F32) -> Shade:
    """The :data:`Shade` tuple; ``image`` None: no SHADCORR. The factor per image is hstcal's
    ``1./efacn`` (double) passed as a float."""
    kf = np.array([np.float32(1.0 / float(t)) if t > 0 else np.float32(0) for t in efac],
                  dtype=np.float32)
    if image is None or thr_row is None:
        return (np.zeros((0, 1), np.float32), np.zeros(0, np.int64), kf, 0)
    return (np.ascontiguousarray(image, dtype=np.float32),
            np.ascontiguousarray(thr_row, dtype=np.int64), kf, int(ncols))


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
