"""What the CALACS step modules share: switches, reference images, amp layout, reporting.

Step modules (:mod:`owl.calib.acsccd`, :mod:`owl.calib.acs2d`, :mod:`owl.calib.acsrej`) are
glue: they read headers and reference files, call the kernels, and record what they did
(switch set to COMPLETE, a HISTORY line naming the step and its reference file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed
from numpy.typing import NDArray

from owl.calib.ccdtab import CCDKey, CCDParams, read_ccdtab
from owl.calib.fitsio import Frame, Imset, add_history, read_frame, set_switch, write_frame
from owl.calib.refcache import cached
from owl.calib.refpath import resolve_ref
from owl.errors import CalibError

#: Reporter for progress lines (``print`` for ``-v``, a logger's ``info`` in tasks).
Report = Callable[[str], None]

#: hstcal's ``SM4MJD`` (acs.h: May 11, 2009, the beginning of SM4). From this EXPSTART on,
#: WFC full frames take the post-SM4 BLEVCORR path and the CCDTAB DARKTIME overhead.
SM4MJD = 54962.0


def run_file_step(label: str, calibrate: Callable[[Frame, Report], None],
                  input_path: str | Path, output_path: str | Path, *, overwrite: bool,
                  switches: Mapping[str, str] | None, report: Report,
                  sci_dtype: Any = None, keywords: Mapping[str, str] | None = None) -> Path:
    """The file shell of a one-input step: refuse an existing output (hstcal never
    overwrites), read, apply keyword (reference file) and switch overrides, calibrate in
    place, write. Overridden keywords are written into the output's primary header."""
    out = Path(output_path)
    if out.exists() and not overwrite:
        raise CalibError(f"{out}: output exists; remove it or ask to overwrite (--overwrite)")
    frame = read_frame(input_path, sci_dtype=sci_dtype)
    report(f"{label}: {input_path} -> {out}")
    for name, value in (keywords or {}).items():
        frame.primary[name] = value
    for name, value in (switches or {}).items():
        set_switch(frame.primary, name, value)
    calibrate(frame, report)
    write_frame(frame, out, overwrite=overwrite)
    return out


def quiet(_: str) -> None:
    """A :data:`Report` that says nothing."""


def switch(header: fits.Header, name: str) -> str:
    """Value of a calibration switch (``PERFORM``, ``OMIT``, ``COMPLETE``…), upper-case.

    A missing switch reads as ``OMIT``, as hstcal's ``GetSwitch`` does.
    """
    return str(header.get(name, "OMIT")).strip().upper()


def wants(header: fits.Header, name: str) -> bool:
    """True when switch ``name`` is ``PERFORM``."""
    return switch(header, name) == "PERFORM"


def complete(header: fits.Header, name: str, text: str) -> None:
    """Mark switch ``name`` COMPLETE and add a HISTORY line saying what was done."""
    set_switch(header, name, "COMPLETE")
    add_history(header, f"{name} complete: {text}")


def ref_file(header: fits.Header, keyword: str, source: str) -> Path:
    """The reference file named by ``keyword`` (``jref$name`` resolved via the environment)."""
    value = header.get(keyword)
    if value is None:
        raise CalibError(f"{source}: keyword {keyword} is missing; cannot find its reference file")
    return resolve_ref(str(value), keyword=keyword, source=source)


@dataclass(frozen=True)
class RefImage:
    """One chip of a reference image cut to a science imset: SCI, ERR, DQ and its header."""

    sci: NDArray[np.float32]
    err: NDArray[np.float32]
    dq: NDArray[np.int16]
    header: fits.Header


def load_ref_imsets(path: Path) -> Frame:
    """Read a reference image file (bias, dark, flat…) with float32 SCI.

    Constant ERR and DQ extensions stay read-only zero-stride views (no memory, no fill):
    reference arrays are only read. A process keeps the last references it read
    (:mod:`owl.calib.refcache`; read-only arrays).
    """
    return cached(path, lambda p: read_frame(p, sci_dtype=np.float32, lazy_constants=True))


def _cut(arr: NDArray[Any], cut: tuple[slice, slice], dtype: type) -> NDArray[Any]:
    """``arr[cut]`` as a C-contiguous ``dtype`` array, without a copy when it is one already;
    a zero-stride (constant) array stays a zero-stride view of the cut's shape."""
    part = arr[cut]
    if part.size and all(s == 0 for s in part.strides):
        return np.broadcast_to(np.asarray(part.flat[0], dtype=dtype), part.shape)
    return np.ascontiguousarray(part, dtype=dtype)


