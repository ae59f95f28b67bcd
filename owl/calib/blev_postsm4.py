"""BLEVCORR of post-SM4 WFC full frames, hstcal's ``blev_funcs_postsm4.c``.

From SM4 on, hstcal does not fit the overscan line per amp: for full frames with both chips'
overscan it runs, on the four amps turned so that each amp's readout corner is at row 0,
column 0 (2068 x 2072 arrays incl. 24 prescan columns and 20 virtual rows):

1. for DS_INT readouts at CCDGAIN 2, the bias shift (ACS ISR 2012-02): a per-amp recursive
   model of the DC bias level driven by the signal, removed, then the "magic square" mean
   (virtual rows 2057-2066, prescan columns 13-22) subtracted; and the amplifier cross talk
   (each pixel gains 9.1e-5 of its mirror pixel across the chip);
2. the destriping (``doDestripe``): each prescan column's clipped mean (after removing each
   row's mean of columns 12-23, skipping rows next to saturated pixels) is subtracted from
   that column; each amp's clipped bias mean (good rows only) is subtracted from the whole
   amp (MEANBLEV is the mean of a chip's two); the mean over the amps of each prescan row,
   interpolated along the row for the readout time, is subtracted from all four amps.

The arithmetic is hstcal's (float64 in the same loop order, float32 in between the steps),
so the result is the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

from owl.calib.blev_ilp import NBIAS_COLS, NOSCN_ROWS, bias_shift_pair, good_rows4, magic_square

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
_F = TypeVar("_F", bound=Callable[..., Any])

#: Per amp A-D: AC time constant (us), DC ratio, DSI sensitivity (hstcal's constants).
TIME_CONST = (37.290251, 36.180001, 37.867770, 42.461249)
DC_RATIO = (0.3, 0.3, 0.3, 0.3)
DSI_SENS = (2.9188919e-3, 10.805754e-3, 12.432145e-3, 3.8596253e-3)
CROSS_SCALE = 9.1e-5


def _jit(parallel: bool) -> Callable[[_F], _F]:
    # numba ships no type information; the cast keeps each kernel's signature for mypy.
    return cast(Callable[[_F], _F], numba.njit(cache=True, parallel=parallel, nogil=True))


def amp_view(chip1: F32, chip2: F32, amp: int) -> F32:
    """Amp ``amp`` (0-3 = A-D) of a raw chip pair, turned so its corner is at [0, 0]."""
    half = chip1.shape[1] // 2
    if amp == 0:
        return chip1[::-1, :half]
    if amp == 1:
        return chip1[::-1, ::-1][:, :half]
    if amp == 2:
        return chip2[:, :half]
    return chip2[:, ::-1][:, :half]


@_jit(parallel=False)
def _shift(src: Any, dst: F64, time_const: float, dc_ratio: float, dsi: float) -> float:
    """The bias-shift recursion over amp ``src`` into float64 ``dst`` (may be ``src``);
    returns the magic-square level of the result (not yet subtracted)."""
    rows, cols = src.shape
    serial_freq = 1000.0 / 22.0
    ngap = int(serial_freq * 3.212 + 0.5)
    msm = magic_square(src)
    width = cols + ngap
    factor = 1.0 - math.exp(-1.0 / (time_const * serial_freq))
    prev = msm * dc_ratio
    for j in range(rows):
        for k in range(width):
            v = np.float64(src[j, k]) if k < cols else msm
            cur = v * factor * dc_ratio + (1.0 - factor) * prev
            if k < cols:
                dst[j, k] = (v - dsi * cur) - (10.0 / 22.0) * (cur - prev)
            prev = cur
    return magic_square(dst)


@_jit(parallel=False)
def bias_shift(a: F64, time_const: float, dc_ratio: float, dsi: float) -> float:
    """Remove the signal-dependent bias shift from one amp in place; return the level."""
    rows, cols = a.shape
    level = _shift(a, a, time_const, dc_ratio, dsi)
    for j in range(rows):
        for k in range(cols):
            a[j, k] -= level
    return level


@_jit(parallel=False)
def _bias_shift_f32(v: F32, scratch: F64, time_const: float, dc_ratio: float,
                    dsi: float) -> float:
    """:func:`bias_shift` of a float32 amp view, in place, with a float64 scratch amp: the
    same float64 numbers, rounded to float32 once."""
    rows, cols = v.shape
    level = _shift(v, scratch, time_const, dc_ratio, dsi)
    for j in range(rows):
        for k in range(cols):
            v[j, k] = np.float32(scratch[j, k] - level)
    return level


@_jit(parallel=True)
def cross_talk(sci: F32) -> None:
    """Add 9.1e-5 of the mirror pixel to each pixel, in hstcal's in-place order."""
    ny, nx = sci.shape
    for i in prange(ny):
        for j in range(nx):
            temp = np.float64(sci[i, nx - j - 1]) * 9.1e-5
            sci[i, j] = sci[i, j] + np.float32(temp)


