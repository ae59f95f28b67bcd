"""ACSCCD: raw → ``_blv_tmp`` (DQICORR, BIASCORR, gain, BLEVCORR, saturation, ERR, trim).

The order is hstcal's ``DoCCD``: bad pixels from BPIXTAB; the bias image (with its
overscan) subtracted; conversion to electrons with the CCDTAB gains (BUNIT=ELECTRONS);
the bias level measured in the physical overscan of each amp, fitted as a line in row
(hstcal's ``doBlev``: per-row median, 3-sigma clipping of high outliers, unweighted fit) and
subtracted with the virtual-overscan drift; DARKTIME; full-well saturation flags; the ERR
array from read noise and Poisson noise; and, when BLEVCORR ran, the overscan trimmed.

Post-SM4 WFC full frames take hstcal's other path instead of the line fit: bias shift and
cross talk (DS_INT readouts at gain 2) and destriping (:mod:`owl.calib.blev_postsm4`);
post-SM4 subarrays of the apertures with virtual overscan (``-2K``) read at DS_INT and gain 2
get the bias shift alone, other subarrays the line fit. Reference images in full-frame
geometry are cut to a subarray by the LTV offsets. SINKCORR (SNKCFILE, DQ 1024,
:mod:`owl.calib.sinkcorr`) runs after the ERR initialisation, on the untrimmed array. A
BIASFILE with BUNIT=ELECTRONS is subtracted after the gain (same arithmetic as subtracting it
divided by the gain before). Reference files with PEDIGREE=DUMMY skip their step as hstcal's
do (:mod:`owl.calib.pedigree`); DQICORR is :mod:`owl.calib.dqicorr`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib import kernels as K
from owl.calib.blev_postsm4 import post_sm4_blev, subarray_bias_shift
from owl.calib.ccdtab import CCDParams
from owl.calib.darktime import darktime
from owl.calib.dqicorr import dqicorr
from owl.calib.fitsio import (
    Frame,
    Imset,
    add_history,
    stamp_version,
)
from owl.calib.fitstable import table_columns
from owl.calib.fullwell import flag_full_well, satufile
from owl.calib.kernels_ccd import subtract_bias_gain
from owl.calib.pedigree import dummy_blev_history, plan_ccd
from owl.calib.sinkcorr import sinkcorr
from owl.calib.step import (
    SM4MJD,
    AmpLayout,
    Report,
    amp_layout,
    ccd_params_all,
    complete,
    header_float,
    load_ref_imsets,
    quiet,
    ref_file,
    ref_for,
    run_file_step,
)
from owl.errors import CalibError

#: hstcal's default serious-DQ mask when SDQFLAGS is absent.
DEFAULT_SDQFLAGS = 31743


@dataclass(frozen=True)
class Overscan:
    """One OSCNTAB row, 0-indexed inclusive column/row ranges (hstcal's ``FindOverscan``)."""

    trimx: tuple[int, int]
    trimy: tuple[int, int]
    biassecta: tuple[int, int]
    biassectb: tuple[int, int]
    vx: tuple[int, int]
    vy: tuple[int, int]


def read_oscntab(path: Path) -> list[dict[str, Any]]:
    """The rows of an OSCNTAB (column names upper-cased)."""
    try:
        with fits.open(path, memmap=False) as hdul:
            columns = {n.upper(): c for n, c in table_columns(hdul, 1, str(path)).items()}
            nrows = int(hdul[1].header["NAXIS2"])
            return [{n: col[i] for n, col in columns.items()} for i in range(nrows)]
    except (OSError, IndexError, AttributeError, TypeError) as exc:
        raise CalibError(f"OSCNTAB {path}: cannot read the table ({exc})") from exc


def find_overscan(path: Path, ccdamp: str, chip: int, binning: tuple[int, int],
                  shape: tuple[int, ...],
                  rows: list[dict[str, Any]] | None = None) -> Overscan | None:
    """The OSCNTAB row for this readout and chip size, or None (no overscan to use);
    ``rows``: the table already read by :func:`read_oscntab`."""
    if rows is None:
        rows = read_oscntab(path)
    amps = {ccdamp.strip().upper(), "".join(a for a in "ABCD" if a in ccdamp.upper()
                                            and a in {1: "AB", 2: "CD"}.get(chip, ""))}
    for r in rows:
        try:
            if (str(r["CCDAMP"]).strip().upper() in amps and int(r["CCDCHIP"]) == chip
                    and (int(r["BINX"]), int(r["BINY"])) == binning
                    and (int(r["NX"]), int(r["NY"])) == (shape[1], shape[0])):
                return Overscan(
                    trimx=(int(r["TRIMX1"]), int(r["TRIMX2"])),
                    trimy=(int(r["TRIMY1"]), int(r["TRIMY2"])),
                    biassecta=(int(r["BIASSECTA1"]) - 1, int(r["BIASSECTA2"]) - 1),
                    biassectb=(int(r["BIASSECTB1"]) - 1, int(r["BIASSECTB2"]) - 1),
                    vx=(int(r["VX1"]) - 1, int(r["VX2"]) - 1),
                    vy=(int(r["VY1"]) - 1, int(r["VY2"]) - 1),
                )
        except KeyError as exc:
            raise CalibError(f"OSCNTAB {path}: column {exc.args[0]} is missing") from None
    return None


def _bias_sections(o: Overscan, side: int, namps: int, nx: int) -> tuple[np.ndarray, float]:
    """Overscan columns of the amp on ``side`` (0 left, 1 right) and the drift zero, as
    ``doBlev``: with both sections given, the one nearer the amp (and the far one too for a
    one-amp chip); otherwise BIASSECTA unless its end is 0 (hstcal tests the 0-based value,
    so an empty BIASSECTA, stored as 0, reads as -1 and is still chosen: no usable pixels,
    the CCDTAB bias). Ends are clipped to the row; a section ending at 0 is unused."""
    a, b = o.biassecta, o.biassectb
    if a[1] > 0 and b[1] > 0:
        near, far = (a, b) if side == 0 else (b, a)
        pair = [near, far if namps == 1 else (0, 0)]
    else:
        pair = [b if a[1] == 0 else a, (0, 0)]
    first = (max(pair[0][0], 0), min(pair[0][1], nx - 1))
    second = (max(pair[1][0], 0), min(pair[1][1], nx - 1))
    used = ([first] if first[1] != 0 else []) + ([second] if second[0] != 0 else [])
    return np.array(used, dtype=np.int64).reshape(-1, 2), float(sum(first)) / 2.0


def _blevcorr(imset: Imset, o: Overscan | None, lay: AmpLayout, ccd: CCDParams,
              sdqflags: int, report: Report) -> tuple[float, bool]:
    """Subtract the overscan bias level per amp; return (mean level, from overscan)."""
    sci, dq = imset.sci, imset.dq
    # hstcal's ccdbias: the float32 product of CCDBIASx and ATODGNx.
    default = {a: float(np.float32(ccd.amp(a).bias) * np.float32(ccd.amp(a).gain))
               for a in lay.amps}
    ny, nx = sci.shape
    if o is None:
        for side, amp in enumerate(lay.amps):
            c0, c1 = (0, lay.ampx) if side == 0 and len(lay.amps) == 2 else (lay.ampx, nx)
            K.subtract_bias_level(sci, 0, ny, c0, c1,
                                  K.BiasLevel(default[amp], 0.0, 0.0, from_overscan=False))
        report(f"  chip {imset.chip}: no OSCNTAB row; CCDTAB bias levels subtracted")
        return float(np.mean(list(default.values()))), False
    begy, endy = o.trimy[0], ny - o.trimy[1]
    width = nx - o.trimx[0] - o.trimx[1]
    split = width // 2 if len(lay.amps) == 2 else width
    levels = []
    for side, amp in enumerate(lay.amps):
        begx = o.trimx[0] + (split if side else 0)
        endx = o.trimx[0] + split if side == 0 and len(lay.amps) == 2 else nx - o.trimx[1]
        sections, dzero = _bias_sections(o, side, len(lay.amps), nx)
        rows = K.overscan_row_levels(sci, dq, sections, begy, endy, sdqflags)
        level = K.fit_bias_level(rows, begy, ccd.amp(amp).readnoise, default[amp])
        dslope = 0.0
        if o.vy[1] > 0 and o.vx[1] > o.vx[0]:
            # hstcal's BlevDrift: one line through the medians of the whole VX range, the
            # same for every amp of the chip (a realistic OSCNTAB keeps VX under one amp,
            # so the line does not straddle the amp-to-amp bias step).
            cols = K.virtual_overscan_columns(sci, dq, o.vx[0], o.vx[1], o.vy[0], o.vy[1],
                                              sdqflags)
            dslope = K.drift_slope(cols, o.vx[0])
        level = K.BiasLevel(level.intercept, level.slope, level.mid_row, dslope, dzero,
                            level.nrejected, level.from_overscan)
        K.subtract_bias_level(sci, begy, endy, begx, endx, level)
        # MEANBLEV as doBlev: the fitted level at the middle row plus DriftMean(sizex).
        mean = level.at_row((begy + endy - 1) / 2.0) + dslope * ((endx - begx) / 2.0 - dzero)
        levels.append(mean)
        report(f"  chip {imset.chip} amp {amp}: bias level {mean:.6g} e "
               f"({'overscan fit' if level.from_overscan else 'CCDTAB default'}, "
               f"{level.nrejected} rows rejected, drift slope {dslope:.3g} e/col)")
    return float(np.mean(levels)), True


def _post_sm4_full_frame(ph: fits.Header, frame: Frame,
                         overscans: Mapping[int, Overscan | None], source: str) -> bool:
    """hstcal's test for the post-SM4 path: WFC, EXPSTART >= SM4, full frame, both chips
    with an OSCNTAB row (otherwise the ``doBlev`` line fit is used, as for pre-SM4 data)."""
    return (str(ph.get("DETECTOR", "")).strip().upper() == "WFC"
            and header_float(ph, "EXPSTART", 0.0, source) >= SM4MJD
            and not bool(ph.get("SUBARRAY", False))
            and {s.chip for s in frame.imsets} == {1, 2}
            and all(overscans.get(c) is not None for c in (1, 2)))


#: hstcal's ``isValidBiasShiftSubArrWithVirtOscn``: subarrays with physical and virtual
#: overscan whose bias shift (and nothing else) is corrected post-SM4.
BIAS_SHIFT_SUBARRAYS = frozenset((
    "WFC1A-2K", "WFC1B-2K", "WFC2C-2K", "WFC2D-2K", "WFC1-IRAMPQ", "WFC1-MRAMPQ",
    "WFC2-MRAMPQ", "WFC2-ORAMPQ", "WFC1-POL0UV", "WFC1-POL0V", "WFC2-POL0UV", "WFC2-POL0V",
    "WFC1-POL60UV", "WFC1-POL60V", "WFC2-POL60UV", "WFC2-POL60V", "WFC1-POL120UV",
    "WFC1-POL120V", "WFC2-POL120UV", "WFC2-POL120V"))


def bias_shift_subarray(ph: fits.Header, frame: Frame,
                        overscans: Mapping[int, Overscan | None], source: str) -> bool:
    """hstcal's test for the post-SM4 subarray path: a WFC subarray of a supported aperture
    whose OSCNTAB row trims 20 virtual rows, DS_INT readout at CCDGAIN 2: only the bias
    shift is corrected (its magic-square level becomes MEANBLEV), no line fit."""
    o = overscans.get(frame.imsets[0].chip)
    return (str(ph.get("DETECTOR", "")).strip().upper() == "WFC"
            and header_float(ph, "EXPSTART", 0.0, source) >= SM4MJD
            and bool(ph.get("SUBARRAY", False))
            and str(ph.get("APERTURE", "")).strip().upper() in BIAS_SHIFT_SUBARRAYS
            and o is not None and 20 in (o.trimy[0], o.trimy[1])
            and str(ph.get("JWROTYPE", "")).strip().upper() == "DS_INT"
            and float(ph.get("CCDGAIN", 0.0)) == 2.0
            and str(ph.get("CCDAMP", "")).strip().upper() in ("A", "B", "C", "D"))


def _destripe(frame: Frame, ph: fits.Header, report: Report) -> None:
    """Post-SM4 BLEVCORR (:mod:`owl.calib.blev_postsm4`) on both chips, MEANBLEV per chip."""
    shift = (str(ph.get("JWROTYPE", "")).strip().upper() == "DS_INT"
             and float(ph.get("CCDGAIN", 0.0)) == 2.0)
    chip1, chip2 = frame.imset(1), frame.imset(2)
    res = post_sm4_blev(chip1.sci, chip2.sci, shift)
    m = res.bias_mean
    chip1.sci_header["MEANBLEV"] = (float(np.float32((m[0] + m[1]) / 2.0)),
                                    "mean of bias levels subtracted in electrons")
    chip2.sci_header["MEANBLEV"] = (float(np.float32((m[2] + m[3]) / 2.0)),
                                    "mean of bias levels subtracted in electrons")
    add_history(ph, f"DESTRIPE: number of rows fixed per amp: {res.rows_fixed}")
    add_history(ph, f"DESTRIPE: number of rows skipped per amp: {res.rows_skipped}")
    report("  post-SM4 BLEVCORR: " + ("bias shift and cross talk corrected, " if shift else
                                      "no bias shift (not DS_INT at gain 2), ")
           + "destriped; bias levels A-D " + ", ".join(f"{v:.6g}" for v in m) + " e")


def _refuse_binned(frame: Frame, source: str) -> None:
    """Binned exposures (BINAXIS or LTM not 1) are refused: owl cuts reference files by LTV
    only and its BPIXTAB, overscan and post-SM4 code assume unbinned pixels."""
    for imset in frame.imsets:
        h = imset.sci_header
        for key in ("BINAXIS1", "BINAXIS2", "LTM1_1", "LTM2_2"):
            value = h.get(key, frame.primary.get(key, 1))
            if float(value) != 1.0:
                raise CalibError(f"{source}: chip {imset.chip} is binned ({key}={value}); "
                                 "binned exposures are not supported")


def calibrate_ccd(frame: Frame, report: Report = quiet) -> None:
    """Run the ACSCCD steps on ``frame`` in place (SCI becomes float32 electrons)."""
    ph = frame.primary
    source = str(frame.path or ph.get("ROOTNAME", "frame"))
    _refuse_binned(frame, source)
    plan = plan_ccd(ph, source)
    plan.require_work()
    err_was_zero = all(not s.err.any() for s in frame.imsets)
    for imset in frame.imsets:
        imset.sci = np.ascontiguousarray(imset.sci, dtype=np.float32)
        imset.err = np.ascontiguousarray(imset.err, dtype=np.float32)
        imset.dq = np.ascontiguousarray(imset.dq, dtype=np.int16)
    ccdamp = str(ph.get("CCDAMP", "ABCD"))
    ccd = ccd_params_all(ph, [s.chip for s in frame.imsets], source, report)
    dqicorr(frame, plan, ccd, source, report)
    lays = {s.chip: amp_layout(ccdamp, s.chip, s.sci.shape) for s in frame.imsets}
    # hstcal writes the first imset's values, 0 for the amps CCDAMP does not name.
    first = ccd[frame.imsets[0].chip]
    used = ccdamp.strip().upper()
    for letter in "ABCD":
        on = letter in used and letter in first.amps
        ph[f"ATODGN{letter}"] = first.amp(letter).gain if on else 0.0
        ph[f"READNSE{letter}"] = first.amp(letter).readnoise if on else 0.0
    add_history(ph, f"CCD parameters from CCDTAB={ph.get('CCDTAB')}")
    bias = None
    if plan.runs("BIASCORR"):
        bias = load_ref_imsets(ref_file(ph, "BIASFILE", source))
    bias_in_e = bias is not None and str(bias.primary.get("BUNIT", bias.imsets[0].sci_header
                                                          .get("BUNIT", ""))).strip().upper() \
        == "ELECTRONS"
    for imset in frame.imsets:
        lay, p = lays[imset.chip], ccd[imset.chip]
        gain = lay.quad({a: p.amp(a).gain for a in lay.amps})
        if bias is not None and not bias_in_e:  # bias, then gain: one pass
            b = ref_for(bias, imset)
            subtract_bias_gain(imset.sci, imset.err, imset.dq, b.sci, b.err, b.dq, gain,
                               lay.ampx, lay.ampy)
        else:
            K.multiply_quadrants(imset.sci, imset.err, gain, lay.ampx, lay.ampy)
        if bias is not None and bias_in_e:
            b = ref_for(bias, imset)
            K.subtract_scaled(imset.sci, imset.err, imset.dq, b.sci, b.err, b.dq, 1.0)
        for h in (imset.sci_header, imset.err_header):
            h["BUNIT"] = "ELECTRONS"
    if bias is not None:
        complete(ph, "BIASCORR", f"BIASFILE={ph['BIASFILE']}")
        report(f"BIASCORR: {ph['BIASFILE']}")
    elif "BIASCORR" in plan.dummy:
        plan.skip(ph, "BIASCORR", report)
    overscans: dict[int, Overscan | None] = {}
    if "BLEVCORR" in plan.dummy:
        # hstcal: no bias level subtracted, no trim, and still BLEVCORR=COMPLETE
        dummy_blev_history(ph, plan.dummy["BLEVCORR"][0], report)
    elif plan.runs("BLEVCORR"):
        oscn = ref_file(ph, "OSCNTAB", source)
        binning = (int(ph.get("BINAXIS1", 1)), int(ph.get("BINAXIS2", 1)))
        report(f"BLEVCORR: {ph['OSCNTAB']}")
        table = read_oscntab(oscn)
        for imset in frame.imsets:
            overscans[imset.chip] = find_overscan(oscn, ccdamp, imset.chip, binning,
                                                  imset.sci.shape, table)
        if _post_sm4_full_frame(ph, frame, overscans, source):
            _destripe(frame, ph, report)
        elif bias_shift_subarray(ph, frame, overscans, source):
            imset = frame.imsets[0]
            level = subarray_bias_shift(imset.sci, ccdamp.strip().upper())
            imset.sci_header["MEANBLEV"] = (float(np.float32(level)),
                                            "mean of bias levels subtracted in electrons")
            report(f"  subarray BLEVCORR: bias shift corrected, level {level:.6g} e")
        else:
            for imset in frame.imsets:
                sdq = int(imset.sci_header.get("SDQFLAGS", DEFAULT_SDQFLAGS))
                mean, _ = _blevcorr(imset, overscans[imset.chip], lays[imset.chip],
                                    ccd[imset.chip], sdq, report)
                imset.sci_header["MEANBLEV"] = (mean,
                                                "mean of bias levels subtracted in electrons")
        complete(ph, "BLEVCORR", f"OSCNTAB={ph['OSCNTAB']}")
    # hstcal takes the overhead from the first imset's CCDTAB row.
    ph["DARKTIME"] = (darktime(ph, source, ccd[frame.imsets[0].chip]), "dark time (s)")
    satu = satufile(ph, source) if bias is not None and overscans else None
    for imset in frame.imsets:
        lay, p = lays[imset.chip], ccd[imset.chip]
        if satu is not None:
            o = overscans.get(imset.chip)
            flag_full_well(imset, satu, (o.trimx, o.trimy) if o is not None else ((0, 0), (0, 0)))
        elif bias is not None and overscans:
            K.flag_saturation(imset.sci, imset.dq, lay.quad({a: p.saturate for a in lay.amps}),
                              lay.ampx, lay.ampy)
        if err_was_zero:
            K.init_err(imset.sci, imset.err, lay.quad({a: p.amp(a).readnoise for a in lay.amps}),
                       lay.ampx, lay.ampy)
    if err_was_zero:
        add_history(ph, "Uncertainty array initialized from read noise and Poisson noise")
    if "SINKCORR" in plan.dummy:
        plan.skip(ph, "SINKCORR", report)
    elif plan.runs("SINKCORR"):
        snkc = load_ref_imsets(ref_file(ph, "SNKCFILE", source))
        n = sinkcorr(frame, snkc, str(snkc.path))
        complete(ph, "SINKCORR", f"SNKCFILE={ph['SNKCFILE']}")
        report(f"SINKCORR: {ph['SNKCFILE']} ({n} pixels flagged)")
    for imset in frame.imsets:
        o = overscans.get(imset.chip)
        if o is not None:
            _trim(imset, o)
    stamp_version(ph)


def _trim(imset: Imset, o: Overscan) -> None:
    ny, nx = imset.sci.shape
    x0, x1, y0, y1 = o.trimx[0], nx - o.trimx[1], o.trimy[0], ny - o.trimy[1]
    # Views, not copies: the frame is only written from here on (the writer takes strided
    # arrays), so the trimmed data is never copied.
    box = (slice(y0, y1), slice(x0, x1))
    imset.sci, imset.err, imset.dq = imset.sci[box], imset.err[box], imset.dq[box]
    for h in (imset.sci_header, imset.err_header, imset.dq_header):
        for key, off in (("LTV1", x0), ("LTV2", y0), ("CRPIX1", x0), ("CRPIX2", y0)):
            if key in h or key.startswith("LTV"):
                h[key] = float(h.get(key, 0.0)) - off
        h["SIZAXIS1"], h["SIZAXIS2"] = x1 - x0, y1 - y0


def acsccd(input_path: str | Path, output_path: str | Path, *, overwrite: bool = False,
           switches: Mapping[str, str] | None = None,
           report: Report = quiet, keywords: Mapping[str, str] | None = None) -> Path:
    """Run ACSCCD on a raw file and write the ``_blv_tmp`` file.

    Parameters
    ----------
    input_path : str or pathlib.Path
        Raw frame (``*_raw.fits``).
    output_path : str or pathlib.Path
        Output (``*_blv_tmp.fits``).
    overwrite : bool
        Replace an existing output (hstcal never does).
    switches : mapping, optional
        Switch values (``{"BLEVCORR": "OMIT"}``) that replace the input header's.
    report : callable
        Receives progress lines.
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
    return run_file_step("ACSCCD", calibrate_ccd, input_path, output_path, overwrite=overwrite,
                         switches=switches, keywords=keywords, report=report)
