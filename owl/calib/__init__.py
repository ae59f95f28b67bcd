"""owl.calib: the CALACS-like calibration task library for ACS/WFC.

Kernels are pure functions of arrays (importable without Redis or FITS); step modules glue
them to FITS files and header switches, following the hstcal CALACS conventions.
"""
