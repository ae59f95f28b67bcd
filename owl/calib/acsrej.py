"""ACSREJ: combine a CR-split (or repeat) set into ``_crj``/``_crc`` (files and CRREJTAB).

The science is in :mod:`owl.calib.crrej`; this module picks the CRREJTAB row (hstcal's
``rejpar_in``: the row with CRSPLIT equal to the number of images, capped at the table's
largest, and the smallest MEANEXP not below the mean exposure time), applies command-line
overrides, combines each chip, writes the output and, when CRMASK is set, the CR flags back
into the inputs' DQ.

Header of the output: the first input's, with EXPTIME = TEXPTIME = the sum of the exposure
times, EXPSTART/EXPEND the span of the set, DARKTIME and FLASHDUR summed (the dark and
flash charge of a sum is the sum; ACS2D then scales the dark by it), SKYSUM, REJ_RATE
(rejected pixels of all chips per second of total exposure), NCOMBINE, CRCORR=COMPLETE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.crrej import DATAREJECT, CrRejParams, crrej
from owl.calib.fitsio import Frame, add_history, read_frame, stamp_version, write_frame
from owl.calib.step import Report, complete, header_float, quiet, ref_file
from owl.errors import CalibError


def parse_sigmas(text: str) -> tuple[float, ...]:
    """``'6.5,5.5,4.5'`` (separators ``, ; /`` or blanks) → ``(6.5, 5.5, 4.5)``."""
    parts = text.replace(";", " ").replace(",", " ").replace("/", " ").split()
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise CalibError(f"crsigmas {text!r} is not a list of numbers") from None


def read_crrejtab(path: Path, nimgs: int, exptot: float) -> CrRejParams:
    """The CRREJTAB parameters for ``nimgs`` images of total exposure ``exptot``."""
    try:
        with fits.open(path, memmap=False) as hdul:
            t = hdul[1].data
            rows = [{n.lower(): t[n][i] for n in t.columns.names} for i in range(len(t))]
    except (OSError, IndexError, AttributeError, TypeError) as exc:
        raise CalibError(f"CRREJTAB {path}: cannot read the table ({exc})") from exc
    try:
        maxsplit = max(int(r["crsplit"]) for r in rows)
        want = min(nimgs, maxsplit)
        meanexp = exptot / nimgs
        fits_rows = [r for r in rows
                     if int(r["crsplit"]) == want and float(r["meanexp"]) - meanexp >= 0]
        if not fits_rows:
            raise CalibError(f"CRREJTAB {path}: no row with CRSPLIT={want} and "
                             f"MEANEXP >= {meanexp:g}")
        row = min(fits_rows, key=lambda r: float(r["meanexp"]))
        return CrRejParams(
            crsigmas=parse_sigmas(str(row["crsigmas"])),
            crradius=float(row["crradius"]),
            crthresh=float(row["crthresh"]),
            scalense=float(row["scalense"]),
            initgues=str(row["initgues"]).strip(),
            skysub=str(row["skysub"]).strip(),
            badinpdq=int(row["badinpdq"]),
            crmask=bool(int(row["crmask"])),
        )
    except KeyError as exc:
        raise CalibError(f"CRREJTAB {path}: column {exc.args[0].upper()} is missing") from None
    except ValueError as exc:
        raise CalibError(f"CRREJTAB {path}: {exc}") from None


@dataclass(frozen=True)
class RejSummary:
    """What ACSREJ did: the output file and the numbers it wrote."""

    output: Path
    nimgs: int
    exptime: float
    rej_rate: float
    nrej: int
    sky: Mapping[int, tuple[float, ...]]
    params: CrRejParams


def _params(frames: Sequence[Frame], table: Path | None, overrides: Mapping[str, Any],
            exptot: float) -> tuple[CrRejParams, str]:
    fields = set(CrRejParams.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise CalibError(f"unknown ACSREJ parameter(s): {', '.join(sorted(unknown))}")
    if table is None and fields <= set(overrides):
        return CrRejParams(**overrides), "command line"
    path = table or ref_file(frames[0].primary, "CRREJTAB", str(frames[0].path))
    base = read_crrejtab(path, len(frames), exptot)
    try:
        return replace(base, **overrides), str(frames[0].primary.get("CRREJTAB", path))
    except ValueError as exc:
        raise CalibError(f"ACSREJ parameters: {exc}") from None


def acsrej(inputs: Sequence[str | Path], output: str | Path, *, table: str | Path | None = None,
           overrides: Mapping[str, Any] | None = None, overwrite: bool = False,
           report: Report = quiet, keywords: Mapping[str, str] | None = None) -> RejSummary:
    """Combine a CR-split set of ``_blv_tmp`` (or ``_blc_tmp``) files into one output.

    Parameters
    ----------
    inputs : sequence of path
        Two or more calibrated, trimmed frames of one pointing.
    output : path
        The ``_crj`` (or ``_crc``) file to write.
    table : path, optional
        CRREJTAB to use instead of the one named in the first input's header.
    overrides : mapping, optional
        :class:`~owl.calib.crrej.CrRejParams` fields that replace the table's values.
    overwrite : bool
        Replace an existing output (hstcal never does).
    report : callable
        Receives progress lines.
    keywords : mapping, optional
        Header keywords (reference files such as ``CRREJTAB``) that replace the inputs'
        headers; the output header records them.

    Returns
    -------
    RejSummary

    Raises
    ------
    owl.errors.CalibError
        With fewer than two inputs, mismatched chips or shapes, a bad CRREJTAB, or an
        existing output.
    """
    out = Path(output)
    if out.exists() and not overwrite:
        raise CalibError(f"{out}: output exists; remove it or ask to overwrite (--overwrite)")
    if len(inputs) < 2:
        raise CalibError(f"ACSREJ needs at least two input images, got {len(inputs)}")
    frames = [read_frame(p, sci_dtype=np.float32) for p in inputs]
    for frame in frames:
        for name, value in (keywords or {}).items():
            frame.primary[name] = value
    exptime = [header_float(f.primary, "EXPTIME", source=str(f.path)) for f in frames]
    exptot = float(sum(exptime))
    params, origin = _params(frames, Path(table) if table else None, overrides or {}, exptot)
    report(f"ACSREJ: {len(frames)} images, {exptot:g} s, {params}")
    result_frame = frames[0]
    total_rej, sky = 0, {}
    texpt = exptot if exptot > 0 else float(len(frames))
    masks: dict[int, np.ndarray] = {}
    for imset in result_frame.imsets:
        chip = imset.chip
        try:
            stack = [f.imset(chip) for f in frames]
        except CalibError as exc:
            raise CalibError(f"ACSREJ: inputs do not share chip {chip}: {exc}") from None
        shapes = {s.sci.shape for s in stack}
        if len(shapes) != 1:
            raise CalibError(f"ACSREJ: chip {chip} has different shapes in the inputs: {shapes}")
        res = crrej(np.stack([s.sci for s in stack]), np.stack([s.err for s in stack]),
                    np.stack([s.dq for s in stack]), exptime, params)
        imset.sci, imset.err, imset.dq = res.sci, res.err, res.dq
        imset.sci_header["NCOMBINE"] = (len(frames), "number of image sets combined")
        total_rej += res.nrej
        sky[chip] = tuple(float(v) for v in res.sky)
        masks[chip] = res.crmask
        report(f"  chip {chip}: sky {', '.join(f'{v:.3f}' for v in res.sky)} e, "
               f"{res.nrej} pixels rejected")
    ph = result_frame.primary
    rate = total_rej / texpt
    ph["TEXPTIME"] = exptot
    ph["EXPTIME"] = exptot
    ph["EXPSTART"] = min(header_float(f.primary, "EXPSTART", 0.0) for f in frames)
    ph["EXPEND"] = max(header_float(f.primary, "EXPEND", 0.0) for f in frames)
    for key in ("DARKTIME", "FLASHDUR"):
        if all(key in f.primary for f in frames):
            ph[key] = sum(header_float(f.primary, key) for f in frames)
    ph["SKYSUM"] = (float(sum(max(sum(v), 0.0) for v in sky.values())),
                    "Total sky level (electrons)")
    ph["REJ_RATE"] = (rate, "Cosmic ray impact rate (pixels/sec)")
    ph["NCOMBINE"] = len(frames)
    complete(ph, "CRCORR", f"CRREJTAB={origin}; crsigmas={params.crsigmas} "
             f"crradius={params.crradius} crthresh={params.crthresh} "
             f"initgues={params.initgues} skysub={params.skysub} scalense={params.scalense}")
    add_history(ph, "Combined " + ", ".join(Path(p).name for p in inputs))
    stamp_version(ph)
    write_frame(result_frame, out, overwrite=overwrite)
    if params.crmask:
        _flag_inputs(inputs, masks)
    return RejSummary(output=out, nimgs=len(frames), exptime=exptot, rej_rate=rate,
                      nrej=total_rej, sky=sky, params=params)


def _flag_inputs(inputs: Sequence[str | Path], masks: Mapping[int, np.ndarray]) -> None:
    """Set the CR bit in each input's DQ where that image was rejected (hstcal ``crmask``)."""
    for n, path in enumerate(inputs):
        frame = read_frame(path)
        for imset in frame.imsets:
            m = masks[imset.chip][n]
            imset.dq = np.where(m, imset.dq | np.int16(DATAREJECT),
                                imset.dq & np.int16(~DATAREJECT)).astype(np.int16)
        write_frame(frame, path, overwrite=True)
