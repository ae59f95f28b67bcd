"""Numba kernels of the pixel-based CTE model: trap map, readout simulation, inversion.

Every kernel works on one amplifier in *readout frame*, stored column by column: an array
``a[c, r]`` of shape (ncols, nrows) where column ``c`` is read out through row 0, so charge
trails run towards higher ``r``. Images and the trap map are float32; each column is worked
on in float64, and every operation follows hstcal's order and precision so that most pixels
agree to the last bit (see ``tests/calib/test_cte.py``).

Columns are independent; the whole-amp kernels run them in parallel with ``prange`` over a
fixed round-robin split of the columns sorted by cost, so the result never depends on the
number of threads.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_BLOCK_SHIFT = 5
"""Rows per block (2**5) of the running block maxima used to skip rows that cannot fill a trap."""

PMAX_FLOOR = 10.0
"""hstcal never lets a column's maximum drop below this when choosing the traps to follow."""

CR_SHRINK = 0.75
"""Factor applied to the trap density under an over-subtracted read-out cosmic ray."""

MAX_CR_RUNS = 5
"""Maximum number of inversions of one column when the cosmic-ray fix keeps firing."""


@njit(cache=True)
def trap_map(iz: I64, sens: F64, offset: int, ncols: int, nrows: int, frac: float) -> F32:
    """Trap density per pixel of one amp in readout frame.

    Parameters
    ----------
    iz : ndarray of int64, shape (n,)
        SCLBYCOL column numbers (CDAB order); ``iz - offset`` is the readout-frame column.
    sens : ndarray of float64, shape (n, 4)
        Column scalings at rows 512, 1024, 1536 and 2048, interpolated linearly in row.
    offset : int
        Position of this amp's first column in the CDAB numbering.
    ncols, nrows : int
        Size of the amp in readout frame.
    frac : float
        PCTEFRAC, the time scaling.

    Returns
    -------
    ndarray of float32, shape (ncols, nrows)
        Density = column scale x (row + 1) / 2048 x frac; columns absent from the table are 0.
    """
    io = np.empty(nrows, dtype=np.int64)
    within = np.empty(nrows, dtype=np.float64)
    growth = np.empty(nrows, dtype=np.float64)
    for j in range(nrows):
        ro = j / 512.0
        if ro > 2.999:
            ro = 2.999
        io[j] = math.floor(ro)
        within[j] = ro - io[j]
        growth[j] = (j + 1) / 2048.0
    out = np.zeros((ncols, nrows), dtype=np.float32)
    for k in range(iz.shape[0]):
        c = iz[k] - offset
        if c < 0 or c >= ncols:
            continue
        for j in range(nrows):
            s0 = sens[k, io[j]]
            scale = s0 + (sens[k, io[j] + 1] - s0) * within[j]
            out[c, j] = np.float32(scale * growth[j] * frac)
    return out


@njit(cache=True, inline="always")
def _block_maxima(column: F64, bmax: F64) -> float:
    nrows = column.shape[0]
    pmax = PMAX_FLOOR
    for b in range(bmax.shape[0]):
        m = -np.inf
        for i in range(b << _BLOCK_SHIFT, min((b + 1) << _BLOCK_SHIFT, nrows)):
            if column[i] > m:
                m = column[i]
        bmax[b] = m
        if m > pmax:
            pmax = m
    return pmax


