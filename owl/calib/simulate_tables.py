"""Reference *tables* of the simulator, in the column layouts hstcal's readers expect.

- CCDTAB (``GetCCDTab``): CCDAMP, CCDCHIP, CCDGAIN, BINAXIS1/2, CCDOFSTA-D, CCDBIASA-D,
  ATODGNA-D, READNSEA-D, AMPX, AMPY, ATODSAT, SATURATE, OVRHFLS, OVRHUFLS, PEDIGREE, DESCRIP.
- OSCNTAB (``findover.c``): CCDAMP, CCDCHIP, BINX, BINY, NX, NY, TRIMX1/2, TRIMY1/2,
  VX1/2, VY1/2, BIASSECTA1/2, BIASSECTB1/2 (1-based raw pixels).
- BPIXTAB (``dodqi.c``): CCDCHIP, CCDAMP, CCDGAIN, PIX1, PIX2, LENGTH, AXIS, VALUE
  (1-based trimmed pixels; CCDGAIN -999 and CCDAMP 'N/A' match anything).
- CRREJTAB (``acsrej/readpar.c``): CRSPLIT, MEANEXP, CRSIGMAS, CRRADIUS, CRTHRESH,
  INITGUES, SCALENSE, SKYSUB, BADINPDQ, CRMASK.
- IMPHTTAB (hstcal ``getphttab.c``): primary PHOTZPT, NEXTEND and PARNUM (parameterised
  variables per obsmode, 1 here: ``mjd#``), one table per keyword
  (EXTNAME PHOTFLAM, PHOTPLAM, PHOTBW) with OBSMODE, DATACOL, the value column, and for
  ``mjd#`` obsmodes NELEM1, PAR1NAMES, PAR1VALUES and the ``<keyword>1`` array column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

from owl.calib.wfc_layout import AMP_WIDTH, PRESCAN, RAW_SHAPE, TRIM_SHAPE, chip_layout

AMPS = "ABCD"
PEDIGREE = "MODEL 01/01/2026"
USEAFTER = "Mar 01 2002 00:00:00"
BAD_PIXEL = 4
"""DQ value of a bad detector pixel (ACS DQ bit 4)."""
PHOTZPT = -21.1
FILTERS = ("F435W", "F606W", "F814W")
# (PHOTFLAM for WFC1, PHOTPLAM, PHOTBW) per filter: ACS-like magnitudes, invented values.
_PHOT = {"F435W": (3.14e-19, 4329.2, 293.5), "F606W": (7.86e-20, 5921.9, 672.3),
         "F814W": (7.07e-20, 8045.0, 654.7)}
OVERHEAD_FLASHED = 22.0
OVERHEAD_UNFLASHED = 10.0
"""CCDTAB OVRHFLS/OVRHUFLS: seconds of dark time the header's DARKTIME leaves out."""
VX_MARGIN = 20
"""Columns of the left amp's image area kept out of the OSCNTAB virtual-overscan box."""
_MJD_GRID = np.array([52334.0, 54000.0, 56000.0, 58000.0, 60000.0, 62000.0])


@dataclass(frozen=True)
class DetectorModel:
    """Per-amplifier CCD properties (ABCD order) written to the CCDTAB and used to simulate.

    Attributes
    ----------
    gain : tuple of float
        ATODGNA-D, e-/DN at CCDGAIN=2.
    readnoise : tuple of float
        READNSEA-D, electrons.
    bias : tuple of float
        CCDBIASA-D, DN: the nominal bias level.
    full_well : float
        SATURATE, electrons.
    offset : int
        Commanded bias offset CCDOFSTA-D of the exposures.
    """

    gain: tuple[float, float, float, float] = (2.02, 1.886, 2.017, 2.011)
    readnoise: tuple[float, float, float, float] = (4.35, 3.75, 4.05, 4.6)
    bias: tuple[float, float, float, float] = (2213.0, 2404.0, 2161.0, 2346.0)
    full_well: float = 84700.0
    offset: int = 3

    def amp(self, letter: str) -> tuple[float, float, float]:
        """(gain, read noise, bias) of amplifier ``letter``."""
        i = AMPS.index(letter)
        return self.gain[i], self.readnoise[i], self.bias[i]