@_jit(parallel=False)
def _mean_std_clipped(x: F64, n: int, sig: float) -> float:
    s = 0.0
    for i in range(n):
        s += x[i]
    mean = s / n
    s2 = 0.0
    for i in range(n):
        s2 += (x[i] - mean) ** 2
    std = math.sqrt(s2 / (n - 1))
    for _ in range(4):
        used = 0
        s = 0.0
        s2 = 0.0
        for i in range(n):
            if abs(x[i] - mean) <= sig * std:
                s += x[i]
                s2 += (x[i] - mean) ** 2
                used += 1
        mean = s / used
        std = math.sqrt(s2 / (used - 1))
    return mean


@_jit(parallel=False)
def _prescan(v: F32) -> F64:
    """The prescan columns of a turned amp, in float64 (the only part kept in float64)."""
    rows = v.shape[0]
    p = np.empty((rows, NBIAS_COLS))
    for i in range(rows):
        for j in range(NBIAS_COLS):
            p[i, j] = v[i, j]
    return p


@_jit(parallel=False)
def _column_means(p: F64, v: F32) -> None:
    """bias_col_mean_std + sub_bias_col_means for one amp, in place on its prescan ``p``
    (``v`` is the whole turned amp, read for the saturation test of columns 24-29)."""
    rows = p.shape[0]
    minus = np.empty((rows, NBIAS_COLS))
    for i in range(rows):
        s = 0.0
        for j in range(12, NBIAS_COLS):
            s += p[i, j]
        m = s / 12.0
        for j in range(NBIAS_COLS):
            minus[i, j] = p[i, j] - m
    col = np.empty(rows)
    means = np.empty(NBIAS_COLS)
    for j in range(NBIAS_COLS):
        n = 0
        for i in range(rows):
            if (v[i, 24] < 50000 and v[i, 25] < 50000 and v[i, 26] < 50000
                    and v[i, 27] < 50000 and v[i, 28] < 50000 and v[i, 29] < 50000):
                col[n] = minus[i, j]
                n += 1
        means[j] = _mean_std_clipped(col, n, 5.0)
    for j in range(NBIAS_COLS):
        for i in range(rows):
            p[i, j] = p[i, j] - means[j]


@_jit(parallel=False)
def _good_rows(p: F64, v: F32, good: NDArray[np.uint8]) -> None:
    """hstcal's good-row test on one amp: prescan ``p`` (float64) and the rest of ``v``."""
    rows, cols = v.shape
    s = 0.0
    for i in range(rows - NOSCN_ROWS):
        for j in range(NBIAS_COLS):
            s += p[i, j]
    bias_mean = s / ((rows - NOSCN_ROWS) * NBIAS_COLS)
    s = 0.0
    for i in range(rows - NOSCN_ROWS):
        for j in range(NBIAS_COLS, cols):
            s += np.float64(v[i, j]) - bias_mean
    amp_mean = s / ((cols - NBIAS_COLS) * (rows - NOSCN_ROWS))
    good[0] = 0
    for i in range(1, rows):
        s = 0.0
        for j in range(NBIAS_COLS):
            s += p[i, j] + p[i - 1, j]
        ref = s / (2 * NBIAS_COLS)
        s = 0.0
        for j in range(NBIAS_COLS, cols):
            s += np.float64(v[i, j]) - ref
        row_mean = s / (cols - NBIAS_COLS)
        bright = False
        for j in range(24, 30):
            if v[i, j] > 70000:
                bright = True
        # C's abs() of a double goes through int: |trunc(x)| > 100.
        good[i] = 0 if (abs(int(row_mean - amp_mean)) > 100 or bright) else 1


