"""Plain-numpy reference versions of the per-pixel CALACS kernels.

Every function here has a numba twin of the same name and signature in
:mod:`owl.calib.kernels`; these are the readable definition (tests compare the two) and the
baseline in ``tools/bench_calib.py``. Arrays are float32 (SCI, ERR) and int16 (DQ) images
of one chip, indexed ``[row, column]``; functions named as verbs work in place.

Amplifier regions follow hstcal's ``get_nsegn`` layout: a chip is cut at column ``ampx``
and row ``ampy``; a per-amp quantity is a ``(2, 2)`` array ``quad`` where
``quad[row >= ampy, col >= ampx]`` applies, i.e. ``[[C, D], [A, B]]``. A WFC chip read by
A and B has ``ampy = 0``; one read by C and D has ``ampy = ny``.

The overscan fit helpers at the end work on a few thousand numbers and are shared by both
kernel modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: DQ bit for a pixel lost in calibration (divide by zero), hstcal ``CALIBDEFECT``.
CALIBDEFECT = 512
#: DQ bit for full-well saturation, hstcal ``SATPIXEL``.
SATPIXEL = 256

F32 = NDArray[np.float32]
I16 = NDArray[np.int16]


def _quad_image(quad: NDArray[np.floating], shape: tuple[int, int], ampx: int,
                ampy: int) -> F32:
    """Expand a ``(2, 2)`` per-amp array to a full image (float32)."""
    ny, nx = shape
    rows = (np.arange(ny) >= ampy).astype(np.intp)
    cols = (np.arange(nx) >= ampx).astype(np.intp)
    q = np.asarray(quad, dtype=np.float32)
    out: F32 = q[rows[:, None], cols[None, :]]
    return out


def apply_bpixtab(dq: I16, pix1: NDArray[np.integer], pix2: NDArray[np.integer],
                  length: NDArray[np.integer], axis: NDArray[np.integer],
                  value: NDArray[np.integer], x0: int, y0: int) -> None:
    """OR the flags of a bad-pixel table (BPIXTAB rows) into ``dq`` in place.

    Parameters
    ----------
    dq : ndarray of int16
        DQ image of one chip, modified in place.
    pix1, pix2 : ndarray of int
        1-indexed column and row of the first pixel of each run, in reference (trimmed)
        coordinates.
    length : ndarray of int
        Number of pixels in each run.
    axis : ndarray of int
        1 for a run along a row (increasing column), 2 along a column.
    value : ndarray of int
        DQ flags to OR in.
    x0, y0 : int
        Offset of the image relative to the table's coordinates (``LTV1``, ``LTV2``):
        table pixel ``(p1, p2)`` is image pixel ``(p2 - 1 + y0, p1 - 1 + x0)``.
    """
    ny, nx = dq.shape
    for p1, p2, n, ax, val in zip(pix1, pix2, length, axis, value, strict=True):
        x = int(p1) - 1 + x0
        y = int(p2) - 1 + y0
        if int(ax) == 1:
            if 0 <= y < ny:
                lo, hi = max(x, 0), min(x + int(n), nx)
                if hi > lo:
                    dq[y, lo:hi] |= np.int16(val)
        else:
            if 0 <= x < nx:
                lo, hi = max(y, 0), min(y + int(n), ny)
                if hi > lo:
                    dq[lo:hi, x] |= np.int16(val)


def subtract_scaled(sci: F32, err: F32, dq: I16, ref_sci: F32, ref_err: F32, ref_dq: I16,
                    scale: float) -> None:
    """Subtract ``scale`` times a reference image in place, as hstcal's ``sub2d`` after ``multk2d``.

    ``sci -= scale·ref_sci``; ``err = sqrt(err² + (scale·ref_err)²)``; ``dq |= ref_dq``.
    BIASCORR uses ``scale = 1``, DARKCORR the dark time, FLSHCORR the flash duration.
    """
    s = np.float32(scale)
    sci -= s * ref_sci
    scaled_err = s * ref_err
    np.sqrt(err * err + scaled_err * scaled_err, out=err)
    dq |= ref_dq


def divide_flat(sci: F32, err: F32, dq: I16, flat_sci: F32, flat_err: F32,
                flat_dq: I16) -> None:
    """Divide by a flat field in place, as hstcal's ``div1d``.

    ``sci /= flat``; ``err = sqrt((err/flat)² + (sci·flat_err/flat²)²)`` with the old
    ``sci``; ``dq |= flat_dq``. Where the flat is zero SCI and ERR are left alone and
    :data:`CALIBDEFECT` is set.
    """
    zero = flat_sci == 0
    safe = np.where(zero, np.float32(1), flat_sci)
    a_term = err / safe
    b_term = flat_err * sci / safe / safe
    new_err = np.sqrt(a_term * a_term + b_term * b_term)
    np.copyto(err, new_err, where=~zero)
    np.copyto(sci, sci / safe, where=~zero)
    dq |= flat_dq | np.where(zero, np.int16(CALIBDEFECT), np.int16(0))


def multiply_quadrants(sci: F32, err: F32, quad: NDArray[np.floating], ampx: int,
                       ampy: int) -> None:
    """Multiply SCI and ERR by a per-amp factor (the gain: DN → electrons) in place."""
    g = _quad_image(quad, sci.shape, ampx, ampy)
    sci *= g
    err *= g


def init_err(sci: F32, err: F32, readnoise: NDArray[np.floating], ampx: int,
             ampy: int) -> None:
    """Initialise ERR in place as hstcal's ``doNoise`` (all quantities in electrons).

    ``err = sqrt(max(sci, 0) + readnoise² + err²)``; the old ERR carries the bias
    file's uncertainty.
    """
    rn = _quad_image(readnoise, sci.shape, ampx, ampy)
    np.sqrt(np.maximum(sci, np.float32(0)) + rn * rn + err * err, out=err)


def flag_saturation(sci: F32, dq: I16, fullwell: NDArray[np.floating], ampx: int,
                    ampy: int, flag: int = SATPIXEL) -> None:
    """OR ``flag`` into ``dq`` where ``sci`` exceeds the per-amp full well (in place)."""
    sat = _quad_image(fullwell, sci.shape, ampx, ampy)
    dq |= np.where(sci > sat, np.int16(flag), np.int16(0))


def flag_above(sci: F32, dq: I16, limit: F32, x0: int, y0: int,
               flag: int = SATPIXEL) -> None:
    """OR ``flag`` into ``dq`` where ``sci`` exceeds a limit image (a SATUFILE) in place.

    ``limit[j, i]`` applies to ``sci[y0 + j, x0 + i]``; pixels outside it are not tested.
    """
    ly, lx = limit.shape
    region = (slice(y0, y0 + ly), slice(x0, x0 + lx))
    dq[region] |= np.where(sci[region] > limit, np.int16(flag), np.int16(0))


def trim(image: NDArray[np.generic], x0: int, x1: int, y0: int,
         y1: int) -> NDArray[np.generic]:
    """Return a contiguous copy of ``image[y0:y1, x0:x1]`` (overscan removal)."""
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def overscan_row_levels(sci: F32, dq: I16, sections: NDArray[np.integer], row0: int,
                        row1: int, sdqflags: int) -> NDArray[np.float64]:
    """Median of the good overscan pixels of each row, as hstcal's ``FindBlev``.

    Parameters
    ----------
    sci, dq : ndarray
        The untrimmed chip.
    sections : ndarray of int, shape (k, 2)
        Inclusive 0-indexed column ranges of the physical overscan to use.
    row0, row1 : int
        Rows ``row0 <= j < row1`` to measure.
    sdqflags : int
        DQ bits that make an overscan pixel unusable.

    Returns
    -------
    ndarray of float64, shape (row1 - row0,)
        The median per row; NaN for a row without a good pixel.
    """
    cols = np.concatenate([np.arange(a, b + 1) for a, b in sections])
    vals = sci[row0:row1, cols].astype(np.float64)
    bad = (dq[row0:row1, cols] & sdqflags) != 0
    vals[bad] = np.nan
    out = np.full(row1 - row0, np.nan)
    ok = ~bad.all(axis=1)
    out[ok] = np.nanmedian(vals[ok], axis=1)
    return out


def virtual_overscan_columns(sci: F32, dq: I16, vx0: int, vx1: int, vy0: int, vy1: int,
                             sdqflags: int) -> NDArray[np.float64]:
    """Median over rows ``vy0..vy1`` (inclusive) of each column ``vx0..vx1``, as ``VMedianY``.

    Returns NaN for a column without a good pixel.
    """
    vals = sci[vy0:vy1 + 1, vx0:vx1 + 1].astype(np.float64)
    bad = (dq[vy0:vy1 + 1, vx0:vx1 + 1] & sdqflags) != 0
    vals[bad] = np.nan
    out = np.full(vx1 - vx0 + 1, np.nan)
    ok = ~bad.all(axis=0)
    out[ok] = np.nanmedian(vals[:, ok], axis=0)
    return out


def subtract_bias_level(sci: F32, row0: int, row1: int, col0: int, col1: int,
                        level: BiasLevel) -> None:
    """Subtract a fitted bias level from the amp region ``[row0:row1, col0:col1]`` in place.

    The level at ``(j, i)`` is ``level.at_row(j) + level.drift_slope·(i - level.drift_zero)``.
    """
    rows = np.arange(row0, row1, dtype=np.float64)
    cols = np.arange(col0, col1, dtype=np.float64)
    per_row = level.intercept + level.slope * (rows - level.mid_row)
    per_col = level.drift_slope * (cols - level.drift_zero)
    # hstcal's doBlev: pixel - level - drift in double, stored as float32.
    region = sci[row0:row1, col0:col1].astype(np.float64)
    sci[row0:row1, col0:col1] = (region - per_row[:, None] - per_col[None, :]).astype(np.float32)


@dataclass(frozen=True)
class BiasLevel:
    """A bias level fitted to the overscan: linear in row, plus the virtual-overscan drift.

    ``intercept + slope·(row - mid_row) + drift_slope·(column - drift_zero)``, in the units
    of the image (electrons after the gain).
    """

    intercept: float
    slope: float
    mid_row: float
    drift_slope: float = 0.0
    drift_zero: float = 0.0
    nrejected: int = 0
    from_overscan: bool = True

    def at_row(self, row: float) -> float:
        """The level (without drift) at ``row``."""
        return self.intercept + self.slope * (row - self.mid_row)


def clean_bias_levels(levels: NDArray[np.float64], readnoise: float) -> NDArray[np.bool_]:
    """Mask of per-row overscan levels to keep, as hstcal's ``cleanBiasFit``.

    Rows with no level (NaN) are dropped. Then, in two passes, levels above the mean by
    more than 3 sigma are rejected: first with sigma the scatter (capped at the Poisson value
    √mean so a bright bleed into the overscan cannot widen the window), then with sigma the
    read noise. Only high outliers are rejected: cosmic rays and bleeding add charge. As in
    hstcal, each threshold is truncated to an integer (C's ``abs()`` of a double).
    """
    keep = np.isfinite(levels)
    n = int(keep.sum())
    if n == 0:
        return keep
    mean = float(np.cumsum(levels[keep])[-1]) / n
    sdev = float(np.sqrt(np.cumsum((levels[keep] - mean) ** 2)[-1] / (n - 1))) if n > 1 else 0.0
    if mean > 0 and sdev > np.sqrt(mean):
        sdev = float(np.sqrt(mean))
    # hstcal compares with C's int abs(): the threshold is truncated to an integer first.
    keep &= ~(levels > abs(int(3.0 * sdev + mean)))
    if not keep.any():
        return keep
    mean = float(np.cumsum(levels[keep])[-1]) / int(keep.sum())
    keep &= ~(levels > abs(int(float(np.float32(3.0) * np.float32(readnoise)) + mean)))
    return keep


def fit_line(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, float] | None:
    """Unweighted least-squares line through ``(x, y)``; ``None`` if empty or singular.

    Returns ``(slope, intercept)`` with the intercept at ``x = 0`` (callers centre ``x``).
    """
    n = x.size
    if n < 1:
        return None
    # Sequential sums (cumsum), in hstcal's BlevAccum/DriftAccum order.
    sx, sy = float(np.cumsum(x)[-1]), float(np.cumsum(y)[-1])
    d = float(np.cumsum(x * x)[-1]) - sx * sx / n
    if abs(d) < np.finfo(np.float32).tiny:
        return None
    xmean, ymean = sx / n, sy / n
    slope = (float(np.cumsum(x * y)[-1]) - xmean * ymean * n) / d
    return slope, ymean - slope * xmean


def fit_bias_level(levels: NDArray[np.float64], row0: int, readnoise: float,
                   default: float) -> BiasLevel:
    """Fit a line to per-row overscan levels (rows ``row0 ...``), as ``FitToOverscan``.

    Outliers are removed with :func:`clean_bias_levels`; when nothing is left or the fit
    is singular the constant ``default`` (the CCDTAB bias) is used instead.
    """
    mid = row0 + levels.size // 2
    keep = clean_bias_levels(levels, readnoise)
    rows = np.arange(row0, row0 + levels.size, dtype=np.float64) - mid
    fit = fit_line(rows[keep], levels[keep])
    nrej = int(np.isfinite(levels).sum() - keep.sum())
    if fit is None:
        return BiasLevel(default, 0.0, float(mid), nrejected=nrej, from_overscan=False)
    # hstcal fits against j - ny/2 (j counted from the first image row) but evaluates
    # BlevEval at the raw row number, i.e. around ny/2 without the TRIMY1 offset.
    return BiasLevel(fit[1], fit[0], float(levels.size // 2), nrejected=nrej)


def drift_slope(column_levels: NDArray[np.float64], vx0: int) -> float:
    """Slope of the virtual-overscan level against column, as hstcal's ``BlevDrift``.

    Only the slope is used (the overall level comes from the physical overscan); columns
    without a level are skipped; a singular fit gives 0.
    """
    ok = np.isfinite(column_levels)
    cols = np.arange(vx0, vx0 + column_levels.size, dtype=np.float64)
    mid = vx0 + (column_levels.size - 1) // 2
    fit = fit_line(cols[ok] - mid, column_levels[ok])
    return 0.0 if fit is None else fit[0]
