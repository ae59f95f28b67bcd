"""Full-well saturation flags from the SATUFILE image (hstcal's ``acsccd/dofwsat.c``).

hstcal compares each science pixel with the SATUFILE pixel under it and ORs DQ 256
(SATPIXEL) where the science value is higher. Which pixels it looks at depends on
``FindLine``'s verdict on the geometry:

- same size (same LTV corner and width, a full frame and a raw-geometry SATUFILE): the
  image area only, i.e. the trimmed size starting at the raw corner ``|LTV|``;
- otherwise (a subarray): the trimmed size starting at the science array's pixel (0, 0),
  against the SATUFILE from the LTV offset on. For a subarray whose prescan or virtual
  overscan comes first this includes overscan pixels and leaves the last image rows or
  columns unchecked; the mapping itself is consistent, and owl does the same.

A SATUFILE smaller than the science array (a trimmed map, which hstcal cannot use) is placed
by the difference of the LTV offsets over the whole science array.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib import kernels as K
from owl.calib.fitsio import Frame, Imset
from owl.calib.step import load_ref_imsets, ref_file
from owl.errors import CalibError


def satufile(primary: fits.Header, source: str) -> Frame | None:
    """The full-well image (SATUFILE), or None when the header names none."""
    name = str(primary.get("SATUFILE", "N/A")).strip()
    if name.upper() in ("", "N/A"):
        return None
    return load_ref_imsets(ref_file(primary, "SATUFILE", source))


def flag_full_well(imset: Imset, satu: Frame,
                   trim: tuple[tuple[int, int], tuple[int, int]]) -> None:
    """Flag pixels above the SATUFILE full well in place; ``trim`` is the OSCNTAB row's
    ((TRIMX1, TRIMX2), (TRIMY1, TRIMY2)), zeros without one."""
    ref = satu.imset(imset.chip)
    ny, nx = imset.sci.shape
    (tx0, tx1), (ty0, ty1) = trim
    xdim, ydim = nx - tx0 - tx1, ny - ty0 - ty1
    sci_ltv = (float(imset.sci_header.get("LTV1", 0)), float(imset.sci_header.get("LTV2", 0)))
    ref_ltv = (float(ref.sci_header.get("LTV1", 0)), float(ref.sci_header.get("LTV2", 0)))
    # hstcal's GetCorner: corner = -LTV (unbinned), rounded to the nearest integer.
    sci_corner = tuple(_nint(-v) for v in sci_ltv)
    ref_corner = tuple(_nint(-v) for v in ref_ltv)
    if sci_corner == ref_corner and nx == ref.sci.shape[1]:
        x0, y0 = abs(sci_corner[0]), abs(sci_corner[1])
        _flag_box(imset, ref, (y0, x0), (y0, x0), (min(ydim, ny - y0), min(xdim, nx - x0)))
        return
    rx0, ry0 = sci_corner[0] - ref_corner[0], sci_corner[1] - ref_corner[1]
    ry, rx = ref.sci.shape
    if rx0 >= 0 and ry0 >= 0 and ry0 + ydim <= ry and rx0 + xdim <= rx:
        _flag_box(imset, ref, (0, 0), (ry0, rx0), (ydim, xdim))
        return
    x0 = round(sci_ltv[0] - ref_ltv[0])
    y0 = round(sci_ltv[1] - ref_ltv[1])
    try:
        K.flag_above(imset.sci, imset.dq, np.ascontiguousarray(ref.sci, dtype=np.float32),
                     x0, y0)
    except ValueError as exc:
        raise CalibError(f"SATUFILE {satu.path}: chip {imset.chip}: {exc}") from None


def _nint(x: float) -> int:
    return int(x + 0.5) if x >= 0 else int(x - 0.5)


def _flag_box(imset: Imset, ref: Imset, at: tuple[int, int], ref_at: tuple[int, int],
              size: tuple[int, int]) -> None:
    box = (slice(at[0], at[0] + size[0]), slice(at[1], at[1] + size[1]))
    rbox = (slice(ref_at[0], ref_at[0] + size[0]), slice(ref_at[1], ref_at[1] + size[1]))
    # views, no copies: the kernel takes strided arrays and writes DQ in place
    K.flag_above(imset.sci[box], imset.dq[box], np.asarray(ref.sci[rbox], dtype=np.float32),
                 0, 0)
