"""DQICORR as hstcal's ``doDQI``: A-to-D saturation, then the BPIXTAB flags.

Every pixel at or above the CCDTAB row's ATODSAT (in the data as they are, DN in ACSCCD) gets
DQ 2048; then the BPIXTAB rows of the imset's chip are ORed into DQ. With a DUMMY BPIXTAB
(:mod:`owl.calib.pedigree`) only the saturation check runs and DQICORR is SKIPPED.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib import kernels as K
from owl.calib.ccdtab import CCDParams
from owl.calib.fitsio import Frame
from owl.calib.fitstable import table_columns
from owl.calib.pedigree import Plan
from owl.calib.step import Report, complete, ref_file
from owl.errors import CalibError

#: hstcal's ATODSAT DQ bit (A-to-D converter saturation).
ATODSAT = 2048


def flag_atod_saturation(frame: Frame, ccd: Mapping[int, CCDParams]) -> None:
    """OR DQ 2048 where SCI >= the CCDTAB's ATODSAT (chips whose row has no ATODSAT are left
    alone)."""
    for imset in frame.imsets:
        limit = ccd[imset.chip].atodsat if imset.chip in ccd else None
        if limit is not None:
            imset.dq[imset.sci >= np.float32(limit)] |= np.int16(ATODSAT)


def apply_bpixtab(frame: Frame, source: str, report: Report) -> str:
    """OR the BPIXTAB flags into every imset's DQ; return the BPIXTAB keyword value."""
    path = ref_file(frame.primary, "BPIXTAB", source)
    try:
        with fits.open(path, memmap=False) as hdul:
            cols = {n.upper(): c for n, c in table_columns(hdul, 1, str(path)).items()}
    except (OSError, IndexError, AttributeError, TypeError) as exc:
        raise CalibError(f"BPIXTAB {path}: cannot read the table ({exc})") from exc
    for imset in frame.imsets:
        sel = cols["CCDCHIP"] == imset.chip if "CCDCHIP" in cols else slice(None)
        try:
            K.apply_bpixtab(imset.dq, cols["PIX1"][sel], cols["PIX2"][sel],
                            cols["LENGTH"][sel], cols["AXIS"][sel], cols["VALUE"][sel],
                            int(imset.sci_header.get("LTV1", 0)),
                            int(imset.sci_header.get("LTV2", 0)))
        except KeyError as exc:
            raise CalibError(f"BPIXTAB {path}: column {exc.args[0]} is missing") from None
    report(f"DQICORR: {path.name}")
    return str(frame.primary["BPIXTAB"])


def dqicorr(frame: Frame, plan: Plan, ccd: Mapping[int, CCDParams], source: str,
            report: Report) -> None:
    """DQICORR when ``plan`` performs it, or its DUMMY-BPIXTAB form (saturation only)."""
    ph = frame.primary
    if plan.runs("DQICORR"):
        flag_atod_saturation(frame, ccd)
        complete(ph, "DQICORR", f"BPIXTAB={apply_bpixtab(frame, source, report)}")
    elif "DQICORR" in plan.dummy:
        flag_atod_saturation(frame, ccd)
        plan.skip(ph, "DQICORR", report,
                  extra=("  values checked for saturation", "  DQ array initialized ..."))
