"""Optional ACS2D reference files of a simulated set: shading, delta and low-order flats,
post-flash, and a CTE-corrected dark, in the formats hstcal's ``acs2d.e`` reads.

Each is opt-in (:class:`Extras`), drawn from its own random stream so that a set without them
is the same file for file as before, and each is applied to the simulated exposure the way
ACS2D removes it::

    expected = scene * pflat * dflat * lflat * (1 + shading / EXPTIME)
               + dark * DARKTIME + flash * FLASHDUR

- SHADFILE (seconds of extra exposure per pixel; binned ``shading`` x ``shading`` when
  ``shading`` > 1, with LTM = 1/bin, and expanded for the exposure exactly as hstcal's
  ``doShad`` expands it).
- DFLTFILE, LFLTFILE: unitless, full size, mean about 1 (the delta flat has small-scale
  structure, the low-order flat a smooth tilt and curvature).
- FLSHFILE: electrons per second of flash, full size, LTV 0 (hstcal refuses others).
- DRKCFILE with ``cte_dark``: the set's dark as it is (the dark charge before readout), while
  DARKFILE becomes that dark read out through the CTE forward model, as a real superdark made
  from uncorrected frames is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

from owl.calib import simulate_tables as tables
from owl.calib.fitsio import Frame, Imset, write_frame
from owl.calib.flat2d import expand_shading
from owl.calib.wfc_layout import CHIP_EXTVER, TRIM_SHAPE

F32 = npt.NDArray[np.float32]

NAMES = {"SHADFILE": "owlsim_shd.fits", "FLSHFILE": "owlsim_fls.fits",
         "DRKCFILE": "owlsim_dkc.fits"}
"""File names of the optional references that do not depend on the filter."""


def dflt_name(filt: str) -> str:
    """File name of the simulated DFLTFILE for ``filt``."""
    return f"owlsim_{filt.lower()}_dfl.fits"


def lflt_name(filt: str) -> str:
    """File name of the simulated LFLTFILE for ``filt``."""
    return f"owlsim_{filt.lower()}_lfl.fits"


@dataclass(frozen=True)
class Extras:
    """Which optional ACS2D references a simulated set gets.

    Attributes
    ----------
    shading : int
        0: no SHADFILE; 1: a full-size one; n > 1: binned n x n (n divides 1024).
    delta_flat, low_order_flat : bool
        Write a DFLTFILE / LFLTFILE and flat-field the exposure with it.
    flashdur : float
        Seconds of post-flash (FLASHDUR, FLASHSTA=SUCCESSFUL, FLSHCORR=PERFORM); 0: none.
    cte_dark : bool
        With a PCTETAB: a separate DRKCFILE (untrailed) and a trailed DARKFILE.
    """

    shading: int = 0
    delta_flat: bool = False
    low_order_flat: bool = False
    flashdur: float = 0.0
    cte_dark: bool = False

    def __post_init__(self) -> None:
        if self.shading < 0 or (self.shading > 1 and 1024 % self.shading):
            raise ValueError(f"shading must be 0, 1 or a divisor of 1024, not {self.shading}")
        if self.flashdur < 0:
            raise ValueError(f"flashdur must not be negative, not {self.flashdur}")


@dataclass(frozen=True)
class ExtraRefs:
    """What the optional references hold, per CCDCHIP, on the trimmed chip."""

    keywords: dict[str, str]
    shading: dict[int, F32]
    """Seconds of extra exposure, expanded to the chip (empty without SHADFILE)."""
    flat: dict[int, F32]
    """Product of the delta and low-order flats (empty without either)."""
    flash: dict[int, F32]
    """Flash electrons per second (empty without FLSHFILE)."""


def write_extras(directory: Path, extras: Extras, filt: str, seed: int) -> ExtraRefs:
    """Write the references ``extras`` asks for into ``directory``."""
    rng = np.random.default_rng([seed, 2, 11])
    keywords: dict[str, str] = {}
    shading: dict[int, F32] = {}
    flat: dict[int, F32] = {}
    flash: dict[int, F32] = {}
    yy, xx = np.mgrid[0:TRIM_SHAPE[0], 0:TRIM_SHAPE[1]].astype(np.float32)
    u, v = xx / TRIM_SHAPE[1] - 0.5, yy / TRIM_SHAPE[0] - 0.5
    if extras.shading:
        b = extras.shading
        binned = {chip: _shading(rng, b) for chip in (1, 2)}
        # a few flagged shading pixels (DQ 4), to carry hstcal's DQ rules of the expansion
        flags = {chip: np.where(rng.random(image.shape) < 0.002, 4, 0).astype(np.int16)
                 for chip, image in binned.items()}
        _write(directory / NAMES["SHADFILE"], binned, "SHUTTER SHADING", "SECONDS",
               err=0.001, descrip="owl sim shutter shading (s)", bin_=b, dq=flags)
        keywords["SHADFILE"] = f"jref${NAMES['SHADFILE']}"
        if b == 1:
            shading = binned
        else:
            for chip, image in binned.items():
                ref = _imset(image, chip, 0.001, b, flags[chip])
                shading[chip] = expand_shading(ref, TRIM_SHAPE, b, b, 0, 0, "shading")[0]
    for key, name in (("DFLTFILE", dflt_name(filt)), ("LFLTFILE", lflt_name(filt))):
        if not (extras.delta_flat if key == "DFLTFILE" else extras.low_order_flat):
            continue
        images = {chip: _delta(rng) if key == "DFLTFILE" else _low_order(rng, u, v)
                  for chip in (1, 2)}
        _write(directory / name, images, "DELTA FLAT" if key == "DFLTFILE" else "LOW ORDER FLAT",
               "UNITLESS", err=0.001, descrip=f"owl sim {filt} {key.lower()}",
               FILTER1=filt, FILTER2="CLEAR2L")
        keywords[key] = f"jref${name}"
        for chip, image in images.items():
            flat[chip] = (flat[chip] * image).astype(np.float32) if chip in flat else image
    if extras.flashdur > 0:
        flash = {chip: (2.0 + 0.4 * u + 0.3 * v * v
                        + rng.normal(0.0, 0.01, TRIM_SHAPE)).astype(np.float32)
                 for chip in (1, 2)}
        _write(directory / NAMES["FLSHFILE"], flash, "POST FLASH", "ELECTRONS/S", err=0.002,
               descrip="owl sim post-flash (e-/s)")
        keywords["FLSHFILE"] = f"jref${NAMES['FLSHFILE']}"
    return ExtraRefs(keywords=keywords, shading=shading, flat=flat, flash=flash)


def write_cte_dark(directory: Path, dark: dict[int, F32], trailed: dict[int, F32]) -> None:
    """DRKCFILE (``dark``) and a replaced DARKFILE (``trailed``), both e-/s."""
    from owl.calib.simulate_refs import REF_NAMES

    _write(directory / NAMES["DRKCFILE"], dark, "CTE CORRECTED DARK", "ELECTRONS/S",
           err=0.0005, descrip="owl sim CTE-corrected dark (e-/s)")
    _write(directory / REF_NAMES["DARKFILE"], trailed, "DARK", "ELECTRONS/S", err=0.0005,
           descrip="owl sim dark with CTE trails (e-/s)")


def _shading(rng: np.random.Generator, b: int) -> F32:
    """Shutter shading in seconds on a grid binned ``b``: a ramp across the blade path."""
    ny, nx = TRIM_SHAPE[0] // b, TRIM_SHAPE[1] // b
    x = np.linspace(0.0, 1.0, nx, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, ny, dtype=np.float32)[:, None]
    a, c = rng.uniform(0.02, 0.04), rng.uniform(-0.01, 0.01)
    return (a * (1.0 - x) + c * y + rng.normal(0.0, 0.0005, (ny, nx))).astype(np.float32)


def _delta(rng: np.random.Generator) -> F32:
    """A delta flat: 1 plus 0.5 % grain and a few dust-like dips."""
    image = 1.0 + rng.normal(0.0, 0.005, TRIM_SHAPE)
    for _ in range(4):
        y0, x0 = rng.integers(50, TRIM_SHAPE[0] - 50), rng.integers(50, TRIM_SHAPE[1] - 50)
        image[y0 - 10:y0 + 10, x0 - 10:x0 + 10] *= 0.97
    return image.astype(np.float32)


def _low_order(rng: np.random.Generator, u: F32, v: F32) -> F32:
    """A low-order flat: 1 plus a tilt and a curvature of a few per cent."""
    a, b, c = rng.normal(0.0, 0.02, 3)
    return np.asarray(1.0 + a * u + b * v + c * u * v, dtype=np.float32)


def _imset(image: F32, chip: int, err: float, bin_: int,
           dq: npt.NDArray[np.int16] | None = None) -> Imset:
    header = fits.Header()
    header["CCDCHIP"] = (chip, "CCD chip (1 or 2)")
    ltv = (bin_ - 1) / bin_
    header["LTV1"] = (ltv, "offset in X")
    header["LTV2"] = (ltv, "offset in Y")
    header["LTM1_1"] = (1.0 / bin_, "reciprocal of sampling rate in X")
    header["LTM2_2"] = (1.0 / bin_, "reciprocal of sampling rate in Y")
    return Imset(sci=image, err=np.full(image.shape, err, np.float32),
                 dq=np.zeros(image.shape, np.int16) if dq is None else dq, sci_header=header,
                 err_header=header.copy(), dq_header=header.copy(), extver=CHIP_EXTVER[chip])


def _write(path: Path, images: dict[int, F32], filetype: str, bunit: str, *, err: float,
           descrip: str, bin_: int = 1, dq: dict[int, npt.NDArray[np.int16]] | None = None,
           **extra: str) -> None:
    primary = tables.ref_primary(filetype, descrip, CCDAMP="ABCD", CCDGAIN=2.0, BINAXIS1=1,
                                 BINAXIS2=1, **extra)
    imsets = []
    for chip in (2, 1):
        imset = _imset(images[chip], chip, err, bin_, None if dq is None else dq[chip])
        imset.sci_header["BUNIT"] = (bunit, "brightness units")
        imsets.append(imset)
    write_frame(Frame(primary=primary, imsets=imsets, path=None), path, overwrite=True)
