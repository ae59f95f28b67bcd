"""Fused ACSCCD kernels: steps that follow each other done in one pass over the chip.

:func:`subtract_bias_gain` is :func:`owl.calib.kernels.subtract_scaled` (a bias image with
constant ERR and DQ, scale 1) followed by :func:`owl.calib.kernels.multiply_quadrants` (the
gain): the same float32 operations in the same order, so the same numbers, with SCI and ERR
read and written once instead of twice.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

from owl.calib import kernels as K

F32 = NDArray[np.float32]
I16 = NDArray[np.int16]


@numba.njit(cache=True, parallel=True, nogil=True)
def _subtract_gain_c(sci: F32, err: F32, dq: I16, ref_sci: F32, ref_err: np.float32,
                     ref_dq: np.int16, s: np.float32, q: F32, ampx: int,
                     ampy: int) -> None:
    ny, nx = sci.shape
    for j in prange(ny):
        r = 1 if j >= ampy else 0
        for i in range(nx):
            g = q[r, 0] if i < ampx else q[r, 1]
            x = sci[j, i] - s * ref_sci[j, i]
            e = s * ref_err
            y = np.sqrt(err[j, i] * err[j, i] + e * e)
            dq[j, i] |= ref_dq
            sci[j, i] = x * g
            err[j, i] = y * g


def subtract_bias_gain(sci: F32, err: F32, dq: I16, ref_sci: F32, ref_err: F32,
                       ref_dq: I16, quad: NDArray[np.floating], ampx: int,
                       ampy: int) -> None:
    """Subtract a bias image (scale 1), then multiply SCI and ERR by the per-amp gain, in
    place; one pass when the bias ERR and DQ are constant (zero-stride) and the shapes
    match, else the two kernels one after the other."""
    if K._constant(ref_err) and K._constant(ref_dq) and ref_sci.shape == sci.shape:
        bx, by = K._bounds(sci.shape, ampx, ampy)
        _subtract_gain_c(sci, err, dq, ref_sci, np.float32(ref_err.flat[0]),
                         np.int16(ref_dq.flat[0]), np.float32(1.0), K._quad(quad), bx, by)
        return
    K.subtract_scaled(sci, err, dq, ref_sci, ref_err, ref_dq, 1.0)
    K.multiply_quadrants(sci, err, quad, ampx, ampy)
