"""Pixel-based CTE correction of ACS/WFC (PCTECORR) and its forward model, in numba.

File-level entry points are :func:`run_acscte` and :func:`run_forward_model`; the science
lives in :mod:`owl.calib.cte.kernels` (readout simulation, inversion, trap map) and
:mod:`owl.calib.cte.smooth` (read-noise smoothing), driven per amp by
:mod:`owl.calib.cte.correct`.
"""

from owl.calib.cte.pctetab import PCTETab, TrapSet, read_pctetab
from owl.calib.cte.step import run_acscte, run_forward_model

__all__ = ["PCTETab", "TrapSet", "read_pctetab", "run_acscte", "run_forward_model"]
