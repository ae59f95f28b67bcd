"""Read-noise smoothing: the smoothest image consistent with the observation plus read noise.

The CTE inversion amplifies noise, so it is run on a smoothed image and only the change it
makes is added back to the data. Each iteration moves every pixel a little towards its
upper and lower neighbours and towards the 3x3 mean of the residual, pulled back towards
its observed value (hstcal's ``find_dadj``), damping every move by 0.75. Iterations stop
once the rms of (observed - smooth), over pixels where either exceeds 0.1 e- in magnitude,
reaches the read noise, or after :data:`MAX_ITERATIONS`. The rms couples the whole amp.

An adjustment is exactly zero where the pixel and every neighbour it looks at are zero in
both images, so each column keeps the row span that can hold non-zero values and only that
span is computed; the result is the same as computing everywhere.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

MIN_READNOISE = 0.1
"""Below this read noise (electrons) the image is used as is."""

MAX_ITERATIONS = 100
STOP_TOLERANCE = 0.00001
"""Iterations stop when read noise - rms drops below this (electrons)."""

_NEIGHBOUR_CLIP = 0.33
_STEP = 0.75
_RMS_FLOOR = 0.1


@njit(cache=True, inline="always")
def _clip(value: float, limit: float) -> float:
    if value > limit:
        return limit
    if value < -limit:
        return -limit
    return value


@njit(cache=True)
def pixel_adjustment(
    obs: F32, rsz: F32, c: int, left: int, right: int, j: int, readnoise: float
) -> float:
    """Adjustment of pixel (column ``c``, row ``j``) of the smooth image ``rsz``.

    Parameters
    ----------
    obs, rsz : ndarray of float32, shape (ncols, nrows)
        Observed and current smooth image (readout frame).
    c : int
        Column.
    left, right : int
        Neighbour columns for the 3x3 term, or -1 for an edge column (no 3x3 term).
    j : int
        Row.
    readnoise : float
        Read noise (electrons).

    Returns
    -------
    float
        The step towards smoothness, before the 0.75 damping.
    """
    nrows = obs.shape[1]
    mval = np.float64(rsz[c, j])
    dval0 = np.float64(obs[c, j]) - mval
    dval0u = _clip(dval0, 1.0)
    dval9 = 0.0
    if left >= 0 and 0 < j < nrows - 1:
        # Summed strictly left to right, as hstcal does, so the last bits agree.
        acc = np.float64(obs[c, j - 1]) - np.float64(rsz[c, j - 1])
        acc = acc + np.float64(obs[c, j]) - np.float64(rsz[c, j])
        acc = acc + np.float64(obs[c, j + 1]) - np.float64(rsz[c, j + 1])
        for k in (left, right):
            acc = acc + np.float64(obs[k, j - 1]) - np.float64(rsz[k, j - 1])
            acc = acc + np.float64(obs[k, j]) - np.float64(rsz[k, j])
            acc = acc + np.float64(obs[k, j + 1]) - np.float64(rsz[k, j + 1])
        dval9 = acc / 9.0
    limit = readnoise * _NEIGHBOUR_CLIP
    dval9u = _clip(dval9, limit)
    dmod1 = np.float64(rsz[c, j - 1]) - mval if j > 0 else 0.0
    dmod2 = np.float64(rsz[c, j + 1]) - mval if j < nrows - 1 else 0.0
    dmod1u = _clip(dmod1, limit)
    dmod2u = _clip(dmod2, limit)
    rn2 = readnoise * readnoise
    w0 = dval0 * dval0 / (dval0 * dval0 + 4.0 * rn2)
    w9 = dval9 * dval9 / (dval9 * dval9 + 18.0 * rn2)
    w1 = 4.0 * rn2 / (dmod1 * dmod1 + 4.0 * rn2)
    w2 = 4.0 * rn2 / (dmod2 * dmod2 + 4.0 * rn2)
    return dval0u * w0 * 0.25 + dval9u * w9 * 0.25 + dmod1u * w1 * 0.25 + dmod2u * w2 * 0.25


@njit(cache=True)
def _nonzero_span(a: F32, b: F32, c: int) -> tuple[int, int]:
    nrows = a.shape[1]
    lo = nrows
    hi = -1
    for r in range(nrows):
        if a[c, r] != 0.0 or b[c, r] != 0.0:
            lo = r
            break
    for r in range(nrows - 1, lo - 1, -1):
        if a[c, r] != 0.0 or b[c, r] != 0.0:
            hi = r
            break
    return lo, hi


@njit(cache=True, parallel=True)
def _sweep(
    obs: F32, rsz: F32, adj: F32, lo: I64, hi: I64, elo: I64, ehi: I64, readnoise: float
) -> None:
    ncols, nrows = obs.shape
    for c in prange(ncols):
        if c == 0 or c == ncols - 1:
            left, right, first, last = -1, -1, c, c
        else:
            left, right, first, last = c - 1, c + 1, c - 1, c + 1
        start = nrows
        stop = -1
        for k in range(first, last + 1):
            if lo[k] < start:
                start = lo[k]
            if hi[k] > stop:
                stop = hi[k]
        if stop < start:
            elo[c] = 0
            ehi[c] = -1
            continue
        start = max(start - 1, 0)
        stop = min(stop + 1, nrows - 1)
        elo[c] = start
        ehi[c] = stop
        for j in range(start, stop + 1):
            adj[c, j] = np.float32(pixel_adjustment(obs, rsz, c, left, right, j, readnoise))


@njit(cache=True, parallel=True)
def _apply(rsz: F32, adj: F32, lo: I64, hi: I64, elo: I64, ehi: I64) -> None:
    for c in prange(rsz.shape[0]):
        for j in range(elo[c], ehi[c] + 1):
            value = np.float32(np.float64(rsz[c, j]) + np.float64(adj[c, j]) * _STEP)
            rsz[c, j] = value
            if value != 0.0:
                if j < lo[c]:
                    lo[c] = j
                if j > hi[c]:
                    hi[c] = j


@njit(cache=True)
def _residual_rms(obs: F32, rsz: F32, lo: I64, hi: I64) -> float:
    # Sequential, column by column and row by row: the order of hstcal on one thread.
    total = 0.0
    count = 0.0
    for c in range(obs.shape[0]):
        for r in range(lo[c], hi[c] + 1):
            o = np.float64(obs[c, r])
            s = np.float64(rsz[c, r])
            if abs(o) > _RMS_FLOOR or abs(s) > _RMS_FLOOR:
                diff = np.float64(np.float32(o - s))
                total += diff * diff
                count += 1.0
    return math.sqrt(total / count) if count > 0.0 else math.nan


@njit(cache=True)
def smooth_amp(obs: F32, readnoise: float) -> F32:
    """Smooth one amp (readout frame) against its read noise.

    Parameters
    ----------
    obs : ndarray of float32, shape (ncols, nrows)
        Observed amp image.
    readnoise : float
        Read noise of the amp (electrons).

    Returns
    -------
    ndarray of float32, shape (ncols, nrows)
        The smooth image; a copy of ``obs`` when ``readnoise`` < :data:`MIN_READNOISE`.
    """
    rsz = obs.copy()
    if readnoise < MIN_READNOISE:
        return rsz
    ncols = obs.shape[0]
    adj = np.zeros_like(obs)
    lo = np.empty(ncols, dtype=np.int64)
    hi = np.empty(ncols, dtype=np.int64)
    for c in range(ncols):
        lo[c], hi[c] = _nonzero_span(obs, rsz, c)
    elo = np.empty(ncols, dtype=np.int64)
    ehi = np.empty(ncols, dtype=np.int64)
    for _ in range(MAX_ITERATIONS):
        _sweep(obs, rsz, adj, lo, hi, elo, ehi, readnoise)
        _apply(rsz, adj, lo, hi, elo, ehi)
        rms = _residual_rms(obs, rsz, lo, hi)
        # A NaN rms (no pixel above the floor) never stops the loop, as in hstcal.
        if readnoise - rms < STOP_TOLERANCE:
            break
    return rsz
