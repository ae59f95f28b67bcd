"""DARKTIME as hstcal's ACSCCD computes it (``acsccd/dodarktime.c``).

The header's DARKTIME plus the commanding overhead of the CCDTAB row (OVRHUFLS, or OVRHFLS
for a post-flashed exposure) for full frames from SM4 and for the supported subarrays from
Cycle 24; ACS2D then scales the dark by the value ACSCCD wrote.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.ccdtab import CCDParams
from owl.calib.step import SM4MJD, header_float

#: hstcal's ``CYCLE24`` (MJD): supported subarrays get the DARKTIME overhead from here on.
CYCLE24MJD = 57662.0
#: Subarray apertures whose DARKTIME hstcal adjusts (``computeDarktime``).
DARK_SUBARRAYS = frozenset((
    "WFC1A-2K", "WFC1B-2K", "WFC2C-2K", "WFC2D-2K", "WFC1A-1K", "WFC1B-1K", "WFC2C-1K",
    "WFC2D-1K", "WFC1A-512", "WFC1B-512", "WFC2C-512", "WFC2D-512", "WFC1-IRAMPQ",
    "WFC1-MRAMPQ", "WFC2-ORAMPQ", "WFC1-POL0UV", "WFC1-POL0V", "WFC1-POL60UV", "WFC1-POL60V",
    "WFC1-POL120UV", "WFC1-POL120V", "WFC1-SMFL"))


def darktime(primary: fits.Header, source: str, ccd: CCDParams | None = None) -> float:
    """DARKTIME as hstcal's ``computeDarktime``: the header's value plus the CCDTAB overhead.

    The overhead is OVRHUFLS, or OVRHFLS for a post-flashed exposure (FLASHDUR > 0 and
    FLASHSTA = SUCCESSFUL); it applies to full frames from SM4 (EXPSTART >= 54962) and to the
    supported subarray apertures from Cycle 24 (57662). The sum is in float32, as hstcal's.
    Without a DARKTIME keyword the base is EXPTIME + FLASHDUR (hstcal before 2021).
    """
    if "DARKTIME" in primary:
        base = header_float(primary, "DARKTIME", source=source)
    else:
        base = (header_float(primary, "EXPTIME", source=source)
                + header_float(primary, "FLASHDUR", 0.0, source))
    if ccd is None:
        return float(np.float32(base))
    flashed = (header_float(primary, "FLASHDUR", 0.0, source) > 0
               and str(primary.get("FLASHSTA", "")).strip().upper() == "SUCCESSFUL")
    offset = ccd.overhead_flashed if flashed else ccd.overhead_unflashed
    expstart = header_float(primary, "EXPSTART", 0.0, source)
    if bool(primary.get("SUBARRAY", False)):
        aperture = str(primary.get("APERTURE", "")).strip().upper()
        adjust = expstart >= CYCLE24MJD and aperture in DARK_SUBARRAYS
    else:
        adjust = expstart >= SM4MJD
    if not adjust:
        return float(np.float32(base))
    return float(np.float32(base) + np.float32(offset))
