"""Where the ACS/WFC amplifiers sit and how an amp is turned into readout frame.

A chip array is (2048 rows, 4096 columns). Chip 2 (imset 1) holds amp C in columns 0-2047
and D in 2048-4095, read out at rows 0; chip 1 (imset 2) holds A and B, read out at row
2047. C and A are read out at column 0, D and B at column 4095.

The kernels want an amp in *readout frame*, an array ``a[c, r]`` whose column ``c`` is read
out through ``r = 0``:

* parallel: ``c`` counts image columns from the amp's corner, ``r`` image rows from the
  serial register;
* serial: ``c`` counts image rows from the row farthest from the serial register, ``r``
  image columns from the amp.

Both are views (flips and, for the parallel frame, a transpose) of the amp's slice of the
chip, so writing into them writes into the chip.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from owl.errors import CalibError

AMP_SIZE = 2048
"""Rows and columns of one WFC amp after overscan trimming."""

CHIP_OF_AMP = {"A": 1, "B": 1, "C": 2, "D": 2}
AMPS_OF_CHIP = {1: "AB", 2: "CD"}

SCLBYCOL_OFFSET = {"C": 0, "D": AMP_SIZE, "A": 2 * AMP_SIZE, "B": 3 * AMP_SIZE}
"""First SCLBYCOL IZ of each amp (the table runs in CDAB order)."""


def amp_slice(chip_array: npt.NDArray[Any], amp: str) -> npt.NDArray[Any]:
    """The amp's columns of a chip array, as a view.

    Parameters
    ----------
    chip_array : ndarray, shape (2048, 4096)
        SCI or ERR of the chip holding ``amp``.
    amp : str
        Amplifier letter.

    Returns
    -------
    ndarray, shape (2048, 2048)
    """
    if chip_array.shape != (AMP_SIZE, 2 * AMP_SIZE):
        raise CalibError(
            f"amp {amp}: chip array has shape {chip_array.shape}, expected "
            f"({AMP_SIZE}, {2 * AMP_SIZE}) (full frame, overscan trimmed)"
        )
    first = 0 if amp in "AC" else AMP_SIZE
    return chip_array[:, first : first + AMP_SIZE]


def amp_regions(shape: tuple[int, ...], chip: int, ccdamp: str) -> list[tuple[str, slice, int]]:
    """The amps of a chip that CCDAMP reads: (amp, its columns, its first SCLBYCOL IZ).

    A full-frame chip (CCDAMP naming both of its amps) splits at column 2048. A one-amp
    readout (a subarray at the amp's corner, overscan trimmed) is a single amp region over
    the whole array, as hstcal's ``get_amp_array_size_acs_cte`` makes it; hstcal then puts
    its SCLBYCOL origin at 4096 for a chip-1 amp and at 0 for a chip-2 amp, whichever of the
    two it is, so amps B and D read the column scalings of A and C.

    Raises
    ------
    CalibError
        When CCDAMP names no amp of ``chip``.
    """
    used = [a for a in AMPS_OF_CHIP[chip] if a in ccdamp.upper()]
    if not used:
        raise CalibError(f"CCDAMP={ccdamp!r} reads no amplifier of chip {chip}")
    if len(used) == 2:
        return [(a, slice(0 if a in "AC" else AMP_SIZE, AMP_SIZE if a in "AC" else 2 * AMP_SIZE),
                 SCLBYCOL_OFFSET[a]) for a in used]
    return [(used[0], slice(0, shape[1]), 2 * AMP_SIZE if chip == 1 else 0)]


def readout_frame(amp_array: npt.NDArray[Any], amp: str, serial: bool) -> npt.NDArray[Any]:
    """View an amp array (image orientation) in readout frame.

    Parameters
    ----------
    amp_array : ndarray, shape (2048, 2048)
        The amp in image orientation, from :func:`amp_slice`.
    amp : str
        Amplifier letter.
    serial : bool
        Serial (True) or parallel (False) readout frame.

    Returns
    -------
    ndarray, shape (2048, 2048)
        A view ``a[c, r]`` as described in the module docstring.
    """
    flip_cols = amp in "BD"
    if serial:
        flip_rows = amp in "CD"
        view = amp_array[::-1] if flip_rows else amp_array
        return view[:, ::-1] if flip_cols else view
    flip_rows = amp in "AB"
    view = amp_array[::-1] if flip_rows else amp_array
    view = view[:, ::-1] if flip_cols else view
    return np.swapaxes(view, 0, 1)
