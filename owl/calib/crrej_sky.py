"""ACSREJ sky levels: the mode of each image's histogram, hstcal's ``acsrej_sky``.

The histogram has 1-e⁻ bins over the pixels with DQ 0, its range from the first image (its
minimum, not below -15000, to twice its mean); the mode is refined by a parabola through
the peak bin and its neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

_MINVAL, _MIN_BINS, _MAX_BINS = -15000, 1000, 10000
F32 = NDArray[np.float32]
_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(parallel: bool) -> Callable[[_F], _F]:
    # numba ships no type information; the cast keeps each kernel's signature for mypy.
    return cast(Callable[[_F], _F], numba.njit(cache=True, parallel=parallel, nogil=True))


@_jit(parallel=False)
def _good_range(sci: F32, dq: NDArray[np.integer], badinpdq: int) -> tuple[float, float, int]:
    # hstcal sums in float32, in row order; its mean (and so the histogram range) carries
    # that rounding, so this loop is sequential on purpose.
    ny, nx = sci.shape
    lo = np.float32(np.inf)
    total = np.float32(0)
    count = 0
    for j in range(ny):
        for i in range(nx):
            if (dq[j, i] & badinpdq) == 0:
                v = sci[j, i]
                lo = min(lo, v)
                total += v
                count += 1
    return float(lo), float(total), count


@_jit(parallel=True)
def _histogram_mode(sci: F32, dq: NDArray[np.integer], lo: int, width: np.float32,
                    nbins: int) -> float:
    ny, nx = sci.shape
    nchunk = 16
    part = np.zeros((nchunk, nbins), dtype=np.int64)
    hmin = np.float32(lo)
    for c in prange(nchunk):
        for j in range(c * ny // nchunk, (c + 1) * ny // nchunk):
            for i in range(nx):
                if dq[j, i] == 0:
                    # C's (int) cast truncates towards zero: (-1, 0) lands in bin 0.
                    h = int((sci[j, i] - hmin) / width)
                    if 0 <= h < nbins:
                        part[c, h] += 1
    hist = part.sum(axis=0)
    peak = 0
    for b in range(1, nbins):
        if hist[b] > hist[peak]:
            peak = b
    if peak == 0:
        return float(np.float32(hmin + 0.5 * width))
    if peak == nbins - 1:
        return float(np.float32(hmin + (nbins - 0.5) * width))
    # hstcal's cr_mode: float32 counts and mode, the parabola term in double.
    dh1 = np.float32(hist[peak] - hist[peak - 1])
    dh2 = np.float32(hist[peak] - hist[peak + 1])
    denom = np.float32(dh1 + dh2)
    if abs(denom) < 1e-20:
        return float(np.float32(hmin + (peak + 0.5) * width))
    mode = np.float32(peak + 0.5 + 0.5 * np.float32(dh1 - dh2) / np.float64(denom))
    return float(np.float32(hmin + np.float32(mode * width)))


def sky_levels(sci: F32 | Sequence[F32], dq: NDArray[np.integer] | Sequence[NDArray[Any]],
               skysub: str,
               badinpdq: int) -> F32:
    """Sky of each image of a stack, as hstcal's ``acsrej_sky`` (electrons).

    Parameters
    ----------
    sci : ndarray of float32, shape (n, ny, nx), or n arrays of shape (ny, nx)
        Images in electrons.
    dq : ndarray of int, shape (n, ny, nx), or n arrays of shape (ny, nx)
        Their DQ; the histogram range uses pixels without ``badinpdq`` bits in the first
        image, the histograms only pixels with DQ 0.
    skysub : str
        ``'mode'`` or ``'none'``.
    badinpdq : int
        DQ bits that make a pixel unusable for the range.
    """
    n = len(sci)
    if skysub.lower() == "none":
        return np.zeros(n, dtype=np.float32)
    data_min, total, count = _good_range(sci[0], dq[0], badinpdq)
    if count == 0:
        data_min = 0.0
    lo = int(max(data_min, _MINVAL))
    mean = int(np.float32(total) / np.float32(max(count, 1)) + 1) if total > 0 else 1
    nbins = 2 * mean - lo - lo + 1
    if nbins < _MIN_BINS:
        nbins, width = _MIN_BINS, np.float32(1.0)
    elif nbins > _MAX_BINS:
        nbins, width = _MAX_BINS, np.float32(nbins) / np.float32(_MAX_BINS)
    else:
        width = np.float32(1.0)
    return np.array([_histogram_mode(sci[k], dq[k], lo, width, nbins) for k in range(n)],
                    dtype=np.float32)