@njit(cache=True)
def simulate_readout(
    column: F64,
    traps: F32,
    qlev: F64,
    dpde: F64,
    rprof: F64,
    cprof: F64,
    tlen: int,
    npar: int,
    bmax: F64,
) -> None:
    """Simulate the readout of one column, in place.

    The readout is ``npar`` sub-transfers. In each, traps are followed one at a time from
    the highest charge level that the column reaches (at least :data:`PMAX_FLOOR`) down to
    the lowest, walking the column from the register outwards: a pixel holding at least the
    trap's level fills it (capturing ``dpde / npar x density``) and starts a trail; the
    ``tlen`` pixels after it receive ``rprof x trapped``, and a refill inside the trail also
    gets ``cprof x trapped``. Trapped charge shrinks where the density drops.

    Parameters
    ----------
    column : ndarray of float64, shape (nrows,)
        Pixel values, modified in place.
    traps : ndarray of float32, shape (nrows,)
        Trap density of the column.
    qlev, dpde : ndarray of float64, shape (ntraps,)
        Trap charge levels (non-decreasing) and sizes.
    rprof, cprof : ndarray of float64, shape (ntraps, >= tlen)
        Release and cumulative release profiles.
    tlen, npar : int
        Trail length and number of sub-transfers.
    bmax : ndarray of float64, shape (ceil(nrows / 32),)
        Scratch space for block maxima.

    Notes
    -----
    Outside a trail a trap only matters at pixels that reach its level, so those stretches
    are skipped using upper bounds of 32-row blocks; this changes no arithmetic.
    """
    nrows = column.shape[0]
    ntraps = qlev.shape[0]
    for _ in range(npar):
        pmax = _block_maxima(column, bmax)
        top = ntraps - 1
        for w in range(ntraps - 1, -1, -1):
            if qlev[w] <= pmax:
                top = w
                break
        for w in range(top, -1, -1):
            q = qlev[w]
            fill = dpde[w] / npar
            first_release = rprof[w, 0]
            first_cumulative = cprof[w, 0]
            ntrans = tlen
            trapped = 0.0
            i = 0
            while i < nrows:
                if ntrans >= tlen:
                    while i < nrows:
                        b = i >> _BLOCK_SHIFT
                        if not bmax[b] >= q:
                            i = (b + 1) << _BLOCK_SHIFT
                        elif column[i] >= q:
                            break
                        else:
                            i += 1
                    if i >= nrows:
                        break
                    trapped = fill * np.float64(traps[i])
                    column[i] = column[i] - trapped
                    captured = True
                else:
                    t_here = np.float64(traps[i])
                    t_prev = np.float64(traps[i - 1])
                    if t_here < t_prev:
                        trapped *= t_here / t_prev
                    pixel = column[i]
                    ntrans += 1
                    add = rprof[w, ntrans - 1] * trapped
                    captured = pixel >= q
                    if captured:
                        extra = cprof[w, ntrans - 1] * trapped
                        trapped = fill * t_here
                        value = pixel + ((add + extra) - trapped)
                    else:
                        value = pixel + add
                    column[i] = value
                    b = i >> _BLOCK_SHIFT
                    if value > bmax[b]:
                        bmax[b] = value
                i += 1
                if captured:
                    ntrans = 0
                    # Consecutive pixels at the trap level (sky above a low level) each
                    # refill it one transfer after the last fill: the same step as above
                    # with ntrans = 1, without the bookkeeping.
                    while i < nrows:
                        pixel = column[i]
                        if not pixel >= q:
                            break
                        t_here = np.float64(traps[i])
                        t_prev = np.float64(traps[i - 1])
                        if t_here < t_prev:
                            trapped *= t_here / t_prev
                        add = first_release * trapped
                        extra = first_cumulative * trapped
                        trapped = fill * t_here
                        value = pixel + ((add + extra) - trapped)
                        column[i] = value
                        b = i >> _BLOCK_SHIFT
                        if value > bmax[b]:
                            bmax[b] = value
                        i += 1


@njit(cache=True)
def fix_readout_crs(traps: F32, model: F64, observed: F64, thresh: float) -> bool:
    """Look for over-subtracted trails of read-out cosmic rays and weaken the traps there.

    A trail is over-subtracted when, from row 10 on, one pixel is below ``thresh`` (also
    relative to the observation), or two consecutive pixels sum below -12, or three below
    -15 (in the model and relative to the observation). The density from the largest excess
    in the 10 rows before down to the pixel is multiplied by :data:`CR_SHRINK`.

    Parameters
    ----------
    traps : ndarray of float32, shape (nrows,)
        Trap density of the column, modified in place.
    model, observed : ndarray of float64, shape (nrows,)
        Corrected column and the column it was corrected from.
    thresh : float
        PCTETRSH (negative electrons).

    Returns
    -------
    bool
        True when any trail was found, i.e. the column must be corrected again.
    """
    nrows = model.shape[0]
    redo = False
    for i in range(10, nrows - 2):
        m0 = model[i]
        m1 = model[i + 1]
        m2 = model[i + 2]
        o0 = observed[i]
        o1 = observed[i + 1]
        o2 = observed[i + 2]
        if (
            (thresh > m0 and thresh > m0 - o0)
            or (m0 + m1 < -12.0 and m0 + m1 - o0 - o1 < -12.0)
            or (m0 + m1 + m2 < -15.0 and m0 + m1 + m2 - o0 - o1 - o2 < -15.0)
        ):
            redo = True
            imax = i
            for ii in range(i - 10, i + 1):
                if model[ii] - observed[ii] > model[imax] - observed[imax]:
                    imax = ii
            for ii in range(imax, i + 1):
                traps[ii] = np.float32(np.float64(traps[ii]) * CR_SHRINK)
    return redo


