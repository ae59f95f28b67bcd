"""SINKCORR: flag sink pixels and their trails from the SNKCFILE (hstcal's ``acsccd/dosink.c``).

The SNKCFILE is an image per chip in raw geometry (untrimmed, LTV of the raw chip). Along
each column, walking from the amplifier's side (up the rows for the file's SCI,1, down them
for SCI,2): a value below 0 (a sink, < -1, or the pixel just downstream of one, -1) is
flagged and starts a trail, and a sink records the science value under it; a value above 0
is flagged while the trail goes on and exceeds that recorded science value, and otherwise
ends the trail; a 0 ends it. The flag is DQ 1024. ACSCCD runs this after the ERR
initialisation and before the overscan trim, so the science array is still in raw geometry
(a subarray is placed in the SNKCFILE by the LTV offsets, as ``FindLineHdr``); binned data
are refused, as by hstcal.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from owl.calib.fitsio import Frame, Imset
from owl.errors import CalibError

SINKPIXEL = 1024


def _corner(ltv: float, ltm: float) -> tuple[int, int]:
    """hstcal's FromLT for one axis: (bin, corner) from LTV and LTM."""
    dbin = 1.0 / ltm
    c = (dbin - 1.0) - dbin * ltv
    return int(dbin + 0.5), (int(c + 0.5) if c >= 0 else int(c - 0.5))


def sink_offset(imset: Imset, ref: Imset, where: str) -> tuple[int, int]:
    """(x0, y0) of the science array in the SNKCFILE chip, as ``FindLineHdr``."""
    sh, rh = imset.sci_header, ref.sci_header
    sx = _corner(float(sh.get("LTV1", 0.0)), float(sh.get("LTM1_1", 1.0)))
    sy = _corner(float(sh.get("LTV2", 0.0)), float(sh.get("LTM2_2", 1.0)))
    rx = _corner(float(rh.get("LTV1", 0.0)), float(rh.get("LTM1_1", 1.0)))
    ry = _corner(float(rh.get("LTV2", 0.0)), float(rh.get("LTM2_2", 1.0)))
    if sx[0] != rx[0] or sy[0] != ry[0]:
        raise CalibError(f"{where}: chip {imset.chip}: (sinkcorr) binned data is not supported")
    if (sx[1], sy[1]) == (rx[1], ry[1]) and imset.sci.shape[1] == ref.sci.shape[1]:
        return 0, 0
    return sx[1] - rx[1], sy[1] - ry[1]


def flag_sinks(sci: NDArray[np.float32], dq: NDArray[np.int16], sink: NDArray[np.float32],
               upward: bool) -> int:
    """OR DQ 1024 into ``dq`` along the sink trails; return the number of flags set.

    ``sink`` is the SNKCFILE cut to the science array; ``upward`` walks the rows from 0
    (the file's SCI,1), otherwise from the last row.
    """
    ny, nx = sci.shape
    keep = np.zeros(nx, dtype=bool)
    cur = np.zeros(nx, dtype=np.float32)
    flag = np.int16(SINKPIXEL)
    n = 0
    for j in range(ny) if upward else range(ny - 1, -1, -1):
        sp = sink[j]
        neg = sp < 0
        pos = sp > 0
        head = sp < -1
        cur[head] = sci[j, head]
        tail = pos & keep
        above = tail & (sp > cur)
        mark = neg | above
        dq[j, mark] |= flag
        n += int(np.count_nonzero(mark))
        keep[(tail & ~above) | (~neg & ~pos)] = False
        keep[neg] = True
    return n


def sinkcorr(frame: Frame, snkc: Frame, where: str) -> int:
    """Flag the sink pixels of every imset of ``frame`` from SNKCFILE ``snkc``."""
    total = 0
    for imset in frame.imsets:
        ref = snkc.imset(imset.chip)
        x0, y0 = sink_offset(imset, ref, where)
        ny, nx = imset.sci.shape
        ry, rx = ref.sci.shape
        if x0 < 0 or y0 < 0 or y0 + ny > ry or x0 + nx > rx:
            raise CalibError(f"{where}: chip {imset.chip} SNKCFILE of shape {(ry, rx)} does not "
                             f"cover the science array {(ny, nx)} at offset ({y0}, {x0})")
        cut = np.ascontiguousarray(ref.sci[y0:y0 + ny, x0:x0 + nx], dtype=np.float32)
        total += flag_sinks(imset.sci, imset.dq, cut, ref.extver == 1)
    return total