def ref_for(ref: Frame, imset: Imset) -> RefImage:
    """The part of reference ``ref`` that lies under ``imset`` (same CCDCHIP).

    A reference may be larger than the science array (a subarray): the offset is the
    difference of the LTV keywords, as hstcal's ``FindLine``; binned references are not
    supported. The arrays are read-only where they come from constant extensions.
    """
    where = f"{ref.path}"
    chip = imset.chip
    r = ref.imset(chip)
    ny, nx = imset.sci.shape
    ry, rx = r.sci.shape
    x0 = round(float(r.sci_header.get("LTV1", 0)) - float(imset.sci_header.get("LTV1", 0)))
    y0 = round(float(r.sci_header.get("LTV2", 0)) - float(imset.sci_header.get("LTV2", 0)))
    if (ry, rx) == (ny, nx):
        x0 = y0 = 0
    if x0 < 0 or y0 < 0 or y0 + ny > ry or x0 + nx > rx:
        raise CalibError(
            f"{where}: chip {chip} reference of shape {(ry, rx)} does not cover the science "
            f"array {(ny, nx)} at offset ({y0}, {x0})"
        )
    cut = (slice(y0, y0 + ny), slice(x0, x0 + nx))
    return RefImage(
        sci=_cut(r.sci, cut, np.float32),
        err=_cut(r.err, cut, np.float32),
        dq=_cut(r.dq, cut, np.int16),
        header=r.sci_header,
    )


@dataclass(frozen=True)
class AmpLayout:
    """Per-amp values of one chip as the kernels want them (see :mod:`kernels_numpy`).

    Attributes
    ----------
    amps : tuple of str
        The chip's amplifiers used, left to right.
    ampx, ampy : int
        Column and row where the amp regions change.
    letters : tuple of tuple of str
        ``letters[row >= ampy][col >= ampx]``: the amp of each quadrant.
    """

    amps: tuple[str, ...]
    ampx: int
    ampy: int
    letters: tuple[tuple[str, str], tuple[str, str]]

    def quad(self, value: Mapping[str, float]) -> NDArray[np.float32]:
        """A ``(2, 2)`` array of ``value[amp]`` per quadrant."""
        return np.array([[value[a] for a in row] for row in self.letters], dtype=np.float32)


#: The amplifiers of each WFC chip, left then right (hstcal's ``get_nsegn``).
CHIP_AMPS = {1: "AB", 2: "CD"}


def amp_layout(ccdamp: str, chip: int, shape: tuple[int, ...]) -> AmpLayout:
    """Which amplifier read which part of a WFC chip of ``shape``.

    Two amps per chip split it at the middle column; a single amp covers the whole chip.
    """
    used = tuple(a for a in CHIP_AMPS.get(chip, "") if a in ccdamp.upper())
    if not used:
        raise CalibError(f"CCDAMP={ccdamp!r} reads no amplifier of chip {chip}")
    left, right = (used[0], used[-1])
    ampx = shape[1] // 2 if len(used) == 2 else 0
    row = (left, right)
    # WFC1 (A, B) sits in the rows >= ampy half of hstcal's layout, WFC2 (C, D) below it.
    ampy = 0 if chip == 1 else shape[0]
    return AmpLayout(amps=used, ampx=ampx, ampy=ampy, letters=(row, row))


def ccd_params(primary: fits.Header, chip: int, source: str,
               report: Report = quiet) -> CCDParams:
    """The CCDTAB row for ``chip`` of the exposure whose primary header is ``primary``.

    A row whose PEDIGREE starts with DUMMY is used, with hstcal's warning.
    """
    return ccd_params_all(primary, (chip,), source, report)[chip]


def ccd_params_all(primary: fits.Header, chips: Iterable[int], source: str,
                   report: Report = quiet) -> dict[int, CCDParams]:
    """:func:`ccd_params` of each of ``chips``, the CCDTAB read once."""
    table = read_ccdtab(ref_file(primary, "CCDTAB", source))
    out: dict[int, CCDParams] = {}
    for chip in chips:
        row = table.match(CCDKey.from_header(primary, chip))
        if row.pedigree.startswith("DUMMY"):
            report(f"Warning    Row {row.row} of CCDTAB is DUMMY.")
        out[chip] = row
    return out


def header_float(header: fits.Header, key: str, default: float | None = None,
                 source: str = "") -> float:
    """A numeric keyword, with a clear error when it is absent or not a number."""
    value: Any = header.get(key, default)
    if value is None:
        raise CalibError(f"{source}: keyword {key} is missing")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CalibError(f"{source}: keyword {key}={value!r} is not a number") from None
