"""ACSREJ: combine a CR-split (or repeat) set into ``_crj``/``_crc`` (files and CRREJTAB).

The science is in :mod:`owl.calib.crrej`; this module picks the CRREJTAB row (hstcal's
``rejpar_in``: the row with CRSPLIT equal to the number of images, capped at the table's
largest, and the smallest MEANEXP not below the mean exposure time), applies command-line
overrides, combines each chip, writes the output and, when CRMASK is set, the CR flags back
into the inputs' DQ.

Header of the output, as hstcal's ``acsrej_do``: the first input's, with EXPTIME = TEXPTIME =
the sum of the exposure times, EXPSTART/EXPEND the span of the set, DARKTIME and FLASHDUR
summed (float32), SKYSUM and REJ_RATE (rejected pixels per second of total exposure) of the
first imset (EXTVER 1: hstcal computes them per chip but writes the primary header once),
the CRREJ parameters (INITGUES, SKYSUB, CRSIGMAS, MEANEXP, CRRADIUS, CRTHRESH, SCALENSE,
BADINPDQ, CRMASK), ROOTNAME (upper case) and EXPNAME (lower case) after the output's name,
NCOMBINE in the SCI headers, ERR[0,0] = -1, CRCORR=COMPLETE.

SHADCORR, as hstcal's: performed when the first input's SHADCORR is PERFORM (or when asked,
``-shadcorr``), with the SHADFILE it names applied inside the combination
(:mod:`owl.calib.crrej_shading`). The output then says SHADCORR=COMPLETE with the history
``SHADCORR complete ...`` and the file's ``ImgHistory`` lines, so ACS2D does not shade the
product again. hstcal reads the file's PEDIGREE but compares the result with the wrong
constant (``DUMMY``, -1, instead of ``DUMMY_PEDIGREE``, 0), so a DUMMY SHADFILE is applied
too; owl does the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.crrej import DATAREJECT, CrRejParams, crrej
from owl.calib.crrej_kernels import flag_dq
from owl.calib.crrej_shading import RejShading, rej_shading
from owl.calib.fitsio import (
    Frame,
    Imset,
    add_history,
    data_offset,
    read_frame,
    set_switch,
    stamp_version,
    write_frame,
)
from owl.calib.pedigree import Ref, reference
from owl.calib.step import Report, complete, header_float, load_ref_imsets, quiet, ref_file
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
            columns = {n.lower(): t[n] for n in t.columns.names}
            rows = [{n: col[i] for n, col in columns.items()} for i in range(len(t))]
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
    nrej_by_chip: Mapping[int, int] = field(default_factory=dict)


#: CrRejParams fields that are owl options, not CRREJTAB columns.
OPTIONS = frozenset({"symmetric_spill", "good_minimum"})


def _params(frames: Sequence[Frame], table: Path | None, overrides: Mapping[str, Any],
            exptot: float) -> tuple[CrRejParams, str]:
    fields = set(CrRejParams.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise CalibError(f"unknown ACSREJ parameter(s): {', '.join(sorted(unknown))}")
    if table is None and fields - OPTIONS <= set(overrides):
        return CrRejParams(**overrides), "command line"
    path = table or ref_file(frames[0].primary, "CRREJTAB", str(frames[0].path))
    base = read_crrejtab(path, len(frames), exptot)
    try:
        return replace(base, **overrides), str(frames[0].primary.get("CRREJTAB", path))
    except ValueError as exc:
        raise CalibError(f"ACSREJ parameters: {exc}") from None


def _shadfile(frame: Frame, asked: bool, report: Report) -> Ref | None:
    """The SHADFILE to apply, as hstcal's ``AcsRej_do``: when ``asked`` or when the first
    input's SHADCORR is PERFORM (a SHADCORR other than PERFORM, COMPLETE, SKIPPED or OMIT is
    an error, ``GetSwitch``). Its PEDIGREE is read but never stops it (hstcal's DUMMY test
    compares with the wrong constant)."""
    value = str(frame.primary.get("SHADCORR", "OMIT")).strip().upper()
    if value not in ("PERFORM", "COMPLETE", "SKIPPED", "OMIT"):
        raise CalibError(f"{frame.path}: keyword SHADCORR = {value} is invalid")
    if not asked and value != "PERFORM":
        report("SHADCORR OMIT")
        return None
    ref = reference(frame.primary, "SHADFILE", str(frame.path))
    report("SHADCORR PERFORM")
    report(f"SHADFILE {ref.name} PEDIGREE={ref.pedigree}")
    return ref


def _chip_shading(shad: Frame, path: Path, imset: Imset, radius: float) -> RejShading:
    """The SHADFILE chip of ``imset``: the extension of the same EXTVER (hstcal's ``grp[0]``;
    not of the same CCDCHIP, which differs for a WFC1 subarray)."""
    for ref in shad.imsets:
        if ref.extver == imset.extver:
            return rej_shading(ref.sci, ref.sci_header, imset.sci_header, imset.sci.shape,
                               radius, str(path))
    raise CalibError(f"{path}: SHADFILE has no SCI extension of EXTVER {imset.extver}")


def acsrej(inputs: Sequence[str | Path], output: str | Path, *, table: str | Path | None = None,
           overrides: Mapping[str, Any] | None = None, overwrite: bool = False,
           report: Report = quiet, keywords: Mapping[str, str] | None = None,
           shadcorr: bool = False) -> RejSummary:
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
    shadcorr : bool
        Apply the SHADFILE whatever SHADCORR says (hstcal's ``-shadcorr``).

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
    shad = _shadfile(frames[0], shadcorr, report)
    shad_frame = None if shad is None else load_ref_imsets(shad.path)
    result_frame = frames[0]
    originals = [Frame(primary=f.primary, imsets=[Imset(sci=s.sci, err=s.err, dq=s.dq,
                                                       sci_header=s.sci_header,
                                                       err_header=s.err_header,
                                                       dq_header=s.dq_header, extver=s.extver)
                                                 for s in f.imsets], path=f.path)
                 for f in frames]
    total_rej, sky = 0, {}
    texpt = exptot if exptot > 0 else float(len(frames))
    masks: dict[int, np.ndarray] = {}
    imagetyp = str(result_frame.primary.get("IMAGETYP", "")).strip().upper()
    root = _product_root(out)
    ph = result_frame.primary
    rate_of: dict[str, float] = {}
    by_chip: dict[int, int] = {}
    for imset in sorted(result_frame.imsets, key=lambda s: s.extver):
        chip = imset.chip
        try:
            stack = [f.imset(chip) for f in frames]
        except CalibError as exc:
            raise CalibError(f"ACSREJ: inputs do not share chip {chip}: {exc}") from None
        shapes = {s.sci.shape for s in stack}
        if len(shapes) != 1:
            raise CalibError(f"ACSREJ: chip {chip} has different shapes in the inputs: {shapes}")
        # The inputs' SCI and ERR are not needed after the combination: crrej may scale
        # them in place.
        shading = None if shad is None or shad_frame is None else _chip_shading(
            shad_frame, shad.path, imset, params.crradius)
        res = crrej([s.sci for s in stack], [s.err for s in stack], [s.dq for s in stack],
                    exptime, params, bias_or_dark=imagetyp.startswith(("BIAS", "DARK")),
                    overwrite=True, shading=shading)
        # hstcal sets ERR[0,0] = -1 so that a uniform ERR still gets written as an array.
        res.err[0, 0] = -1.0
        imset.sci, imset.err, imset.dq = res.sci, res.err, res.dq
        imset.sci_header["NCOMBINE"] = (len(frames), "number of image sets combined")
        for h in (imset.sci_header, imset.err_header, imset.dq_header):
            h["EXPNAME"] = (root.lower(), "exposure identifier")
        total_rej += res.nrej
        by_chip[chip] = res.nrej
        sky[chip] = tuple(float(v) for v in res.sky)
        masks[chip] = res.crmask
        # hstcal computes SKYSUM and REJ_RATE per chip into the primary header, which it
        # writes with the first imset only: the file keeps EXTVER 1's values.
        if "REJ_RATE" not in rate_of:
            ph["SKYSUM"] = (res.skysum, "Total sky level (electrons)")
            ph["REJ_RATE"] = (float(np.float32(res.nrej) / np.float32(texpt)),
                              "Cosmic ray impact rate (pixels/sec)")
            rate_of["REJ_RATE"] = float(ph["REJ_RATE"])
        report(f"  chip {chip}: sky {', '.join(f'{v:.3f}' for v in res.sky)} e, "
               f"{res.nrej} pixels rejected")
    rate = rate_of["REJ_RATE"]
    ph["TEXPTIME"] = float(np.float32(exptot))
    ph["EXPTIME"] = float(np.float32(exptot))
    ph["EXPSTART"] = min(header_float(f.primary, "EXPSTART", 0.0) for f in frames)
    ph["EXPEND"] = max(header_float(f.primary, "EXPEND", 0.0) for f in frames)
    for key, text in (("DARKTIME", "Cumulative dark time in seconds"),
                      ("FLASHDUR", "Cumulative exposure time in seconds")):
        if all(key in f.primary for f in frames):
            total = np.float32(0)
            for f in frames:
                total = np.float32(total + np.float32(header_float(f.primary, key)))
            ph[key] = (float(total), text)
    ph.remove("NCOMBINE", ignore_missing=True)
    if shad is not None:
        # hstcal's UpdateSwitch and ImgHistory, before cr_history's keywords.
        set_switch(ph, "SHADCORR", "COMPLETE")
        for line in ("SHADCORR complete ...", *shad.history()):
            ph.add_history(line)
        report("SHADCORR COMPLETE")
    _record_params(ph, params, exptot / len(frames))
    ph["ROOTNAME"] = (root.upper(), "Rootname of the observation set")
    complete(ph, "CRCORR", f"CRREJTAB={origin}; crsigmas={params.crsigmas} "
             f"crradius={params.crradius} crthresh={params.crthresh} "
             f"initgues={params.initgues} skysub={params.skysub} scalense={params.scalense}")
    add_history(ph, "Combined " + ", ".join(Path(p).name for p in inputs))
    stamp_version(ph)
    write_frame(result_frame, out, overwrite=overwrite)
    if params.crmask:
        _flag_inputs(inputs, masks, originals)
    return RejSummary(output=out, nimgs=len(frames), exptime=exptot, rej_rate=rate,
                      nrej=total_rej, sky=sky, params=params, nrej_by_chip=by_chip)


def _rewrite_dq(path: Path, new: Mapping[int, np.ndarray]) -> bool:
    """Overwrite the DQ data of ``path`` in place (big-endian int16 at each DQ extension's
    data offset, the bytes astropy's update mode writes) when every DQ extension to change
    holds an int16 array of the new shape; False (nothing written) otherwise."""
    with fits.open(path, memmap=False) as hdul:
        where = {}
        for i, h in enumerate(hdul):
            if i == 0 or str(h.header.get("EXTNAME", "")).strip().upper() != "DQ":
                continue
            where[int(h.header.get("EXTVER", 1))] = (h.header, data_offset(h))
    for v, arr in new.items():
        if v not in where:
            return False
        h = where[v][0]
        if (int(h.get("NAXIS", 0)) != 2 or int(h.get("BITPIX", 0)) != 16
                or h.get("BZERO", 0) != 0 or h.get("BSCALE", 1) != 1
                or (int(h["NAXIS2"]), int(h["NAXIS1"])) != arr.shape):
            return False
    with open(path, "r+b") as f:
        for v, arr in new.items():
            f.seek(where[v][1])
            f.write(np.ascontiguousarray(arr, dtype=">i2").reshape(-1).view(np.uint8).data)
    return True


def _product_root(out: Path) -> str:
    """The output's rootname, as hstcal's ``FindAsnRoot``: the name before the first of its
    suffixes found, in its order. The list lacks ``_crc``, so a ``_crc_tmp`` product (the
    CTE-corrected CR-split) keeps ``<root>_crc_tmp`` as ROOTNAME and EXPNAME, as hstcal's."""
    name = out.name
    for suffix in ("_raw", "_asn", "_crj", "_crj_tmp", "_blv", "_blv_tmp", "_flt", "_sfl",
                   "_dth", ".fit"):
        if suffix in name:
            return name[:name.index(suffix)]
    return name.split(".")[0]


def _record_params(ph: Any, params: CrRejParams, meanexp: float) -> None:
    """The CRREJ parameters in the primary header (hstcal's ``cr_history``)."""
    ph["INITGUES"] = params.initgues
    ph["SKYSUB"] = params.skysub
    ph["CRSIGMAS"] = ",".join(f"{s:g}" for s in params.crsigmas)
    ph["MEANEXP"] = float(np.float32(meanexp))
    ph["CRRADIUS"] = float(np.float32(params.crradius))
    ph["CRTHRESH"] = float(np.float32(params.crthresh))
    ph["SCALENSE"] = float(np.float32(params.scalense))
    ph["BADINPDQ"] = int(params.badinpdq)
    ph["CRMASK"] = bool(params.crmask)


def _flag_inputs(inputs: Sequence[str | Path], masks: Mapping[int, np.ndarray],
                 frames: Sequence[Frame]) -> None:
    """Set the CR bit in each input's DQ where that image was rejected (hstcal ``crmask``).

    Like hstcal's ``openUpdateImage``, only the DQ data are rewritten, in place, when every
    DQ extension of the file holds an array; a file with a constant DQ extension (which
    grows into an array) is rewritten whole. The inputs' DQ arrays in ``frames`` are not
    needed afterwards: the flagged words replace them in place.
    """
    for n, (path, frame) in enumerate(zip(inputs, frames, strict=True)):
        new = {}
        for imset in frame.imsets:
            dq = np.ascontiguousarray(imset.dq, dtype=np.int16)
            big = (dq.view(np.uint16) if dq.flags.writeable
                   else np.empty(dq.shape, dtype=np.uint16))
            flag_dq(dq, masks[imset.chip][n], DATAREJECT, big)
            new[imset.extver] = big.view(">i2")
        if _rewrite_dq(Path(path), new):
            continue
        whole = read_frame(path)
        for imset in whole.imsets:
            imset.dq = new[imset.extver].astype(np.int16)
        write_frame(whole, path, overwrite=True)
