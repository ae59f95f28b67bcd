"""The reference files of a simulated ACS/WFC data set, written where ``jref$`` points.

Images (SCI/ERR/DQ per chip, written with :func:`owl.calib.fitsio.write_frame`):

- BIASFILE: raw geometry (2068 x 4144 per chip, overscan included), DN (BUNIT COUNTS): the
  two-dimensional bias *structure* (column pattern, fixed pattern, a ramp near the readout
  rows); the per-amp bias *level* is left for BLEVCORR to take from the overscan.
- DARKFILE: trimmed (2048 x 4096), electrons per second: a base rate and hot pixels.
- PFLTFILE: trimmed, unitless, mean 1: low-order shape, pixel-to-pixel grain, dust motes.
- SATUFILE: raw geometry (2068 x 4144 per chip, LTV1/LTV2 of the raw chip, as real SATUFILEs
  and hstcal's ``doFullWellSat`` want them), electrons: full well per pixel of the image area
  (the simulator bleeds charge above it); the overscan holds the nominal full well.

Tables come from :mod:`owl.calib.simulate_tables`. ERR and DQ of the images are uniform, so
they are stored as constant extensions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

from owl.calib import simulate_tables as tables
from owl.calib.fitsio import Frame, Imset, write_frame
from owl.calib.subarray import APERTURES, subarray
from owl.calib.wfc_layout import CHIP_EXTVER, RAW_SHAPE, TRIM_SHAPE, chip_layout

F32 = npt.NDArray[np.float32]

REF_NAMES = {
    "BPIXTAB": "owlsim_bpx.fits",
    "CCDTAB": "owlsim_ccd.fits",
    "OSCNTAB": "owlsim_osc.fits",
    "BIASFILE": "owlsim_bia.fits",
    "DARKFILE": "owlsim_drk.fits",
    "SATUFILE": "owlsim_sat.fits",
    "CRREJTAB": "owlsim_crr.fits",
    "IMPHTTAB": "owlsim_imp.fits",
}
"""Header keyword -> file name of every reference file but the flats (see :func:`flat_name`)."""


def flat_name(filt: str) -> str:
    """File name of the simulated PFLTFILE for filter ``filt`` (e.g. ``owlsim_f606w_pfl``)."""
    return f"owlsim_{filt.lower()}_pfl.fits"


@dataclass(frozen=True)
class ReferenceSet:
    """The reference files written for a data set and the arrays behind them.

    Attributes
    ----------
    directory : pathlib.Path
        Where the files are (the ``jref`` directory).
    names : dict
        Header keyword (BIASFILE, ...) -> file name inside ``directory``.
    detector : DetectorModel
        Gains, read noise, bias levels and full well written to the CCDTAB.
    bias, dark, full_well, bad : dict
        CCDCHIP -> array: bias structure (raw shape, DN), dark rate (e-/s), full well (e-)
        and the BPIXTAB mask (trimmed shape).
    flats : dict
        Filter -> CCDCHIP -> pixel flat (trimmed shape).
    """

    directory: Path
    names: dict[str, str]
    detector: tables.DetectorModel
    bias: dict[int, F32] = field(repr=False)
    dark: dict[int, F32] = field(repr=False)
    flats: dict[str, dict[int, F32]] = field(repr=False)
    full_well: dict[int, F32] = field(repr=False)
    bad: dict[int, npt.NDArray[np.bool_]] = field(repr=False)

    def header_values(self, filt: str) -> dict[str, str]:
        """Reference keywords of an exposure in filter ``filt`` (values ``jref$name``)."""
        values = {key: f"jref${name}" for key, name in self.names.items()}
        values["PFLTFILE"] = f"jref${flat_name(filt)}"
        return values


def write_reference_set(
    directory: Path, rng: np.random.Generator, *, filters: tuple[str, ...] = ("F606W",),
    detector: tables.DetectorModel | None = None, subarrays: bool = False,
) -> ReferenceSet:
    """Write every reference file into ``directory`` and return what they contain.

    Parameters
    ----------
    directory : pathlib.Path
        Destination (created if missing); existing files of the same names are replaced.
    rng : numpy.random.Generator
        Random source of the bias, dark, flat, full-well and bad-pixel patterns.
    filters : tuple of str
        Filters to write a PFLTFILE for (F435W, F606W, F814W).
    detector : DetectorModel, optional
        CCD properties (default: :class:`owl.calib.simulate_tables.DetectorModel`).
    subarrays : bool
        Add the CCDTAB rows of one-amp readouts and the OSCNTAB rows of the supported
        subarray apertures (:mod:`owl.calib.subarray`); off, the tables are the full-frame
        ones.

    Returns
    -------
    ReferenceSet
    """
    directory.mkdir(parents=True, exist_ok=True)
    model = detector or tables.DetectorModel()
    names = dict(REF_NAMES)
    tables.write_ccdtab(directory / names["CCDTAB"], model, single_amps=subarrays)
    tables.write_oscntab(directory / names["OSCNTAB"],
                         [subarray(a).oscntab_row() for a in sorted(APERTURES)] if subarrays
                         else [])
    bad = tables.write_bpixtab(directory / names["BPIXTAB"], rng)
    tables.write_crrejtab(directory / names["CRREJTAB"])
    tables.write_imphttab(directory / names["IMPHTTAB"])

    bias = {chip: _bias_structure(rng, chip) for chip in (1, 2)}
    write_image(directory / names["BIASFILE"], bias, "BIAS", "COUNTS", err=0.3, raw=True,
                 descrip="owl simulator superbias structure (DN)")
    dark = {chip: _dark_rate(rng) for chip in (1, 2)}
    write_image(directory / names["DARKFILE"], dark, "DARK", "ELECTRONS/S", err=0.0005,
                 descrip="owl simulator superdark (e-/s)")
    well = {chip: _full_well(rng, model.full_well) for chip in (1, 2)}
    write_image(directory / names["SATUFILE"],
                 {chip: _to_raw_geometry(w, chip, model.full_well) for chip, w in well.items()},
                 "FULL WELL SATURATION", "ELECTRONS", err=0.0, raw=True,
                 descrip="owl simulator full-well map (e-)")
    flats = {}
    for filt in filters:
        flats[filt] = _flat(rng)
        write_image(directory / flat_name(filt), flats[filt], "PIXEL-TO-PIXEL FLAT", "UNITLESS",
                     err=0.002, descrip=f"owl simulator {filt} pixel flat",
                     FILTER1=filt, FILTER2="CLEAR2L")
    return ReferenceSet(directory=directory, names=names, detector=model, bias=bias,
                        dark=dark, flats=flats, full_well=well, bad=bad)


def write_image(path: Path, arrays: dict[int, F32], filetype: str, bunit: str, *,
                 err: float, descrip: str, raw: bool = False, **extra: Any) -> None:
    """Write a two-chip reference image (``raw``: LTV1/LTV2 of the raw chips, else 0)."""
    primary = tables.ref_primary(filetype, descrip, CCDAMP="ABCD", CCDGAIN=2.0, BINAXIS1=1,
                                 BINAXIS2=1, **extra)
    imsets = []
    for chip in (2, 1):
        header = fits.Header()
        header["CCDCHIP"] = (chip, "CCD chip (1 or 2)")
        header["BUNIT"] = (bunit, "brightness units")
        header["LTV1"] = (float(chip_layout(chip).ltv1 if raw else 0), "offset in X")
        header["LTV2"] = (float(chip_layout(chip).ltv2 if raw else 0), "offset in Y")
        header["LTM1_1"] = (1.0, "reciprocal of sampling rate in X")
        header["LTM2_2"] = (1.0, "reciprocal of sampling rate in Y")
        sci = arrays[chip]
        imsets.append(Imset(sci=sci, err=np.full(sci.shape, err, np.float32),
                            dq=np.zeros(sci.shape, np.int16), sci_header=header,
                            err_header=header.copy(), dq_header=header.copy(),
                            extver=CHIP_EXTVER[chip]))
    write_frame(Frame(primary=primary, imsets=imsets, path=None), path, overwrite=True)


def _to_raw_geometry(image: F32, chip: int, fill: float) -> F32:
    """A trimmed chip image placed in the raw chip layout, ``fill`` in the overscan."""
    lay = chip_layout(chip)
    raw = np.full(RAW_SHAPE, fill, np.float32)
    raw[lay.image_rows, lay.image_cols] = image
    return raw


def _bias_structure(rng: np.random.Generator, chip: int) -> F32:
    """Bias structure in DN: column pattern, fixed pattern and a ramp near the amps."""
    columns = rng.normal(0.0, 0.8, RAW_SHAPE[1]).astype(np.float32)
    image = rng.normal(0.0, 0.4, RAW_SHAPE).astype(np.float32) + columns[None, :]
    rows = np.arange(RAW_SHAPE[0], dtype=np.float32)
    from_amp = rows if chip == 2 else rows[::-1]
    image += (3.0 * np.exp(-from_amp / 50.0))[:, None]
    return image


def _dark_rate(rng: np.random.Generator) -> F32:
    """Dark current in e-/s: 0.006 e-/s base plus 0.3 % hot pixels (0.02..5 e-/s)."""
    rate = np.full(TRIM_SHAPE, 0.006, np.float32)
    rate += rng.normal(0.0, 0.0005, TRIM_SHAPE).astype(np.float32)
    hot = rng.random(TRIM_SHAPE) < 0.003
    rate[hot] += np.clip(rng.lognormal(np.log(0.05), 1.2, int(hot.sum())), 0.02, 5.0)
    return rate


def _full_well(rng: np.random.Generator, nominal: float) -> F32:
    """Full well in electrons: the CCDTAB value with a 1 % column-to-column spread."""
    per_column = nominal * (1.0 + rng.normal(0.0, 0.01, TRIM_SHAPE[1]))
    return np.broadcast_to(per_column, TRIM_SHAPE).astype(np.float32)


def _flat(rng: np.random.Generator) -> dict[int, F32]:
    """Pixel flats for both chips with a common mean of 1."""
    yy, xx = np.mgrid[0:TRIM_SHAPE[0], 0:TRIM_SHAPE[1]].astype(np.float32)
    u, v = xx / TRIM_SHAPE[1] - 0.5, yy / TRIM_SHAPE[0] - 0.5
    flats = {}
    for chip in (1, 2):
        a, b, c = rng.normal(0.0, 0.02, 3)
        flat = 1.0 + a * u + b * v + c * (u * u + v * v)
        flat += rng.normal(0.0, 0.007, TRIM_SHAPE)
        for _ in range(6):
            x0, y0 = rng.uniform(100, TRIM_SHAPE[1] - 100), rng.uniform(100, TRIM_SHAPE[0] - 100)
            box = (slice(int(y0) - 40, int(y0) + 40), slice(int(x0) - 40, int(x0) + 40))
            r = np.hypot(xx[box] - x0, yy[box] - y0)
            flat[box] -= 0.04 * np.exp(-0.5 * ((r - 20.0) / 4.0) ** 2)
        flats[chip] = flat.astype(np.float32)
    mean = np.mean([f.mean(dtype=np.float64) for f in flats.values()])
    return {chip: (f / mean).astype(np.float32) for chip, f in flats.items()}
