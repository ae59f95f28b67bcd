"""The CTE forward model: add the trails a readout would create (hstcal's acscteforwardmodel).

Same passes as the correction (serial first after SM4, then parallel), without read-noise
smoothing and without iteration: one readout simulation per column.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from owl.calib.cte.correct import process_chip
from owl.calib.cte.params import CTEConfig

F32 = npt.NDArray[np.float32]


def forward_chip(sci: F32, err: F32, chip: int, config: CTEConfig,
                 ccdamp: str = "ABCD") -> None:
    """Add CTE trails to one chip, in place.

    Parameters
    ----------
    sci, err : ndarray of float32, shape (2048, 4096)
        The chip's SCI and ERR; ERR grows by 10 % of the added trail, in quadrature.
    chip : int
        CCDCHIP.
    config : CTEConfig
        Pass parameters.
    ccdamp : str
        CCDAMP (one letter for a subarray).
    """
    process_chip(sci, err, chip, config, None, ccdamp)
