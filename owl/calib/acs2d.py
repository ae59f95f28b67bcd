"""ACS2D: ``_blv_tmp``/``_blc_tmp``/``_crj``/``_crc`` → ``_flt``/``_flc``.

Steps in hstcal's ``Do2D`` order: DQICORR (when ACSCCD did not), DARKCORR (DARKFILE, or
DRKCFILE when PCTECORR is COMPLETE; scaled by DARKTIME), FLSHCORR (FLSHFILE scaled by
FLASHDUR, CTE-corrected or not, as hstcal), FLATCORR (PFLTFILE, DFLTFILE, LFLTFILE; ERR
propagated, zero flat → DQ 512), SHADCORR (SHADFILE; :mod:`owl.calib.flat2d`) and PHOTCORR
(PHOTFLAM, PHOTPLAM, PHOTBW and PHOTZPT from the IMPHTTAB for the exposure's PHOTMODE, in
the SCI headers), then hstcal's ``doStat`` keywords (:mod:`owl.calib.stats`). Inside CALACS
an EXPSCORR=PERFORM becomes COMPLETE, as hstcal's CALACS does (its standalone ``acs2d.e``
leaves the switch alone, and so does ``owl calib acs2d``). The dark and flash images are in
electrons per second of dark time / flash duration. Reference files with PEDIGREE=DUMMY skip
their step as hstcal's do (:mod:`owl.calib.pedigree`), and an input that still has overscan
(LTV1 or LTV2 > 0) is refused, as hstcal's ``OscnTrimmed`` refuses it.

Not implemented: a binned LFLTFILE and a coronagraphic spot flat (CFLTFILE with SPOTTAB,
ACS/HRC): both are errors naming the files (:mod:`owl.calib.flat2d`); the MAMA steps
GLINCORR/LFLGCORR: their switches are left as found.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib import kernels as K
from owl.calib.acsccd import DEFAULT_SDQFLAGS
from owl.calib.darktime import darktime
from owl.calib.dqicorr import dqicorr
from owl.calib.fitsio import Frame, add_history, set_switch, stamp_version
from owl.calib.flat2d import flatcorr, shadcorr
from owl.calib.pedigree import is_dummy, plan_2d
from owl.calib.stats import good_stats, write_stats
from owl.calib.step import (
    Report,
    ccd_params_all,
    complete,
    header_float,
    load_ref_imsets,
    quiet,
    ref_file,
    ref_for,
    run_file_step,
    switch,
    wants,
)
from owl.errors import CalibError


def photmode(primary: fits.Header) -> str:
    """The synphot observation mode, as hstcal's ``PhotMode`` builds it.

    For example ``'ACS WFC1 F606W MJD#54000.0000'``: the detector (``WFC1`` for both WFC
    chips: hstcal names chip 1 whatever the imset), the filters that are not CLEAR or N/A
    (POL filters as ``POL_UV``/``POL_V``, ramp filters with ``#LRFWAVE``), and EXPSTART.
    """
    det = str(primary.get("DETECTOR", "WFC")).strip().upper()
    parts = ["ACS", "WFC1" if det == "WFC" else det]
    if str(primary.get("OBSTYPE", "")).strip().upper().startswith("CORON"):
        parts.append("CORON")
    for key in ("FILTER1", "FILTER2"):
        f = str(primary.get(key, "")).strip().upper()
        if not f or f.startswith(("CLEAR", "N/A")):
            continue
        if f.startswith("POL"):
            f = "POL_UV" if "UV" in f else "POL_V"
        elif f.startswith("FR"):
            f += f"#{float(primary.get('LRFWAVE', -1.0)):.4g}"
        parts.append(f)
    parts.append(f"MJD#{float(primary.get('EXPSTART', 0.0)):.4f}")
    return " ".join(parts)


def _obsmode_key(mode: str) -> tuple[tuple[str, ...], dict[str, float]]:
    """Words of an obsmode without parameter values, and the values (``mjd#58000``)."""
    words, params = [], {}
    for w in mode.strip().lower().replace(",", " ").split():
        name, sep, value = w.partition("#")
        words.append(name + sep)
        if sep and value:
            params[name + sep] = float(value)
    return tuple(sorted(words)), params


def lookup_phot(path: Path, mode: str, report: Report = quiet) -> dict[str, float]:
    """PHOTFLAM, PHOTPLAM and PHOTBW for ``mode`` from an IMPHTTAB, and its PHOTZPT.

    Each quantity is the extension of that name: a table with OBSMODE and a column of the
    quantity's name. A row matches when its OBSMODE (comma- or blank-separated) has the same
    words as ``mode``, parameter names such as ``mjd#`` included but not their values; a
    parameterised row (columns NELEM1, PAR1VALUES and ``<NAME>1``) is interpolated linearly
    at the value ``mode`` gives.
    """
    want, values = _obsmode_key(mode)
    par = next(iter(values.values()), None)
    out: dict[str, float] = {}
    try:
        with fits.open(path, memmap=False) as hdul:
            if "PHOTZPT" not in hdul[0].header:
                raise CalibError(f"IMPHTTAB {path}: primary header lacks PHOTZPT")
            out["PHOTZPT"] = float(hdul[0].header["PHOTZPT"])
            for name in ("PHOTFLAM", "PHOTPLAM", "PHOTBW"):
                table = hdul[name].data
                cols = {c.upper(): c for c in table.columns.names}
                for number, row in enumerate(table, start=1):
                    if _obsmode_key(str(row[cols["OBSMODE"]]))[0] != want:
                        continue
                    if "PEDIGREE" in cols and is_dummy(row[cols["PEDIGREE"]]):
                        report(f"==>Warning: Row {number} of IMPHTTAB is DUMMY.")
                    value = float(row[cols[name]])
                    nelem = int(row[cols["NELEM1"]]) if "NELEM1" in cols else 0
                    if nelem > 0 and par is not None:
                        xs = np.asarray(row[cols["PAR1VALUES"]], dtype=float)[:nelem]
                        ys = np.asarray(row[cols[f"{name}1"]], dtype=float)[:nelem]
                        value = float(np.interp(par, xs, ys))
                    out[name] = value
                    break
                else:
                    raise CalibError(f"IMPHTTAB {path}[{name}]: no row for OBSMODE {mode!r}")
    except (OSError, KeyError, IndexError, AttributeError) as exc:
        raise CalibError(f"IMPHTTAB {path}: cannot read ({exc})") from exc
    return out


def _subtract_ref(frame: Frame, keyword: str, scale: float, source: str,
                  mean_key: str) -> None:
    """Subtract ``scale`` times a reference image; record its mean as ``mean_key``."""
    ref = load_ref_imsets(ref_file(frame.primary, keyword, source))
    for imset in frame.imsets:
        r = ref_for(ref, imset)
        K.subtract_scaled(imset.sci, imset.err, imset.dq, r.sci, r.err, r.dq, scale)
        imset.sci_header[mean_key] = (float(r.sci.mean(dtype=np.float64)) * scale,
                                      f"mean of {keyword} values subtracted (electrons)")


def _flshcorr(frame: Frame, source: str, report: Report) -> None:
    """FLSHCORR as hstcal's ``doFlash``: subtract FLASHDUR times the FLSHFILE.

    hstcal reads FLSHFILE whether or not the image is CTE-corrected (its CTE flash slot is
    filled from the same keyword). MEANFLSH is its line-weighted mean: per line the float32
    mean of the good pixels of the scaled flash (DQ not in SDQFLAGS), weighted by the good
    fraction, accumulated in float32.
    """
    ph = frame.primary
    flashdur = float(np.float32(header_float(ph, "FLASHDUR", 0.0, source)))
    if flashdur <= 0:
        set_switch(ph, "FLSHCORR", "SKIPPED")
        add_history(ph, "Post-flash exposure was 0 seconds. FLSHCORR not performed.")
        report("FLSHCORR skipped: post-flash exposure was 0 seconds")
        return
    if str(ph.get("FLASHSTA", "")).strip().upper() == "ABORTED":
        add_history(ph, "Post-flash STATUS was ABORTED. Post-flash may be compromised.")
    path = ref_file(ph, "FLSHFILE", source)
    ref = load_ref_imsets(path)
    first = ref.imsets[0].sci_header if ref.imsets else {}
    if float(first.get("LTV1", 0)) != 0 or float(first.get("LTV2", 0)) != 0:
        raise CalibError(f"{path}: FLSHFILE has untrimmed overscans (LTV1/LTV2 not 0)")
    scale = np.float32(flashdur)
    for imset in frame.imsets:
        r = ref_for(ref, imset)
        sdq = int(imset.sci_header.get("SDQFLAGS", DEFAULT_SDQFLAGS))
        imset.sci_header["MEANFLSH"] = (_line_weighted_mean(scale * r.sci, r.dq, sdq),
                                        "mean of post-flash values subtracted")
        K.subtract_scaled(imset.sci, imset.err, imset.dq, r.sci, r.err, r.dq, flashdur)
    complete(ph, "FLSHCORR", f"FLSHFILE={ph['FLSHFILE']} scaled by FLASHDUR={flashdur:g} s")
    report(f"FLSHCORR: {ph['FLSHFILE']} x {flashdur:g} s")


def _line_weighted_mean(sci: np.ndarray, dq: np.ndarray, sdqflags: int) -> float:
    """hstcal's MEANFLSH: ``AvgSciValLine`` per line, summed with float32 weights."""
    good = (dq.astype(np.int64) & sdqflags) == 0
    ngood = good.sum(axis=1)
    # a sequential float64 sum per line, as AvgSciValLine's loop
    sums = np.cumsum(np.where(good, sci, 0).astype(np.float64), axis=1)[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(ngood > 0, sums / np.maximum(ngood, 1), 0.0).astype(np.float32)
    weights = np.where(ngood > 0, ngood.astype(np.float32) / np.float32(sci.shape[1]),
                       np.float32(0)).astype(np.float32)
    mean, weight = np.float32(0), np.float32(0)
    for m, w in zip(means, weights, strict=True):
        mean = np.float32(mean + np.float32(m * w))
        weight = np.float32(weight + w)
    return float(np.float32(mean / weight)) if weight > 0 else 0.0


def _require_trimmed(frame: Frame, source: str) -> None:
    """hstcal's ``OscnTrimmed``: an imset that still has overscan (LTV1 or LTV2 > 0) is an
    error (for example after a DUMMY OSCNTAB, which leaves ACSCCD's output untrimmed)."""
    for imset in frame.imsets:
        h = imset.sci_header
        if float(h.get("LTV1", 0.0)) > 0.0 or float(h.get("LTV2", 0.0)) > 0.0:
            raise CalibError(f"{source}: chip {imset.chip}: overscan region not trimmed "
                             f"(LTV1={h.get('LTV1')}, LTV2={h.get('LTV2')}); please perform "
                             "BLEVCORR (hstcal's ACS2D refuses it too)")


def calibrate_2d(frame: Frame, report: Report = quiet, *, in_calacs: bool = False) -> None:
    """Run the ACS2D steps on ``frame`` in place (``in_calacs``: as part of CALACS)."""
    ph = frame.primary
    source = str(frame.path or ph.get("ROOTNAME", "frame"))
    for imset in frame.imsets:
        imset.sci = np.ascontiguousarray(imset.sci, dtype=np.float32)
        imset.err = np.ascontiguousarray(imset.err, dtype=np.float32)
        imset.dq = np.ascontiguousarray(imset.dq, dtype=np.int16)
    cte = switch(ph, "PCTECORR") == "COMPLETE"
    plan = plan_2d(ph, source, cte)
    plan.require_work()
    _require_trimmed(frame, source)
    if plan.runs("DQICORR") or "DQICORR" in plan.dummy:
        ccd = ccd_params_all(ph, [s.chip for s in frame.imsets], source, report)
        dqicorr(frame, plan, ccd, source, report)
    plan.skip_dummy(ph, "DARKCORR", report)
    if plan.runs("DARKCORR"):
        key = "DRKCFILE" if cte else "DARKFILE"
        dt = header_float(ph, "DARKTIME", None, source) if "DARKTIME" in ph \
            else darktime(ph, source)
        _subtract_ref(frame, key, dt, source, "MEANDARK")
        complete(ph, "DARKCORR", f"{key}={ph[key]} scaled by DARKTIME={dt:g} s")
        report(f"DARKCORR: {ph[key]} x {dt:g} s")
    plan.skip_dummy(ph, "FLSHCORR", report)
    if plan.runs("FLSHCORR"):
        _flshcorr(frame, source, report)
    plan.skip_dummy(ph, "FLATCORR", report)
    if plan.runs("FLATCORR"):
        flatcorr(frame, source, report, dummy=plan.dummy.get("FLATCORR", ()))
    plan.skip_dummy(ph, "SHADCORR", report)
    if plan.runs("SHADCORR"):
        shadcorr(frame, source, report)
    # hstcal writes PHOTMODE into every SCI header whatever PHOTCORR says, and the PHOT*
    # values (float32, PutKeyFlt) into the SCI headers only.
    mode = photmode(ph)
    for imset in frame.imsets:
        imset.sci_header["PHOTMODE"] = (mode, "list of components")
    plan.skip_dummy(ph, "PHOTCORR", report)
    if plan.runs("PHOTCORR"):
        phot = lookup_phot(ref_file(ph, "IMPHTTAB", source), mode, report)
        for imset in frame.imsets:
            for key, text in (("PHOTFLAM", "inverse sensitivity"), ("PHOTZPT", "zero point"),
                              ("PHOTPLAM", "pivot wavelength"), ("PHOTBW", "RMS bandwidth")):
                imset.sci_header[key] = (float(np.float32(phot[key])), text)
        complete(ph, "PHOTCORR", f"IMPHTTAB={ph['IMPHTTAB']}")
        report(f"PHOTCORR: {ph['IMPHTTAB']} ({mode})")
    for imset in frame.imsets:
        sdq = int(imset.sci_header.get("SDQFLAGS", DEFAULT_SDQFLAGS))
        write_stats(imset.sci_header, imset.err_header,
                    good_stats(imset.sci, imset.err, imset.dq, sdq))
    if in_calacs and wants(ph, "EXPSCORR"):
        set_switch(ph, "EXPSCORR", "COMPLETE")
        add_history(ph, "EXPSCORR complete ...")
    stamp_version(ph)


def acs2d(input_path: str | Path, output_path: str | Path, *, overwrite: bool = False,
          switches: Mapping[str, str] | None = None,
          report: Report = quiet, in_calacs: bool = False,
          keywords: Mapping[str, str] | None = None) -> Path:
    """Run ACS2D on one file and write the ``_flt`` (or ``_flc``) file.

    Parameters
    ----------
    input_path : str or pathlib.Path
        ``_blv_tmp``, ``_blc_tmp``, ``_crj`` or ``_crc`` file.
    output_path : str or pathlib.Path
        Output file.
    overwrite : bool
        Replace an existing output (hstcal never does).
    switches : mapping, optional
        Switch values (``{"BLEVCORR": "OMIT"}``) that replace the input header's.
    report : callable
        Receives progress lines.
    in_calacs : bool
        Run as CALACS does (EXPSCORR=PERFORM becomes COMPLETE).
    keywords : mapping, optional
        Header keywords (reference files, ``{"DARKFILE": "jref$x_drk.fits"}``) that replace
        the input header's; the output header records them.

    Returns
    -------
    pathlib.Path
        The output file.

    Raises
    ------
    owl.errors.CalibError
        On unreadable input or reference files, missing keywords or an existing output.
    """
    return run_file_step("ACS2D", partial(calibrate_2d, in_calacs=in_calacs), input_path,
                         output_path, overwrite=overwrite, switches=switches, report=report,
                         sci_dtype=np.float32, keywords=keywords)
