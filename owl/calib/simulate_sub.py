"""Simulator options beyond the default full frame: subarray cuts and the sink-pixel map.

- :func:`cut_subarray` turns a simulated raw full frame (both chips) into the raw frame of a
  supported subarray aperture (:mod:`owl.calib.subarray`): the imset of the aperture's chip,
  cut to its box, with SUBARRAY, APERTURE, CCDAMP, LTV1/LTV2 and SIZAXIS1/2 as a real
  subarray's headers have them.
- :func:`write_snkcfile` writes a SNKCFILE in hstcal's format (``acsccd/dosink.c``): per chip
  an image in raw geometry (4144 x 2068, LTV1/LTV2 of the raw chip, like the SATUFILE) that
  is 0 except along each sink pixel's column: the sink itself holds minus its depth
  (< -1), the pixel one row nearer the amplifier holds -1, the next row away from the
  amplifier 999 and up to 11 further rows a decreasing charge level (> 0): hstcal flags
  those while they exceed the science value at the sink.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from owl.calib.fitsio import Frame, Imset
from owl.calib.simulate_refs import write_image
from owl.calib.subarray import Subarray
from owl.calib.wfc_layout import RAW_SHAPE, TRIM_SHAPE, chip_layout

F32 = npt.NDArray[np.float32]
SINKS_PER_CHIP = 400
"""Sink pixels drawn per chip."""


def cut_subarray(primary: Any, imsets: list[Imset], sub: Subarray) -> Frame:
    """The raw subarray frame cut from a raw full frame's imsets (headers copied)."""
    full = next(s for s in imsets if s.chip == sub.chip)
    rows, cols = sub.raw_box()
    ltv1, ltv2 = sub.ltv
    headers = []
    for h in (full.sci_header, full.err_header, full.dq_header):
        h = h.copy()
        h["LTV1"], h["LTV2"] = ltv1, ltv2
        h["SIZAXIS1"], h["SIZAXIS2"] = sub.size, sub.size
        headers.append(h)
    ph = primary.copy()
    ph["SUBARRAY"] = True
    ph["APERTURE"] = sub.aperture
    ph["CCDAMP"] = sub.amp
    cut = Imset(sci=np.ascontiguousarray(full.sci[rows, cols]),
                err=np.ascontiguousarray(full.err[rows, cols]),
                dq=np.ascontiguousarray(full.dq[rows, cols]), sci_header=headers[0],
                err_header=headers[1], dq_header=headers[2], extver=1)
    return Frame(primary=ph, imsets=[cut], path=None)


def sink_maps(rng: np.random.Generator) -> dict[int, F32]:
    """The SNKCFILE image of each chip in raw geometry (see the module docstring)."""
    maps = {}
    for chip in (1, 2):
        lay = chip_layout(chip)
        image = np.zeros(RAW_SHAPE, np.float32)
        # Towards the amplifier is down the rows on chip 2 (read out at row 0), up on chip 1.
        toward = -1 if chip == 2 else 1
        for _ in range(SINKS_PER_CHIP):
            y = int(rng.integers(14, TRIM_SHAPE[0] - 14)) + lay.image_rows.start
            x = int(rng.integers(0, TRIM_SHAPE[1])) + lay.image_cols.start
            depth = float(rng.integers(2, 80))
            image[y, x] = -depth
            image[y + toward, x] = -1.0
            image[y - toward, x] = 999.0
            for m in range(2, 2 + int(rng.integers(0, 11))):
                image[y - m * toward, x] = np.float32(round(depth * 4.0 * np.exp(-m / 3.0), 1)
                                                      + 1.0)
        maps[chip] = image
    return maps


def sink_mask(maps: dict[int, F32]) -> dict[int, npt.NDArray[np.bool_]]:
    """The sink pixels themselves (value < -1), per chip, in trimmed geometry."""
    out = {}
    for chip, image in maps.items():
        lay = chip_layout(chip)
        out[chip] = image[lay.image_rows, lay.image_cols] < -1.0
    return out


def write_snkcfile(path: Path, maps: dict[int, F32]) -> None:
    """Write the SNKCFILE of ``maps`` (raw geometry, LTV of the raw chips)."""
    write_image(path, maps, "SINK PIXELS", "UNITLESS", err=0.0, raw=True,
                descrip="owl simulator sink pixels")