@njit(cache=True)
def invert_column(
    observed: F64,
    traps: F32,
    qlev: F64,
    dpde: F64,
    rprof: F64,
    cprof: F64,
    tlen: int,
    npar: int,
    nfor: int,
    readnoise: float,
    fixrocr: bool,
    thresh: float,
    model: F64,
    scratch: F64,
    bmax: F64,
) -> None:
    """Find the column whose simulated readout is ``observed`` (hstcal's inversion).

    Starting from the observation, ``nfor - 1`` damped updates (the change ``d`` is scaled
    by ``d**2 / (d**2 + readnoise**2)``) are followed by one undamped update. With
    ``fixrocr`` the result is checked by :func:`fix_readout_crs`, and the column is inverted
    again with the weakened traps, at most :data:`MAX_CR_RUNS` times in all.

    Parameters
    ----------
    observed : ndarray of float64, shape (nrows,)
        The column as read out.
    traps : ndarray of float32, shape (nrows,)
        Trap density; weakened in place by the cosmic-ray fix.
    qlev, dpde, rprof, cprof, tlen, npar : see :func:`simulate_readout`
    nfor : int
        Number of readout simulations per inversion.
    readnoise : float
        Read noise of the amp (electrons), for the damping.
    fixrocr : bool
        Apply the read-out cosmic-ray fix.
    thresh : float
        PCTETRSH for the fix.
    model : ndarray of float64, shape (nrows,)
        Output: the corrected column.
    scratch, bmax : ndarray of float64
        Work space of shapes (nrows,) and (ceil(nrows / 32),).
    """
    nrows = observed.shape[0]
    rn2 = readnoise * readnoise
    runs = 0
    while True:
        model[:] = observed
        for _ in range(nfor - 1):
            scratch[:] = model
            simulate_readout(model, traps, qlev, dpde, rprof, cprof, tlen, npar, bmax)
            for i in range(nrows):
                delta = model[i] - observed[i]
                d2 = delta * delta
                denominator = d2 + rn2
                if denominator > 0.0:
                    delta *= d2 / denominator
                model[i] = scratch[i] - delta
        scratch[:] = model
        simulate_readout(model, traps, qlev, dpde, rprof, cprof, tlen, npar, bmax)
        for i in range(nrows):
            model[i] = scratch[i] - (model[i] - observed[i])
        runs += 1
        if not fixrocr or runs >= MAX_CR_RUNS:
            break
        if not fix_readout_crs(traps, model, observed, thresh):
            break


@njit(cache=True)
def _active_columns(image: F32, lowest: float) -> I64:
    # A column with no pixel at the lowest trap level never fills a trap, so its readout
    # is the identity and the callers copy it through. The others are returned costliest
    # (highest maximum, most traps followed) first, so that the round-robin split in the
    # callers hands every thread a similar load.
    ncols = image.shape[0]
    peaks = np.empty(ncols, dtype=np.float64)
    for c in range(ncols):
        m = -np.inf
        for r in range(image.shape[1]):
            if image[c, r] > m:
                m = image[c, r]
        peaks[c] = m
    order = np.argsort(-peaks, kind="mergesort")
    count = 0
    while count < ncols and peaks[order[count]] >= lowest:
        count += 1
    return order[:count]


@njit(cache=True, parallel=True)
def forward_amp(
    image: F32,
    traps: F32,
    qlev: F64,
    dpde: F64,
    rprof: F64,
    cprof: F64,
    tlen: int,
    npar: int,
) -> F32:
    """Add CTE trails to every column of an amp (one readout simulation per column).

    Parameters
    ----------
    image : ndarray of float32, shape (ncols, nrows)
        Amp in readout frame.
    traps : ndarray of float32, shape (ncols, nrows)
        Trap density map from :func:`trap_map`.
    qlev, dpde, rprof, cprof, tlen, npar : see :func:`simulate_readout`

    Returns
    -------
    ndarray of float32, shape (ncols, nrows)
        The trailed image. Columns with no pixel at the lowest trap level cannot fill a
        trap and are returned unchanged.
    """
    nrows = image.shape[1]
    out = image.copy()
    order = _active_columns(image, qlev[0])
    nactive = order.shape[0]
    nblocks = (nrows + (1 << _BLOCK_SHIFT) - 1) >> _BLOCK_SHIFT
    nsplit = min(nactive, 64)
    for part in prange(nsplit):
        column = np.empty(nrows, dtype=np.float64)
        bmax = np.empty(nblocks, dtype=np.float64)
        for k in range(part, nactive, nsplit):
            c = order[k]
            for r in range(nrows):
                column[r] = image[c, r]
            simulate_readout(column, traps[c], qlev, dpde, rprof, cprof, tlen, npar, bmax)
            for r in range(nrows):
                out[c, r] = np.float32(column[r])
    return out


