"""ACSREJ science: cosmic-ray rejection and combination of a CR-split stack (pure arrays).

Follows hstcal's ``acsrej_sky``, ``acsrej_init`` and ``acsrej_loop`` (units: electrons for
images, seconds for exposure times, e/s for the comparison image):

1. Sky per image (``skysub='mode'``): the mode of a 1-e⁻ histogram of the pixels with DQ 0
   (range from the first image: minimum to twice the mean), refined by a parabola through the
   peak bin, or 0 (``'none'``).
2. Initial guess, per pixel, of the sky-subtracted, exposure-normalised images whose DQ has
   none of the ``badinpdq`` bits: their median (mean of the two middle values for an even
   count) or their minimum.
3. For each sigma in ``crsigmas``: a pixel is a HIT when
   ``(pic - ave)² > sigma²·(ERR² + (scalense/100·max(ave·t, 0))²) / t²`` (``pic`` the
   sky-subtracted image in e/s, ``t`` its exposure time). A pixel within ``crradius`` of a HIT
   becomes SPILL when ``(pic - ave)² > crthresh²·sigma²·ERR²/t²`` (all of them when
   ``crthresh <= 0``). The guess is rebuilt as the exposure-weighted mean of the pixels that
   are neither HIT, SPILL nor bad.
4. Output, with ``T`` the total exposure time and ``t_good`` the exposure of the images kept at
   a pixel: ``SCI = ave·T + Σ sky``, ``ERR = (T/t_good)·sqrt(Σ_kept ERR²)``, ``DQ`` the OR of
   the inputs' DQ (without the CR bit) plus the CR bit where no image was kept.

Deliberate differences from hstcal, each the behaviour hstcal documents rather than what its
buffers happen to do: SPILL is grown symmetrically (hstcal's scrolling buffer loses SPILL
marks on rows it has already summed), the minimum guess is the minimum of the good pixels
(hstcal's comment marks its version "slightly buggy"), and ERR is in electrons (hstcal scales
it once more by the exposure time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

#: DQ bit hstcal's ACSREJ sets for rejected pixels (``DATAREJECT``).
DATAREJECT = 8192

_OK, _HIT, _SPILL, _EXCLUDE = 0, 1, 2, 4
_MINVAL, _MIN_BINS, _MAX_BINS = -15000, 1000, 10000

F32 = NDArray[np.float32]
_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(parallel: bool) -> Callable[[_F], _F]:
    # numba ships no type information; the cast keeps each kernel's signature for mypy.
    return cast(Callable[[_F], _F], numba.njit(cache=True, parallel=parallel, nogil=True))


@dataclass(frozen=True)
class CrRejParams:
    """ACSREJ parameters (the CRREJTAB columns of the same names).

    Attributes
    ----------
    crsigmas : tuple of float
        Rejection thresholds, one iteration each.
    crradius : float
        Radius (pixels) within which neighbours of a hit may be flagged.
    crthresh : float
        Propagation factor applied to the sigma for those neighbours.
    scalense : float
        Multiplicative noise, percent of the signal.
    initgues : str
        ``'median'`` or ``'minimum'`` (any prefix of 3+ letters).
    skysub : str
        ``'mode'`` or ``'none'``.
    badinpdq : int
        DQ bits that exclude an input pixel.
    crmask : bool
        Write the CR flags back into the inputs' DQ.
    """

    crsigmas: tuple[float, ...] = (6.5, 5.5, 4.5)
    crradius: float = 2.1
    crthresh: float = 0.5555
    scalense: float = 0.0
    initgues: str = "minimum"
    skysub: str = "mode"
    badinpdq: int = 39
    crmask: bool = True

    def __post_init__(self) -> None:
        if not self.crsigmas or any(s <= 0 for s in self.crsigmas):
            raise ValueError(f"crsigmas must be positive numbers, got {self.crsigmas}")
        if self.initgues[:3].lower() not in ("med", "min"):
            raise ValueError(f"initgues must be 'median' or 'minimum', got {self.initgues!r}")
        if self.skysub.lower() not in ("mode", "none"):
            raise ValueError(f"skysub must be 'mode' or 'none', got {self.skysub!r}")
        if not 0 <= self.crradius < 16:
            raise ValueError(f"crradius must be in [0, 16) pixels, got {self.crradius}")


@dataclass(frozen=True)
class CrRejResult:
    """The combined image of one chip and what was rejected.

    Attributes
    ----------
    sci, err : ndarray of float32
        Combined science (electrons, sky added back) and error (electrons).
    dq : ndarray of int16
        Combined data quality.
    crmask : ndarray of bool, shape (n, ny, nx)
        Pixels rejected (HIT or SPILL) in each input.
    sky : ndarray of float32
        Sky of each input, electrons.
    nrej : int
        Number of rejected input pixels (all inputs).
    """

    sci: F32
    err: F32
    dq: NDArray[np.int16]
    crmask: NDArray[np.bool_]
    sky: F32
    nrej: int


@_jit(parallel=True)
def _good_range(sci: F32, dq: NDArray[np.integer], badinpdq: int) -> tuple[float, float, int]:
    ny, nx = sci.shape
    lo = np.full(ny, np.inf)
    total = np.zeros(ny)
    count = np.zeros(ny, dtype=np.int64)
    for j in prange(ny):
        for i in range(nx):
            if (dq[j, i] & badinpdq) == 0:
                v = sci[j, i]
                lo[j] = min(lo[j], v)
                total[j] += v
                count[j] += 1
    return float(lo.min()), float(total.sum()), int(count.sum())


@_jit(parallel=True)
def _histogram_mode(sci: F32, dq: NDArray[np.integer], lo: int, width: float,
                    nbins: int) -> float:
    ny, nx = sci.shape
    nchunk = 16
    part = np.zeros((nchunk, nbins), dtype=np.int64)
    for c in prange(nchunk):
        for j in range(c * ny // nchunk, (c + 1) * ny // nchunk):
            for i in range(nx):
                if dq[j, i] == 0:
                    h = (sci[j, i] - lo) / width
                    if 0 <= h < nbins:
                        part[c, int(h)] += 1
    hist = part.sum(axis=0)
    peak = 0
    for b in range(1, nbins):
        if hist[b] > hist[peak]:
            peak = b
    if peak == 0 or peak == nbins - 1:
        return float(lo + (peak + 0.5) * width)
    dh1 = hist[peak] - hist[peak - 1]
    dh2 = hist[peak] - hist[peak + 1]
    denom = dh1 + dh2
    if denom == 0:
        return float(lo + (peak + 0.5) * width)
    return float(lo + (peak + 0.5 + 0.5 * (dh1 - dh2) / denom) * width)


def sky_levels(sci: F32, dq: NDArray[np.integer], skysub: str, badinpdq: int) -> F32:
    """Sky of each image of a stack, as hstcal's ``acsrej_sky`` (electrons).

    Parameters
    ----------
    sci : ndarray of float32, shape (n, ny, nx)
        Images in electrons.
    dq : ndarray of int, shape (n, ny, nx)
        Their DQ; the histogram range uses pixels without ``badinpdq`` bits in the first
        image, the histograms only pixels with DQ 0.
    skysub : str
        ``'mode'`` or ``'none'``.
    badinpdq : int
        DQ bits that make a pixel unusable for the range.
    """
    n = sci.shape[0]
    if skysub.lower() == "none":
        return np.zeros(n, dtype=np.float32)
    data_min, total, count = _good_range(sci[0], dq[0], badinpdq)
    if count == 0:
        data_min = 0.0
    lo = int(max(data_min, _MINVAL))
    mean = int(total / max(count, 1) + 1) if total > 0 else 1
    nbins = 2 * mean - lo - lo + 1
    if nbins < _MIN_BINS:
        nbins, width = _MIN_BINS, 1.0
    elif nbins > _MAX_BINS:
        nbins, width = _MAX_BINS, nbins / _MAX_BINS
    else:
        width = 1.0
    return np.array([_histogram_mode(sci[k], dq[k], lo, width, nbins) for k in range(n)],
                    dtype=np.float32)


@_jit(parallel=True)
def _median_guess(sci: F32, dq: NDArray[np.integer], sky: F32, efac: F32, badinpdq: int,
                  ave: F32) -> None:
    n, ny, nx = sci.shape
    for j in prange(ny):
        buf = np.empty(n, dtype=np.float32)
        for i in range(nx):
            m = 0
            for k in range(n):
                if efac[k] > 0 and (dq[k, j, i] & badinpdq) == 0:
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
def _minimum_guess(sci: F32, dq: NDArray[np.integer], sky: F32, efac: F32, badinpdq: int,
                   ave: F32) -> None:
    n, ny, nx = sci.shape
    inf = np.float32(np.inf)
    for j in prange(ny):
        row = ave[j]
        row[:] = inf
        for k in range(n):
            if efac[k] <= 0:
                continue
            inv = np.float32(1) / efac[k]
            for i in range(nx):
                v = (sci[k, j, i] - sky[k]) * inv if (dq[k, j, i] & badinpdq) == 0 else inf
                row[i] = min(row[i], v)
        for i in range(nx):
            if row[i] == inf:
                row[i] = 0


@_jit(parallel=True)
def _detect(sci: F32, err: F32, dq: NDArray[np.integer], sky: F32, efac: F32, ave: F32,
            sig2: np.float32, scale: np.float32, badinpdq: int, w: int,
            mask: NDArray[np.uint8], hitbits: NDArray[np.uint16]) -> None:
    n, ny, nx = sci.shape
    zero = np.float32(0)
    for j in prange(ny):
        for k in range(n):
            t = efac[k]
            bits = hitbits[k, j]
            bits[:] = 0
            for i in range(nx):
                if t <= 0 or (dq[k, j, i] & badinpdq) != 0:
                    mask[k, j, i] = _EXCLUDE
                    continue
                a = ave[j, i]
                d = (sci[k, j, i] - sky[k]) / t - a
                e = err[k, j, i]
                s = scale * max(a * t, zero)
                if d * d > sig2 * (e * e + s * s) / (t * t):
                    mask[k, j, i] = _HIT
                    # Bit m of hitbits[k, j, c]: a hit in this row m columns from c.
                    for c in range(max(i - w, 0), min(i + w + 1, nx)):
                        bits[c] |= np.uint16(1 << abs(c - i))
                else:
                    mask[k, j, i] = _OK


@_jit(parallel=True)
def _spill_combine(sci: F32, err: F32, sky: F32, efac: F32, ave: F32, sig2: np.float32,
                   psig2: np.float32, spans: NDArray[np.int64], mask: NDArray[np.uint8],
                   hitbits: NDArray[np.uint16],
                   last: bool, texpt: np.float32, skysum: np.float32, out_err: F32,
                   kept: NDArray[np.uint8], nrej_rows: NDArray[np.int64]) -> None:
    n, ny, nx = sci.shape
    w = (spans.shape[0] - 1) // 2
    for j in prange(ny):
        # Grow hits into SPILL for this row first (hits are final after _detect): a pixel is
        # near a hit when a row dj away has one within the disc's half-width on that row.
        near = np.empty(nx, dtype=np.uint16)
        for k in range(n):
            t = efac[k]
            if t <= 0:
                continue
            near[:] = 0
            for dj in range(-w, w + 1):
                jj = j + dj
                if 0 <= jj < ny and spans[dj + w] >= 0:
                    bits = np.uint16((1 << (spans[dj + w] + 1)) - 1)
                    row = hitbits[k, jj]
                    for i in range(nx):
                        near[i] |= row[i] & bits
            limit = psig2 * sig2 / (t * t)
            for i in range(nx):
                if near[i] and mask[k, j, i] != _HIT:
                    d = (sci[k, j, i] - sky[k]) / t - ave[j, i]
                    e = err[k, j, i]
                    if d * d > limit * e * e:
                        mask[k, j, i] = _SPILL
        nrej = 0
        for i in range(nx):
            total = np.float32(0)
            pixexp = np.float32(0)
            err2 = np.float32(0)
            good = np.uint8(0)
            for k in range(n):
                t = efac[k]
                if t <= 0:
                    continue
                m = mask[k, j, i]
                if m == _OK:
                    total += sci[k, j, i] - sky[k]
                    pixexp += t
                    e = err[k, j, i]
                    err2 += e * e
                if m & (_HIT | _SPILL):
                    nrej += 1
                else:
                    good = np.uint8(1)
            if pixexp > 0:
                ave[j, i] = total / pixexp
            elif last:
                ave[j, i] = 0
            if last:
                kept[j, i] = good
                ave[j, i] = ave[j, i] * texpt + skysum
                out_err[j, i] = texpt / pixexp * np.sqrt(err2) if pixexp > 0 else 0
        nrej_rows[j] = nrej


def _spans(radius: float) -> NDArray[np.int64]:
    """Half-width of the disc of ``radius`` on each row offset ``-w..w`` (-1: none)."""
    w = math.ceil(radius)
    r2 = radius * radius
    return np.array([math.floor(math.sqrt(r2 - dj * dj)) if dj * dj <= r2 else -1
                     for dj in range(-w, w + 1)], dtype=np.int64)


def crrej(sci: F32, err: F32, dq: NDArray[np.int16], exptime: Sequence[float],
          params: CrRejParams, crval: int = DATAREJECT) -> CrRejResult:
    """Reject cosmic rays in a stack of one chip and combine it (see the module docstring).

    Parameters
    ----------
    sci, err : ndarray of float32, shape (n, ny, nx)
        Images and their errors, electrons.
    dq : ndarray of int16, shape (n, ny, nx)
        Their data quality.
    exptime : sequence of float
        EXPTIME of each image (s). When all are 0 (biases) each counts as 1 s.
    params : CrRejParams
        Rejection parameters.
    crval : int
        DQ bit marking a rejected pixel.

    Returns
    -------
    CrRejResult

    Raises
    ------
    ValueError
        For fewer than two images, mismatched shapes or a negative exposure time.
    """
    sci = np.ascontiguousarray(sci, dtype=np.float32)
    err = np.ascontiguousarray(err, dtype=np.float32)
    dq = np.ascontiguousarray(dq, dtype=np.int16)
    if sci.ndim != 3 or sci.shape[0] < 2:
        raise ValueError(f"need a stack of at least two images, got shape {sci.shape}")
    if err.shape != sci.shape or dq.shape != sci.shape:
        raise ValueError(f"SCI {sci.shape}, ERR {err.shape} and DQ {dq.shape} differ")
    efac = np.asarray(exptime, dtype=np.float32)
    if efac.shape != (sci.shape[0],) or (efac < 0).any():
        raise ValueError(f"need one non-negative exposure time per image, got {exptime}")
    if not (efac > 0).any():
        efac = np.ones_like(efac)
    texpt = np.float32(efac.sum())
    sky = sky_levels(sci, dq, params.skysub, params.badinpdq)
    skysum = np.float32(max(float(sky.sum()), 0.0))
    ave = np.empty(sci.shape[1:], dtype=np.float32)
    guess = _median_guess if params.initgues[:3].lower() == "med" else _minimum_guess
    guess(sci, dq, sky, efac, int(params.badinpdq), ave)
    mask = np.empty(sci.shape, dtype=np.uint8)
    hitbits = np.empty(sci.shape, dtype=np.uint16)
    out_err = np.zeros(sci.shape[1:], dtype=np.float32)
    kept = np.zeros(sci.shape[1:], dtype=np.uint8)
    nrej_rows = np.zeros(sci.shape[1], dtype=np.int64)
    spans = _spans(params.crradius)
    psig2 = np.float32(params.crthresh ** 2 if params.crthresh > 0 else -1.0)
    scale = np.float32(params.scalense / 100.0)
    niter = len(params.crsigmas)
    for it, sigma in enumerate(params.crsigmas):
        sig2 = np.float32(sigma * sigma)
        _detect(sci, err, dq, sky, efac, ave, sig2, scale, int(params.badinpdq),
                (spans.size - 1) // 2, mask, hitbits)
        _spill_combine(sci, err, sky, efac, ave, sig2, psig2, spans, mask, hitbits,
                       it == niter - 1,
                       texpt, skysum, out_err, kept, nrej_rows)
    crmask = (mask & (_HIT | _SPILL)) != 0
    used = efac > 0
    out_dq = np.bitwise_or.reduce(dq[used], axis=0) & np.int16(~crval)
    out_dq |= np.where(kept == 0, np.int16(crval), np.int16(0))
    return CrRejResult(sci=ave, err=out_err, dq=out_dq.astype(np.int16), crmask=crmask,
                       sky=sky, nrej=int(nrej_rows.sum()))