@_jit(parallel=False)
def _bias_mean(a: F64, good: NDArray[np.uint8]) -> float:
    rows = a.shape[0]
    gp = np.empty((rows, NBIAS_COLS), dtype=np.uint8)
    ntot1 = 0
    for j in range(NBIAS_COLS):
        for i in range(rows):
            gp[i, j] = good[i]
            if good[i] == 1:
                ntot1 += 1
    nits = 0
    while True:
        ntot2 = ntot1
        ntot1 = 0
        nits += 1
        s = 0.0
        for j in range(NBIAS_COLS):
            for i in range(rows):
                if gp[i, j] == 1:
                    s += a[i, j]
                    ntot1 += 1
        mean = s / ntot1 if ntot1 != 0 else 0.0
        s = 0.0
        for j in range(NBIAS_COLS):
            for i in range(rows):
                if gp[i, j] == 1:
                    s += abs(a[i, j] - mean)
        dev = s / ntot1 if ntot1 != 0 else 0.0
        ntot1 = 0
        for j in range(NBIAS_COLS):
            for i in range(rows):
                if gp[i, j] == 1 and abs(a[i, j] - mean) > 6.0 * dev:
                    gp[i, j] = 0
                elif gp[i, j] == 1:
                    ntot1 += 1
        if not (nits <= 5 or (nits <= 10 and ntot1 < ntot2)):
            break
    s = 0.0
    for j in range(NBIAS_COLS):
        for i in range(rows):
            if gp[i, j] == 1:
                s += a[i, j]
    return s / ntot1 if ntot1 != 0 else 0.0


@_jit(parallel=False)
def _row_means(pre: F64, good: NDArray[np.uint8]) -> tuple[F64, int, int]:
    """The mean over the good amps of each prescan row (``pre``: 4 amps' prescans, bias
    means already subtracted); rows whose prescan is too noisy are marked bad first."""
    namps, rows, _ = pre.shape
    rowmeans = np.zeros(rows)
    fixed = skipped = 0
    means = np.empty(namps)
    for i in range(rows):
        for k in range(namps):
            s = 0.0
            for j in range(NBIAS_COLS):
                s += pre[k, i, j]
            means[k] = s / NBIAS_COLS
        for k in range(namps):
            s = 0.0
            for j in range(NBIAS_COLS):
                s += (pre[k, i, j] - means[k]) ** 2
            if math.sqrt(s / (NBIAS_COLS - 1)) >= 15:
                good[k, i] = 0
        s = 0.0
        num = 0
        for k in range(namps):
            if good[k, i] == 1:
                s += good[k, i] * means[k]
                num += 1
        if num >= 2:
            rowmeans[i] = s / num
            fixed += 1
        else:
            skipped += 1
    return rowmeans, fixed, skipped


@_jit(parallel=True)
def _subtract_stripes(v: F32, pre: F64, bias: float, rowmeans: F64) -> None:
    """Subtract the bias mean and the interpolated row mean from one turned amp, in place:
    float32 of the float64 result, the prescan from its float64 copy ``pre`` (bias mean
    already subtracted there), as hstcal's ``remove_stripes`` on its float64 amp."""
    rows, cols = v.shape
    # The row offset of each column, one quotient per column (the same float64 numbers).
    frac = np.empty(cols)
    for j in range(cols):
        frac[j] = (j - 11.5) / (cols + 146)
    for i in prange(rows):
        # the two row means read again only when the interpolation's lower row changes
        last = -1
        low = step = 0.0
        for j in range(cols):
            pt = i + frac[j]
            lower = math.floor(pt)
            lower = min(max(lower, 0), rows - 2)
            if lower != last:
                low, step, last = rowmeans[lower], rowmeans[lower + 1] - rowmeans[lower], lower
            dist = pt - lower
            m = low + dist * step
            if j < NBIAS_COLS:
                v[i, j] = np.float32(pre[i, j] - m)
            else:
                v[i, j] = np.float32((np.float64(v[i, j]) - bias) - m)