def ref_primary(filetype: str, descrip: str, **extra: Any) -> Any:
    """Primary header shared by all simulated reference files."""
    header = fits.Header()
    header["INSTRUME"] = ("ACS", "identifier for instrument used to acquire data")
    header["DETECTOR"] = ("WFC", "detector in use: WFC, HRC, or SBC")
    header["FILETYPE"] = (filetype, "type of data found in data file")
    header["USEAFTER"] = (USEAFTER, "use after this date")
    header["PEDIGREE"] = (PEDIGREE, "synthetic, made by owl.calib.simulate")
    header["DESCRIP"] = (descrip[:67], "description of the file")
    for key, value in extra.items():
        header[key] = value
    return header


def _write_table(path: Path, primary: Any, columns: list[Any], **header: Any) -> None:
    table = fits.BinTableHDU.from_columns(columns)
    for key, value in header.items():
        table.header[key] = value
    fits.HDUList([fits.PrimaryHDU(header=primary), table]).writeto(path, overwrite=True)


def write_ccdtab(path: Path, params: DetectorModel, *, single_amps: bool = False) -> None:
    """Write a CCDTAB: rows for both chips at CCDGAIN 2 (the simulated one) and 1.

    With ``single_amps``, also one row per one-amp readout (CCDAMP A, B, C or D, the
    subarrays) at each gain. hstcal's ``get_nsegn`` gives a chip's pixels left of AMPX the
    left amp's gain and the rest the right amp's, so those rows have AMPX 4096 for A and C
    (clipped to the image width) and 0 for B and D.
    """
    rows = []
    for gain_setting, scale in ((2.0, 1.0), (1.0, 0.5)):
        for chip in (1, 2):
            rows.append(("ABCD", chip, gain_setting, tuple(g * scale for g in params.gain),
                         TRIM_SHAPE[1] // 2))
        if single_amps:
            for amp in AMPS:
                rows.append((amp, 1 if amp in "AB" else 2, gain_setting,
                             tuple(g * scale for g in params.gain),
                             TRIM_SHAPE[1] if amp in "AC" else 0))
    n = len(rows)

    def col(name: str, fmt: str, values: Any) -> Any:
        return fits.Column(name=name, format=fmt, array=np.asarray(values))

    columns = [
        col("CCDAMP", "4A", [r[0] for r in rows]),
        col("CCDCHIP", "J", [r[1] for r in rows]),
        col("CCDGAIN", "E", [r[2] for r in rows]),
        col("BINAXIS1", "J", [1] * n),
        col("BINAXIS2", "J", [1] * n),
        *[col(f"CCDOFST{a}", "J", [params.offset] * n) for a in AMPS],
        *[col(f"CCDBIAS{a}", "E", [params.bias[i]] * n) for i, a in enumerate(AMPS)],
        *[col(f"ATODGN{a}", "E", [r[3][i] for r in rows]) for i, a in enumerate(AMPS)],
        *[col(f"READNSE{a}", "E", [params.readnoise[i]] * n) for i, a in enumerate(AMPS)],
        col("AMPX", "J", [r[4] for r in rows]),
        col("AMPY", "J", [0] * n),
        col("ATODSAT", "J", [65535] * n),
        col("SATURATE", "E", [params.full_well] * n),
        col("OVRHFLS", "E", [OVERHEAD_FLASHED] * n),
        col("OVRHUFLS", "E", [OVERHEAD_UNFLASHED] * n),
        col("PEDIGREE", "24A", [PEDIGREE] * n),
        col("DESCRIP", "40A", ["owl simulator CCD parameters"] * n),
    ]
    _write_table(path, ref_primary("CCD PARAMETERS", "owl simulator CCD parameters"), columns)


def write_oscntab(path: Path, extra: Sequence[list[int | str]] = ()) -> None:
    """Write an OSCNTAB describing the raw WFC layout of :mod:`owl.calib.wfc_layout`.

    ``extra`` rows (e.g. :meth:`owl.calib.subarray.Subarray.oscntab_row`) are appended.
    """
    names = ["CCDAMP", "CCDCHIP", "BINX", "BINY", "NX", "NY", "TRIMX1", "TRIMX2", "TRIMY1",
             "TRIMY2", "VX1", "VX2", "VY1", "VY2", "BIASSECTA1", "BIASSECTA2", "BIASSECTB1",
             "BIASSECTB2"]
    rows = []
    for chip in (1, 2):
        lay = chip_layout(chip)
        trimy1 = lay.image_rows.start
        trimy2 = RAW_SHAPE[0] - lay.image_rows.stop
        vy1, vy2 = lay.overscan_rows.start + 1, lay.overscan_rows.stop
        # Leading/trailing bias sections: the prescan minus 2 columns at each end.
        # The virtual-overscan box lies under the left amp only (hstcal fits one drift
        # line through it for the whole chip; across the amps the level steps).
        rows.append(["ABCD", chip, 1, 1, RAW_SHAPE[1], RAW_SHAPE[0], PRESCAN, PRESCAN,
                     trimy1, trimy2, PRESCAN + 1 + VX_MARGIN, PRESCAN + AMP_WIDTH - VX_MARGIN,
                     vy1, vy2,
                     3, PRESCAN - 2, RAW_SHAPE[1] - PRESCAN + 3, RAW_SHAPE[1] - 2])
    rows += [list(r) for r in extra]
    columns = [fits.Column(name="CCDAMP", format="4A", array=np.array([r[0] for r in rows]))]
    columns += [fits.Column(name=name, format="J", array=np.array([r[i] for r in rows]))
                for i, name in enumerate(names) if i > 0]
    _write_table(path, ref_primary("OVERSCAN REGIONS", "owl simulator overscan regions"),
                 columns)


def write_bpixtab(path: Path, rng: np.random.Generator) -> dict[int, npt.NDArray[np.bool_]]:
    """Write a BPIXTAB of bad columns (whole and partial) and single bad pixels.

    Returns
    -------
    dict
        CCDCHIP -> trimmed boolean mask of the pixels the table flags.
    """
    rows: list[tuple[int, int, int, int, int]] = []
    masks = {}
    for chip in (1, 2):
        mask = np.zeros(TRIM_SHAPE, dtype=bool)
        for _ in range(8):
            x = int(rng.integers(0, TRIM_SHAPE[1]))
            y0 = int(rng.integers(0, TRIM_SHAPE[0] // 2)) if rng.random() < 0.5 else 0
            length = TRIM_SHAPE[0] - y0
            rows.append((chip, x + 1, y0 + 1, length, 2))
            mask[y0:y0 + length, x] = True
        for _ in range(40):
            x, y = int(rng.integers(0, TRIM_SHAPE[1])), int(rng.integers(0, TRIM_SHAPE[0]))
            rows.append((chip, x + 1, y + 1, 1, 1))
            mask[y, x] = True
        masks[chip] = mask
    arr = np.array(rows)
    n = len(rows)
    columns = [
        fits.Column(name="CCDCHIP", format="J", array=arr[:, 0]),
        fits.Column(name="CCDAMP", format="4A", array=np.array(["N/A"] * n)),
        fits.Column(name="CCDGAIN", format="E", array=np.full(n, -999.0)),
        fits.Column(name="PIX1", format="J", array=arr[:, 1]),
        fits.Column(name="PIX2", format="J", array=arr[:, 2]),
        fits.Column(name="LENGTH", format="J", array=arr[:, 3]),
        fits.Column(name="AXIS", format="J", array=arr[:, 4]),
        fits.Column(name="VALUE", format="I", array=np.full(n, BAD_PIXEL)),
    ]
    _write_table(path, ref_primary("BAD PIXELS", "owl simulator bad pixels"), columns,
                 SIZAXIS1=TRIM_SHAPE[1], SIZAXIS2=TRIM_SHAPE[0])
    return masks


def write_crrejtab(path: Path) -> None:
    """Write a CRREJTAB: one row per CRSPLIT 1-4 for short (<= 200 s) and long exposures.

    Sets of one or two exposures start from the minimum: with two images the median is the
    mean of the hit and the clean value, so a cosmic ray would stand out by only half its
    charge and the SCALENSE term would hide it.
    """
    rows = [(split, meanexp, sigmas)
            for split in (1, 2, 3, 4)
            for meanexp, sigmas in ((200.0, "6.5,5.5,4.5"), (1.0e5, "6.5,5.5,4.5"))]
    n = len(rows)
    columns = [
        fits.Column(name="CRSPLIT", format="J", array=np.array([r[0] for r in rows])),
        fits.Column(name="MEANEXP", format="E", array=np.array([r[1] for r in rows])),
        fits.Column(name="CRSIGMAS", format="15A", array=np.array([r[2] for r in rows])),
        fits.Column(name="CRRADIUS", format="E", array=np.full(n, 2.1)),
        fits.Column(name="CRTHRESH", format="E", array=np.full(n, 0.5555)),
        fits.Column(name="INITGUES", format="3A",
                    array=np.array(["min" if r[0] <= 2 else "med" for r in rows])),
        fits.Column(name="SCALENSE", format="E", array=np.full(n, 30.0)),
        fits.Column(name="SKYSUB", format="4A", array=np.array(["mode"] * n)),
        fits.Column(name="BADINPDQ", format="I", array=np.zeros(n, dtype=np.int16)),
        fits.Column(name="CRMASK", format="J", array=np.ones(n, dtype=np.int32)),
    ]
    _write_table(path, ref_primary("COSMIC RAY REJECTION TABLE", "owl simulator CR rejection"),
                 columns)


def photometry(filt: str, chip: int, mjd: float | None = None) -> tuple[float, float, float]:
    """The (PHOTFLAM, PHOTPLAM, PHOTBW) the IMPHTTAB gives for ``filt`` on WFC ``chip``.

    With ``mjd``, PHOTFLAM follows the table's MJD grid (sensitivity loss of 0.1 % a year,
    linearly interpolated), as an ``mjd#`` obsmode would.
    """
    flam, plam, bw = _PHOT[filt]
    flam *= 1.0 if chip == 1 else 1.012
    if mjd is not None:
        flam = float(np.interp(mjd, _MJD_GRID, flam * _decline(_MJD_GRID)))
    return flam, plam, bw


def _decline(mjd: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = 1.0 + 0.001 * (mjd - _MJD_GRID[0]) / 365.25
    return result


def write_imphttab(path: Path) -> None:
    """Write an IMPHTTAB with plain and ``mjd#`` obsmodes for WFC1/2 and three filters."""
    primary = ref_primary("PHOTOMETRY PARAMETERS", "owl simulator photometry", NEXTEND=3,
                          PHOTZPT=PHOTZPT, PARNUM=1)
    modes = [(f"acs,wfc{chip},{f.lower()}", chip, f) for f in FILTERS for chip in (1, 2)]
    hdus = [fits.PrimaryHDU(header=primary)]
    nmjd = _MJD_GRID.size
    for index, key in enumerate(("PHOTFLAM", "PHOTPLAM", "PHOTBW")):
        obsmode, datacol, value, nelem, parnames = [], [], [], [], []
        parvalues, values1 = [], []
        for mode, chip, filt in modes:
            base = photometry(filt, chip)[index]
            series = (base * _decline(_MJD_GRID) if key == "PHOTFLAM"
                      else np.full(nmjd, base))
            obsmode += [mode, mode + ",mjd#"]
            datacol += [key, key + "1"]
            value += [base, 0.0]
            nelem += [0, nmjd]
            parnames += ["", "MJD#"]
            parvalues += [np.zeros(nmjd), _MJD_GRID]
            values1 += [np.zeros(nmjd), series]
        table = fits.BinTableHDU.from_columns([
            fits.Column(name="OBSMODE", format="40A", array=np.array(obsmode)),
            fits.Column(name="DATACOL", format="12A", array=np.array(datacol)),
            fits.Column(name=key, format="D", array=np.array(value)),
            fits.Column(name="NELEM1", format="J", array=np.array(nelem)),
            fits.Column(name="PAR1NAMES", format="8A", array=np.array(parnames)),
            fits.Column(name="PAR1VALUES", format=f"{nmjd}D", array=np.array(parvalues)),
            fits.Column(name=key + "1", format=f"{nmjd}D", array=np.array(values1)),
        ])
        table.header["EXTNAME"] = key
        hdus.append(table)
    fits.HDUList(hdus).writeto(path, overwrite=True)
