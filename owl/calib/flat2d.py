"""ACS2D's FLATCORR (PFLTFILE, DFLTFILE, LFLTFILE) and SHADCORR (SHADFILE), as hstcal's.

FLATCORR divides by each flat that is named (not blank or ``N/A``), in hstcal's order: the
pixel flat, then the delta flat, then the low-order flat, each a separate division with
hstcal's ``div1d`` ERR propagation (a zero flat pixel flags DQ 512 and leaves the pixel).
A named file that does not exist is an error, and so is naming none of the three. A flat
with PEDIGREE=DUMMY is not applied (:mod:`owl.calib.pedigree`).

The low-order flat must have the science image's size and binning. hstcal's ``acs2d`` has a
branch meant to expand a binned LFLTFILE, but it divides by a line it never fills and then
crashes (10.5.0's ``acs2d.e`` ends with a segmentation fault on any LFLTFILE), and hstcal's
``wf32d`` refuses a binned LFLTFILE outright; owl divides by a same-size one as calwf3 does
and refuses a binned one with an error naming the file.

SHADCORR (hstcal's ``doShad``) divides by ``1 + SHADFILE / t`` with ``t`` = EXPTIME /
NCOMBINE. A SHADFILE binned more than the image is expanded as hstcal expands it: two binned
rows at a time (``SECTLINES``), each pair linearly interpolated, or extrapolated, to ``2 *
bin`` rows and across the columns with ``unbinsect``'s weights and DQ rules, all in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from owl.calib import kernels as K
from owl.calib.fitsio import Frame, Imset, add_history, set_switch
from owl.calib.pedigree import FLATS, Ref, named
from owl.calib.step import Report, complete, header_float, load_ref_imsets, ref_file, ref_for
from owl.errors import CalibError

F32 = NDArray[np.float32]
I16 = NDArray[np.int16]

#: hstcal's ``SECTLINES``: binned reference rows expanded together.
SECTLINES = 2


def _bin_corner(header: Any, ltv_key: str, ltm_key: str) -> tuple[int, int]:
    """Bin size and corner of one axis from LTM/LTV (hstcal's ``FromLT``, rsize 1)."""
    ltm = float(header.get(ltm_key, 1.0))
    ltv = float(header.get(ltv_key, 0.0))
    if ltm <= 0:
        raise CalibError(f"{ltm_key}={ltm} is not positive")
    dbin = 1.0 / ltm
    corner = (dbin - 1.0) - dbin * ltv
    return int(np.rint(dbin)), int(np.rint(corner))


def binning(ref: Imset, imset: Imset, path: str) -> tuple[int, int, int, int]:
    """``(rx, ry, x0, y0)`` of a reference binned more than the image (``FindLine``).

    Returns ``(1, 1, 0, 0)``-like values with ``rx == ry == 1`` when the reference is not
    binned more than the science image.
    """
    try:
        rbx, rcx = _bin_corner(ref.sci_header, "LTV1", "LTM1_1")
        rby, rcy = _bin_corner(ref.sci_header, "LTV2", "LTM2_2")
        sbx, scx = _bin_corner(imset.sci_header, "LTV1", "LTM1_1")
        sby, scy = _bin_corner(imset.sci_header, "LTV2", "LTM2_2")
    except CalibError as exc:
        raise CalibError(f"{path}: {exc}") from None
    if rbx > sbx or rby > sby:
        return rbx // sbx, rby // sby, (scx - rcx) // rbx, (scy - rcy) // rby
    return 1, 1, 0, 0


def _weights(n: int, nbin: int, npts: int) -> tuple[NDArray[np.int64], F32, F32]:
    """hstcal's ``InterpInfo`` for output pixels ``0..n-1``: index, and weights p, q."""
    offset = np.float32(nbin - 1) / np.float32(2.0)
    a = (np.arange(n, dtype=np.float32) - offset) / np.float32(nbin)
    i = np.clip(np.trunc(a).astype(np.int64), 0, None)
    i = np.where(i >= npts - 1, npts - 2, i)
    q = (a - i.astype(np.float32)).astype(np.float32)
    return i, (np.float32(1.0) - q).astype(np.float32), q


def _dq_index(n: int, nbin: int, npts: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """hstcal's ``InterpDQInfo``: first index and whether its neighbour is ORed in too."""
    offset = np.float32(nbin - 1) / np.float32(2.0)
    a = (np.arange(n, dtype=np.float32) - offset) / np.float32(nbin)
    i1 = np.trunc(a).astype(np.int64)
    two = a != i1.astype(np.float32)
    low, high = i1 <= 0, i1 >= npts - 1
    i1 = np.where(low, 0, np.where(high, npts - 1, i1))
    return i1, two & ~low & ~high


def unbin_section(sci: F32, err: F32, dq: I16, bx: int, by: int) -> tuple[F32, F32, I16]:
    """Expand a section of binned rows by ``(by, bx)`` as hstcal's ``unbinsect`` does."""
    iny, inx = sci.shape
    if bx == 1 and by == 1:
        return sci.copy(), err.copy(), dq.copy()
    i, p, q = _weights(inx * bx, bx, inx) if bx > 1 else (
        np.arange(inx), np.ones(inx, np.float32), np.zeros(inx, np.float32))
    j, r, s = _weights(iny * by, by, iny) if by > 1 else (
        np.arange(iny), np.ones(iny, np.float32), np.zeros(iny, np.float32))
    ix1, ix2 = (i, np.minimum(i + 1, inx - 1))
    jy1, jy2 = (j, np.minimum(j + 1, iny - 1))
    if bx == 1:  # interpolate in Y only
        out = r[:, None] * sci[jy1] + s[:, None] * sci[jy2]
        e = r[:, None] * err[jy1] * err[jy1] + s[:, None] * err[jy2] * err[jy2]
    elif by == 1:  # in X only
        out = p[None, :] * sci[:, ix1] + q[None, :] * sci[:, ix2]
        e = p[None, :] * err[:, ix1] * err[:, ix1] + q[None, :] * err[:, ix2] * err[:, ix2]
    else:
        pr, qr = p[None, :] * r[:, None], q[None, :] * r[:, None]
        ps, qs = p[None, :] * s[:, None], q[None, :] * s[:, None]
        out = (pr * sci[jy1][:, ix1] + qr * sci[jy1][:, ix2]) + ps * sci[jy2][:, ix1] \
            + qs * sci[jy2][:, ix2]
        e = ((pr * err[jy1][:, ix1] * err[jy1][:, ix1] + qr * err[jy1][:, ix2] * err[jy1][:, ix2])
             + ps * err[jy2][:, ix1] * err[jy2][:, ix1]) + qs * err[jy2][:, ix2] * err[jy2][:, ix2]
    with np.errstate(invalid="ignore"):
        e_out = np.sqrt(e.astype(np.float64)).astype(np.float32)
    xi1, xtwo = _dq_index(inx * bx, bx, inx) if bx > 1 else (
        np.arange(inx), np.zeros(inx, bool))
    yj1, ytwo = _dq_index(iny * by, by, iny) if by > 1 else (
        np.arange(iny), np.zeros(iny, bool))
    d = dq[yj1][:, xi1]
    d = d | np.where(xtwo[None, :], dq[yj1][:, np.minimum(xi1 + 1, inx - 1)], 0)
    d = d | np.where(ytwo[:, None], dq[np.minimum(yj1 + 1, iny - 1)][:, xi1], 0)
    d = d | np.where(ytwo[:, None] & xtwo[None, :],
                     dq[np.minimum(yj1 + 1, iny - 1)][:, np.minimum(xi1 + 1, inx - 1)], 0)
    return out.astype(np.float32), e_out, d.astype(np.int16)


def expand_shading(ref: Imset, shape: tuple[int, int], rx: int, ry: int, x0: int, y0: int,
                   path: str) -> tuple[F32, F32, I16]:
    """A binned SHADFILE chip expanded to the science ``shape`` the way ``doShad`` does."""
    ny, nx = shape
    nrows = ref.sci.shape[0]
    sci = np.empty(shape, np.float32)
    err = np.empty(shape, np.float32)
    dq = np.empty(shape, np.int16)
    done, j = 0, y0
    while done < ny:
        if j < 0 or j + SECTLINES > nrows:
            raise CalibError(f"{path}: binned shading rows {j}..{j + SECTLINES - 1} are "
                             f"outside its {nrows} rows")
        rows = slice(j, j + SECTLINES)
        s, e, d = unbin_section(ref.sci[rows], ref.err[rows], ref.dq[rows], rx, ry)
        if x0 < 0 or x0 + nx > s.shape[1]:
            raise CalibError(f"{path}: expanded shading of width {s.shape[1]} does not cover "
                             f"{nx} columns from {x0}")
        take = min(s.shape[0], ny - done)
        cols = slice(x0, x0 + nx)
        sci[done:done + take], err[done:done + take] = s[:take, cols], e[:take, cols]
        dq[done:done + take] = d[:take, cols]
        done += take
        j += SECTLINES
    return sci, err, dq


def _refuse_spot_flat(ph: Any, source: str) -> None:
    """hstcal applies a coronagraphic spot flat (ACS/HRC) when CFLTFILE and SPOTTAB both name
    files; owl calibrates ACS/WFC and has none, so that pair is an error, not a silent
    difference. A file named alone is not applied (as in hstcal) but must exist."""
    spot = [key for key in ("CFLTFILE", "SPOTTAB") if named(ph.get(key))]
    for key in spot:
        ref_file(ph, key, source)  # named but missing: an error, as hstcal's MissingFile
    if len(spot) == 2:
        raise CalibError(f"{source}: CFLTFILE={ph['CFLTFILE']} and SPOTTAB={ph['SPOTTAB']} "
                         "name a coronagraphic spot flat (ACS/HRC), which owl does not "
                         "apply; set both to N/A for ACS/WFC data")


def flatcorr(frame: Frame, source: str, report: Report, dummy: Sequence[Ref] = ()) -> None:
    """Divide by the PFLTFILE, DFLTFILE and LFLTFILE that the header names, except the
    ``dummy`` ones (PEDIGREE=DUMMY: not applied, as hstcal; their history lines and PEDIGREE
    are recorded after the FLATCORR line)."""
    ph = frame.primary
    _refuse_spot_flat(ph, source)
    names = [key for key in FLATS if named(ph.get(key))]
    if not names:
        raise CalibError(f"{source}: FLATCORR=PERFORM but PFLTFILE, DFLTFILE and LFLTFILE "
                         "are all blank")
    skipped = {r.keyword for r in dummy}
    applied = [key for key in names if key not in skipped]
    for key in applied:
        path = ref_file(ph, key, source)
        flat = load_ref_imsets(path)
        for imset in frame.imsets:
            if key == "LFLTFILE":
                rx, ry, _, _ = binning(flat.imset(imset.chip), imset, str(path))
                if rx != 1 or ry != 1:
                    raise CalibError(
                        f"{path}: LFLTFILE is binned {rx}x{ry} relative to the image; only "
                        "an LFLTFILE of the image's size can be applied (hstcal has no "
                        "working interpolation of a binned low-order flat)")
            f = ref_for(flat, imset)
            K.divide_flat(imset.sci, imset.err, imset.dq, f.sci, f.err, f.dq)
    complete(ph, "FLATCORR", ", ".join(f"{k}={ph[k]}" for k in applied))
    for ref in dummy:
        for line in ref.history():
            ph.add_history(line)
        report(ref.trailer() + " (not applied)")
    report("FLATCORR: " + ", ".join(str(ph[k]) for k in applied))


def shadcorr(frame: Frame, source: str, report: Report) -> None:
    """Divide by ``1 + SHADFILE * NCOMBINE / EXPTIME`` (hstcal's ``doShad``)."""
    ph = frame.primary
    exptime = header_float(ph, "EXPTIME", None, source)
    if exptime <= 0:
        set_switch(ph, "SHADCORR", "SKIPPED")
        add_history(ph, "SHADCORR not performed ...")
        report("SHADCORR skipped: EXPTIME must be positive")
        return
    path = ref_file(ph, "SHADFILE", source)
    shad = load_ref_imsets(path)
    for imset in frame.imsets:
        ncombine = int(imset.sci_header.get("NCOMBINE", 1) or 1)
        t = np.float32(exptime / ncombine)
        k = np.float32(1.0 / float(t))
        ref = shad.imset(imset.chip)
        rx, ry, x0, y0 = binning(ref, imset, str(path))
        if rx == 1 and ry == 1:
            r = ref_for(shad, imset)
            z_sci, z_err, z_dq = r.sci, r.err, r.dq
        else:
            z_sci, z_err, z_dq = expand_shading(ref, imset.sci.shape, rx, ry, x0, y0,
                                                str(path))
        factor = (k * z_sci).astype(np.float32) + np.float32(1.0)
        K.divide_flat(imset.sci, imset.err, imset.dq, np.ascontiguousarray(factor),
                      np.ascontiguousarray((k * z_err).astype(np.float32)),
                      np.ascontiguousarray(z_dq))
    complete(ph, "SHADCORR", f"SHADFILE={ph['SHADFILE']}")
    report(f"SHADCORR: {ph['SHADFILE']} (EXPTIME={exptime:g} s)")
