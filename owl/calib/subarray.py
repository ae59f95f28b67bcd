"""Geometry of the supported ACS/WFC subarray apertures (``WFC1A-2K`` ... ``WFC2D-512``).

Each supported subarray is read through one amplifier and sits at that amp's corner of the
chip: ``n`` x ``n`` image pixels (n = 2048, 1024 or 512) nearest the amp, plus the amp's 24
physical prescan columns; the ``-2K`` apertures also carry the 20 virtual-overscan rows (the
others have none, which is why hstcal runs its bias-shift correction on ``-2K`` data only).

A raw subarray is therefore a cut of the raw full chip (see :mod:`owl.calib.wfc_layout`):
amps A and C (left) keep raw columns 0 .. 24+n-1, amps B and D (right) the last 24+n
columns; chip 1 (A, B, read out through its top row) keeps the top n rows (plus the 20
virtual rows 0-19 for ``-2K``), chip 2 the bottom n rows (plus rows 2048-2067 for ``-2K``).
LTV1/LTV2 of the raw subarray are the full chip's minus the cut's origin, so reference files
in full-frame geometry are cut to it by the LTV difference, as hstcal's ``FindLine`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from owl.calib.wfc_layout import AMP_CHIP, PRESCAN, RAW_SHAPE, TRIM_SHAPE, VIRTUAL_ROWS, chip_layout

SIZES = {"2K": 2048, "1K": 1024, "512": 512}
#: The supported corner subarrays: aperture name -> (amp, size).
APERTURES = {f"WFC{AMP_CHIP[a]}{a}-{s}": (a, n) for a in "ABCD" for s, n in SIZES.items()}


@dataclass(frozen=True)
class Subarray:
    """Where one subarray aperture lies on its raw chip.

    Attributes
    ----------
    aperture : str
        APERTURE keyword, e.g. ``WFC1A-1K``.
    amp : str
        CCDAMP (one letter).
    size : int
        Image rows and columns.
    """

    aperture: str
    amp: str
    size: int

    @property
    def chip(self) -> int:
        """CCDCHIP of the aperture."""
        return AMP_CHIP[self.amp]

    @property
    def virtual(self) -> bool:
        """True when the raw subarray has the 20 virtual-overscan rows (``-2K`` only)."""
        return self.size == TRIM_SHAPE[0]

    @property
    def left(self) -> bool:
        """True for amps A and C (prescan at the left, image from trimmed column 0)."""
        return self.amp in "AC"

    @property
    def raw_shape(self) -> tuple[int, int]:
        """(rows, columns) of the raw subarray."""
        return self.size + (VIRTUAL_ROWS if self.virtual else 0), self.size + PRESCAN

    def raw_box(self) -> tuple[slice, slice]:
        """The (rows, columns) of the raw full chip that make the raw subarray."""
        ny, nx = self.raw_shape
        cols = slice(0, nx) if self.left else slice(RAW_SHAPE[1] - nx, RAW_SHAPE[1])
        rows = slice(RAW_SHAPE[0] - ny, RAW_SHAPE[0]) if self.chip == 1 else slice(0, ny)
        return rows, cols

    def trimmed_box(self) -> tuple[slice, slice]:
        """The (rows, columns) of the trimmed full chip under the subarray's image area."""
        n = self.size
        cols = slice(0, n) if self.left else slice(TRIM_SHAPE[1] - n, TRIM_SHAPE[1])
        rows = slice(TRIM_SHAPE[0] - n, TRIM_SHAPE[0]) if self.chip == 1 else slice(0, n)
        return rows, cols

    @property
    def ltv(self) -> tuple[float, float]:
        """(LTV1, LTV2) of the raw subarray."""
        lay = chip_layout(self.chip)
        rows, cols = self.raw_box()
        return float(lay.ltv1 - cols.start), float(lay.ltv2 - rows.start)

    def oscntab_row(self) -> list[int | str]:
        """The OSCNTAB row (hstcal's columns and 1-based conventions) of this aperture."""
        ny, nx = self.raw_shape
        trimx = (PRESCAN, 0) if self.left else (0, PRESCAN)
        trimy = (0, 0)
        vx = vy = (0, 0)
        if self.virtual:
            trimy = (VIRTUAL_ROWS, 0) if self.chip == 1 else (0, VIRTUAL_ROWS)
            first = trimx[0] + 1 + 20
            vx = (first, first + self.size - 41)
            vy = (1, VIRTUAL_ROWS) if self.chip == 1 else (ny - VIRTUAL_ROWS + 1, ny)
        # One bias section, the prescan minus 2 columns at each end, in BIASSECTA: hstcal's
        # doBlev reads an empty BIASSECTA as -1 (not 0) and would take it over BIASSECTB.
        a = (3, PRESCAN - 2) if self.left else (nx - PRESCAN + 3, nx - 2)
        return [self.amp, self.chip, 1, 1, nx, ny, trimx[0], trimx[1], trimy[0], trimy[1],
                vx[0], vx[1], vy[0], vy[1], a[0], a[1], 0, 0]


def subarray(aperture: str) -> Subarray:
    """The :class:`Subarray` of a supported aperture name.

    Raises
    ------
    ValueError
        For an aperture that is not one of :data:`APERTURES`.
    """
    name = aperture.strip().upper()
    if name not in APERTURES:
        raise ValueError(f"subarray aperture {aperture!r} is not one of "
                         f"{', '.join(sorted(APERTURES))}")
    amp, size = APERTURES[name]
    return Subarray(name, amp, size)