def subarray_bias_shift(sci: F32, amp: str) -> float:
    """hstcal's ``bias_shift_corr`` on a one-amp subarray (``amp`` A-D), in place.

    The raw subarray (prescan and 20 virtual rows included) is turned so the amp's corner is
    at [0, 0], the bias shift removed and the magic-square level subtracted; that level is
    returned (hstcal writes it as MEANBLEV). Subarrays get no cross talk or destriping.
    """
    k = "ABCD".index(amp)
    view = {0: sci[::-1], 1: sci[::-1, ::-1], 2: sci, 3: sci[:, ::-1]}[k]
    if view.shape[0] < 2067 or view.shape[1] < 23:
        raise ValueError(f"subarray of shape {sci.shape} has no virtual overscan for the "
                         "bias-shift magic square")
    a = np.ascontiguousarray(view, dtype=np.float64)
    level = bias_shift(a, TIME_CONST[k], DC_RATIO[k], DSI_SENS[k])
    view[...] = a.astype(np.float32)
    return level


@dataclass(frozen=True)
class PostSM4Result:
    """What the post-SM4 BLEVCORR did: per-amp levels (A-D) and destriping counts."""

    bias_shift: tuple[float, ...]
    bias_mean: tuple[float, float, float, float]
    rows_fixed: int
    rows_skipped: int


def post_sm4_blev(chip1: F32, chip2: F32, shift_and_crosstalk: bool) -> PostSM4Result:
    """Run hstcal's post-SM4 full-frame BLEVCORR on the raw chips (float32, in place).

    hstcal works on float64 copies of the four amps; here only the bias shift (a recursion
    over the whole amp) uses float64 scratch amps, the destriping keeps float64 copies of
    the prescan columns only and writes each pixel's float64 result once, as float32.
    """
    shifts: list[float] = []
    views = [amp_view(chip1, chip2, k) for k in range(4)]
    same = len({v.shape for v in views}) == 1
    if shift_and_crosstalk:
        # two amps at a time (:mod:`owl.calib.blev_ilp`), the same numbers as one at a time
        da = np.empty(views[0].shape, dtype=np.float64)
        db = np.empty(views[0].shape, dtype=np.float64) if same else da
        for a, b in ((0, 1), (2, 3)):
            if same:
                shifts.extend(bias_shift_pair(views[a], views[b], da, db, TIME_CONST[a],
                                              TIME_CONST[b], DC_RATIO[a], DC_RATIO[b],
                                              DSI_SENS[a], DSI_SENS[b]))
                continue
            for k in (a, b):
                shifts.append(_bias_shift_f32(views[k], da, TIME_CONST[k], DC_RATIO[k],
                                              DSI_SENS[k]))
        cross_talk(chip2)
        cross_talk(chip1)
    pre = np.stack([_prescan(v) for v in views])
    for k in range(4):
        _column_means(pre[k], views[k])
    good = np.empty((4, views[0].shape[0]), dtype=np.uint8)
    if same:
        good_rows4(pre, views[0], views[1], views[2], views[3], good)
    else:
        for k in range(4):
            _good_rows(pre[k], views[k], good[k])
    means = []
    for k in range(4):
        m = _bias_mean(pre[k], good[k])
        pre[k] -= m
        means.append(m)
    rowmeans, fixed, skipped = _row_means(pre, good)
    for k in range(4):
        _subtract_stripes(views[k], pre[k], means[k], rowmeans)
    return PostSM4Result(tuple(shifts), (means[0], means[1], means[2], means[3]), fixed,
                         skipped)