@njit(cache=True, parallel=True)
def invert_amp(
    image: F32,
    traps: F32,
    qlev: F64,
    dpde: F64,
    rprof: F64,
    cprof: F64,
    tlen: int,
    npar: int,
    nfor: int,
    readnoise: float,
    fixrocr: bool,
    thresh: float,
) -> F32:
    """Remove CTE trails from every column of an amp (:func:`invert_column` per column).

    Parameters
    ----------
    image : ndarray of float32, shape (ncols, nrows)
        Amp in readout frame (the smoothed image when read-noise smoothing is on).
    traps : ndarray of float32, shape (ncols, nrows)
        Trap density map; columns where the cosmic-ray fix fired are weakened in place.
    qlev, dpde, rprof, cprof, tlen, npar, nfor, readnoise, fixrocr, thresh
        See :func:`invert_column`.

    Returns
    -------
    ndarray of float32, shape (ncols, nrows)
        The corrected image. Columns with no pixel at the lowest trap level are their own
        readout and are returned unchanged.
    """
    nrows = image.shape[1]
    out = image.copy()
    order = _active_columns(image, qlev[0])
    nactive = order.shape[0]
    nblocks = (nrows + (1 << _BLOCK_SHIFT) - 1) >> _BLOCK_SHIFT
    nsplit = min(nactive, 64)
    for part in prange(nsplit):
        observed = np.empty(nrows, dtype=np.float64)
        model = np.empty(nrows, dtype=np.float64)
        scratch = np.empty(nrows, dtype=np.float64)
        bmax = np.empty(nblocks, dtype=np.float64)
        for k in range(part, nactive, nsplit):
            c = order[k]
            for r in range(nrows):
                observed[r] = image[c, r]
            invert_column(
                observed, traps[c], qlev, dpde, rprof, cprof, tlen, npar, nfor,
                readnoise, fixrocr, thresh, model, scratch, bmax,
            )
            for r in range(nrows):
                out[c, r] = np.float32(model[r])
    return out


@njit(cache=True)
def copy_blocked(src: F32, dst: F32) -> None:
    """Copy ``src`` into ``dst`` (same shape, any strides) in 32 x 32 tiles.

    Going in and out of readout frame is a transpose and flips; tiles keep both sides in
    cache, and within a tile the loop runs along the destination's contiguous axis.

    Parameters
    ----------
    src : ndarray of float32
        Source, possibly a transposed or flipped view.
    dst : ndarray of float32
        Destination, possibly a view into a larger array.
    """
    n0, n1 = dst.shape
    rows_inner = abs(dst.strides[0]) < abs(dst.strides[1])
    for i0 in range(0, n0, 32):
        for j0 in range(0, n1, 32):
            i1 = min(i0 + 32, n0)
            j1 = min(j0 + 32, n1)
            if rows_inner:
                for j in range(j0, j1):
                    for i in range(i0, i1):
                        dst[i, j] = src[i, j]
            else:
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        dst[i, j] = src[i, j]


@njit(cache=True, parallel=True)
def apply_change(sci: F32, err: F32, before: F32, after: F32) -> None:
    """Add ``after - before`` to ``sci`` and 10 % of it in quadrature to ``err``, in place.

    Parameters
    ----------
    sci, err : ndarray of float32
        Science and error arrays of the amp (any layout, same shape as the others).
    before, after : ndarray of float32
        Image given to the CTE model and its result.
    """
    for c in prange(sci.shape[0]):
        for r in range(sci.shape[1]):
            delta = np.float32(np.float64(after[c, r]) - np.float64(before[c, r]))
            sci[c, r] = np.float32(np.float64(sci[c, r]) + np.float64(delta))
            e = np.float64(err[c, r])
            e2 = np.float64(np.float32(e * e))
            extra = 0.1 * abs(np.float64(delta))
            err[c, r] = np.float32(math.sqrt(e2 + extra * extra))
