"""Geometry of ACS/WFC frames: raw and trimmed shapes, overscan, amplifier quadrants.

All positions are numpy ``[row, col]`` of one chip (one imset), 0-based.

Raw chip, shape (2068, 4144): 24 physical prescan columns at each outer edge (0-23 for the
left amp, 4120-4143 for the right amp) and 20 virtual-overscan rows at the end of the
readout, i.e. on the side of the chip *away* from its amplifiers. WFC2 (CCDCHIP=2, EXTVER 1)
reads amps C (left) and D (right) through row 0, so its virtual overscan is rows 2048-2067;
WFC1 (CCDCHIP=1, EXTVER 2) reads amps A (left) and B (right) through its top row, so its
virtual overscan is rows 0-19. This is hstcal's layout: ``blev_funcs_postsm4.c`` turns each
amp so that it sits at row 0 and then finds the 20 overscan rows at the end (rows 2048-2067
of the 2068 x 2072 amp array) and the 24 prescan columns at its start.

Trimmed chip, shape (2048, 4096): the raw image area; LTV1 = 24 and LTV2 = 20 (WFC1) or
0 (WFC2) map trimmed (reference) pixels to raw ones.
"""

from __future__ import annotations

from dataclasses import dataclass

RAW_SHAPE = (2068, 4144)
TRIM_SHAPE = (2048, 4096)
PRESCAN = 24
VIRTUAL_ROWS = 20
AMP_WIDTH = 2048
CHIP_AMPS = {1: "AB", 2: "CD"}
"""Amplifiers of each chip, left (trimmed columns 0-2047) then right (2048-4095)."""
CHIP_EXTVER = {2: 1, 1: 2}
"""EXTVER of each CCDCHIP in a WFC frame."""
AMP_CHIP = {"A": 1, "B": 1, "C": 2, "D": 2}


@dataclass(frozen=True)
class ChipLayout:
    """Where the image area and the overscan of one raw chip lie.

    Attributes
    ----------
    chip : int
        CCDCHIP (1 or 2).
    image_rows : slice
        Rows of the raw chip that hold the image area.
    overscan_rows : slice
        The 20 virtual-overscan rows of the raw chip.
    ltv2 : int
        LTV2 of the raw chip (trimmed row 0 is raw row ``ltv2``).
    """

    chip: int
    image_rows: slice
    overscan_rows: slice
    ltv2: int

    @property
    def image_cols(self) -> slice:
        """Columns of the raw chip that hold the image area."""
        return slice(PRESCAN, PRESCAN + 2 * AMP_WIDTH)

    @property
    def ltv1(self) -> int:
        """LTV1 of the raw chip (trimmed column 0 is raw column ``ltv1``)."""
        return PRESCAN

    def amp_cols_raw(self, amp: str) -> slice:
        """Raw columns read through ``amp``: its prescan plus its half of the image."""
        if CHIP_AMPS[self.chip].index(amp) == 0:
            return slice(0, PRESCAN + AMP_WIDTH)
        return slice(PRESCAN + AMP_WIDTH, RAW_SHAPE[1])

    def prescan_cols(self, amp: str) -> slice:
        """The 24 physical prescan columns of ``amp`` in the raw chip."""
        if CHIP_AMPS[self.chip].index(amp) == 0:
            return slice(0, PRESCAN)
        return slice(RAW_SHAPE[1] - PRESCAN, RAW_SHAPE[1])


def chip_layout(chip: int) -> ChipLayout:
    """Layout of raw WFC chip ``chip`` (CCDCHIP 1 or 2).

    Raises
    ------
    ValueError
        For a chip other than 1 or 2.
    """
    if chip == 2:
        return ChipLayout(chip=2, image_rows=slice(0, TRIM_SHAPE[0]),
                          overscan_rows=slice(TRIM_SHAPE[0], RAW_SHAPE[0]), ltv2=0)
    if chip == 1:
        return ChipLayout(chip=1, image_rows=slice(VIRTUAL_ROWS, RAW_SHAPE[0]),
                          overscan_rows=slice(0, VIRTUAL_ROWS), ltv2=VIRTUAL_ROWS)
    raise ValueError(f"WFC chip must be 1 or 2, not {chip}")


def amp_cols_trimmed(chip: int, amp: str) -> slice:
    """Trimmed columns of ``amp`` on ``chip`` (left amp 0-2047, right amp 2048-4095)."""
    index = CHIP_AMPS[chip].index(amp)
    return slice(index * AMP_WIDTH, (index + 1) * AMP_WIDTH)
