"""Whole-chip CTE correction: per amp, the serial pass (post-SM4) and then the parallel pass.

A pass puts the amp in readout frame, smooths it against the read noise, builds the trap
map, inverts the readout column by column, and adds the change (corrected - smoothed) to
the data, with 10 % of it added in quadrature to the error.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from owl.calib.cte.amps import (
    AMPS_OF_CHIP,
    SCLBYCOL_OFFSET,
    amp_regions,
    amp_slice,
    readout_frame,
)
from owl.calib.cte.kernels import (
    apply_change,
    copy_blocked,
    forward_amp,
    invert_amp,
    trap_map,
)
from owl.calib.cte.params import CTEConfig, PassParams
from owl.calib.cte.smooth import smooth_amp

F32 = npt.NDArray[np.float32]


def cte_pass(
    sci_amp: F32, err_amp: F32, amp: str, params: PassParams, readnoise: float | None,
    offset: int | None = None,
) -> None:
    """Run one pass (correction or forward model) on one amp, in place.

    Parameters
    ----------
    sci_amp, err_amp : ndarray of float32, shape (2048, 2048)
        The amp's SCI and ERR in image orientation (views into the chip are updated).
    amp : str
        Amplifier letter.
    params : PassParams
        Pass parameters; ``params.kind`` selects the serial or parallel readout frame.
    readnoise : float or None
        Read noise of the amp (electrons), for smoothing and damping; None runs the forward
        model (add trails, no smoothing) instead of the correction.
    offset : int, optional
        First SCLBYCOL IZ of the amp (default: the full-frame amp's).
    """
    serial = params.kind == "serial"
    sci_view = readout_frame(sci_amp, amp, serial)
    err_view = readout_frame(err_amp, amp, serial)
    ncols, nrows = sci_view.shape
    image = np.empty((ncols, nrows), dtype=np.float32)
    err = np.empty((ncols, nrows), dtype=np.float32)
    copy_blocked(sci_view, image)
    copy_blocked(err_view, err)
    t = params.traps
    first = SCLBYCOL_OFFSET[amp] if offset is None else offset
    traps = trap_map(t.iz, t.sens, first, ncols, nrows, params.frac)
    if readnoise is None:
        before = image.copy()
        after = forward_amp(before, traps, t.qlev, t.dpde, t.rprof, t.cprof,
                            params.tlen, params.npar)
    else:
        before = smooth_amp(image, readnoise)
        after = invert_amp(before, traps, t.qlev, t.dpde, t.rprof, t.cprof, params.tlen,
                           params.npar, params.nfor, readnoise, params.fixrocr, params.thresh)
    apply_change(image, err, before, after)
    copy_blocked(image, sci_view)
    copy_blocked(err, err_view)


def process_chip(
    sci: F32, err: F32, chip: int, config: CTEConfig, readnoise: Mapping[str, float] | None,
    ccdamp: str = "ABCD",
) -> None:
    """Correct (or forward-model) both amps of one chip, in place.

    Parameters
    ----------
    sci, err : ndarray of float32, shape (2048, 4096)
        The chip's SCI and ERR, trimmed, in electrons.
    chip : int
        CCDCHIP (1: amps A, B; 2: amps C, D).
    config : CTEConfig
        Pass parameters; amps with a serial pass get it first.
    readnoise : mapping or None
        Amp letter to read noise (electrons); None runs the forward model.
    ccdamp : str
        CCDAMP: ``ABCD`` (full frame, both amps of the chip) or the one amp of a subarray
        (:func:`owl.calib.cte.amps.amp_regions`).
    """
    regions = amp_regions(sci.shape, chip, ccdamp)
    if len(regions) == 2:
        for amp in AMPS_OF_CHIP[chip]:
            amp_slice(sci, amp)  # shape check
    for amp, cols, offset in regions:
        sci_amp = sci[:, cols]
        err_amp = err[:, cols]
        rn = None if readnoise is None else readnoise[amp]
        if amp in config.serial:
            cte_pass(sci_amp, err_amp, amp, config.serial[amp], rn, offset)
        cte_pass(sci_amp, err_amp, amp, config.parallel, rn, offset)


def correct_chip(
    sci: F32, err: F32, chip: int, config: CTEConfig, readnoise: Mapping[str, float],
    ccdamp: str = "ABCD",
) -> None:
    """Remove CTE trails from one chip, in place (see :func:`process_chip`).

    Parameters
    ----------
    sci, err : ndarray of float32, shape (2048, 4096)
        The chip's SCI and ERR.
    chip : int
        CCDCHIP.
    config : CTEConfig
        Pass parameters.
    readnoise : mapping
        Amp letter to read noise (electrons).
    ccdamp : str
        CCDAMP (one letter for a subarray).
    """
    process_chip(sci, err, chip, config, readnoise, ccdamp)
