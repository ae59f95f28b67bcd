"""ACSREJ science: cosmic-ray rejection and combination of a CR-split stack (pure arrays).

Follows hstcal's ``acsrej_sky``, ``acsrej_init`` and ``acsrej_loop`` (units: electrons for
images, seconds for exposure times, e/s for the comparison image):

1. Sky per image (``skysub='mode'``): the mode of a 1-e⁻ histogram of the pixels with DQ 0
   (range from the first image: minimum to twice the mean), refined by a parabola through the
   peak bin, or 0 (``'none'``).
2. Initial guess, per pixel, of the sky-subtracted, exposure-normalised images whose DQ has
   none of the ``badinpdq`` bits: their median (mean of the two middle values for an even
   count) or their minimum.
3. For each sigma in ``crsigmas``: a pixel is a HIT when
   ``(pic - ave)² > sigma²·(ERR² + (scalense/100·max(ave·t, 0))²) / t²`` (``pic`` the
   sky-subtracted image in e/s, ``t`` its exposure time). A pixel within ``crradius`` of a HIT
   becomes SPILL when ``(pic - ave)² > crthresh²·sigma²·ERR²/t²`` (all of them when
   ``crthresh <= 0``). The guess is rebuilt as the exposure-weighted mean of the pixels that
   are neither HIT, SPILL nor bad.
4. Output, with ``T`` the total exposure time and ``t_good`` the exposure of the images kept at
   a pixel: ``SCI = ave·T + Σ sky`` (``Σ sky`` alone where no image is kept),
   ``ERR = (T/t_good)·sqrt(Σ_kept ERR²)``, ``DQ`` the OR of the inputs' DQ (without the CR bit
   and bit 2) plus the CR bit where every image was rejected.
5. SHADCORR (``shading``): the SHADFILE ``S`` enters as hstcal's ``acsrej_loop`` puts it in:
   the SCALENSE signal of image ``k`` is ``max(ave·t/(1 + S/t), 0)`` and the rebuilt guess
   ``(Σ/t_good)/(1 + S/t_good)``, with hstcal's choice of rows and columns of ``S``
   (:mod:`owl.calib.crrej_shading`).

The kernels (:mod:`owl.calib.crrej_kernels`) reproduce hstcal's mask rules, including the
input DQ seeding the rejection mask (DQ bits 2, 4 and 8 never enter the sum). Two hstcal
behaviours are plainly wrong; owl follows them by default and offers the fix as a
parameter: ``symmetric_spill`` grows SPILL from hits on the rows below too (hstcal's
scrolling buffer loses the marks it puts on rows it has already summed), ``good_minimum``
takes the minimum guess over the good pixels only (hstcal's own comment calls its version
"slightly buggy": a flagged value resets the guess to 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from owl.calib import crrej_kernels as CK
from owl.calib.crrej_guess import median_guess, minimum_guess
from owl.calib.crrej_shading import RejShading
from owl.calib.crrej_sky import sky_levels

#: DQ bit hstcal's ACSREJ sets for rejected pixels (``DATAREJECT``).
DATAREJECT = 8192

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class CrRejParams:
    """ACSREJ parameters (the CRREJTAB columns of the same names).

    Attributes
    ----------
    crsigmas : tuple of float
        Rejection thresholds, one iteration each.
    crradius : float
        Radius (pixels) within which neighbours of a hit may be flagged.
    crthresh : float
        Propagation factor applied to the sigma for those neighbours.
    scalense : float
        Multiplicative noise, percent of the signal.
    initgues : str
        ``'median'`` or ``'minimum'`` (any prefix of 3+ letters).
    skysub : str
        ``'mode'`` or ``'none'``.
    badinpdq : int
        DQ bits that exclude an input pixel.
    crmask : bool
        Write the CR flags back into the inputs' DQ.
    symmetric_spill : bool
        Grow SPILL from hits on every side (False: hstcal's rows-above-and-same-row growth).
    good_minimum : bool
        Minimum guess over the good pixels only (False: hstcal's rule).
    """

    crsigmas: tuple[float, ...] = (6.5, 5.5, 4.5)
    crradius: float = 2.1
    crthresh: float = 0.5555
    scalense: float = 0.0
    initgues: str = "minimum"
    skysub: str = "mode"
    badinpdq: int = 39
    crmask: bool = True
    symmetric_spill: bool = False
    good_minimum: bool = False

    def __post_init__(self) -> None:
        if not self.crsigmas or any(s <= 0 for s in self.crsigmas):
            raise ValueError(f"crsigmas must be positive numbers, got {self.crsigmas}")
        if self.initgues[:3].lower() not in ("med", "min"):
            raise ValueError(f"initgues must be 'median' or 'minimum', got {self.initgues!r}")
        if self.skysub.lower() not in ("mode", "none"):
            raise ValueError(f"skysub must be 'mode' or 'none', got {self.skysub!r}")
        if not 0 <= self.crradius < 16:
            raise ValueError(f"crradius must be in [0, 16) pixels, got {self.crradius}")


@dataclass(frozen=True)
class CrRejResult:
    """The combined image of one chip and what was rejected.

    Attributes
    ----------
    sci, err : ndarray of float32
        Combined science (electrons, sky added back) and error (electrons).
    dq : ndarray of int16
        Combined data quality.
    crmask : ndarray of bool, shape (n, ny, nx)
        Pixels rejected (HIT or SPILL) in each input.
    sky : ndarray of float32
        Sky of each input, electrons.
    nrej : int
        Number of rejected input pixels (all inputs).
    skysum : float
        Sum of the skies (float32, clamped at 0), added back to SCI.
    """

    sci: F32
    err: F32
    dq: NDArray[np.int16]
    crmask: NDArray[np.bool_]
    sky: F32
    nrej: int
    skysum: float = 0.0


def _scratch(scis: tuple[F32, ...], errs: tuple[F32, ...],
             overwrite: bool) -> tuple[tuple[F32, ...], tuple[F32, ...]]:
    """Where :func:`~owl.calib.crrej_kernels.scaled` writes: the inputs themselves when they
    may be overwritten (writeable, no two sharing memory), else new arrays."""
    arrays = scis + errs
    if overwrite and all(a.flags.writeable for a in arrays) and not any(
            np.may_share_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:]):
        return scis, errs
    return (tuple(np.empty_like(a) for a in scis), tuple(np.empty_like(a) for a in errs))


def crrej(sci: F32 | Sequence[F32], err: F32 | Sequence[F32],
          dq: NDArray[np.int16] | Sequence[NDArray[np.int16]], exptime: Sequence[float],
          params: CrRejParams, crval: int = DATAREJECT, *,
          bias_or_dark: bool = False, overwrite: bool = False,
          shading: RejShading | None = None) -> CrRejResult:
    """Reject cosmic rays in a stack of one chip and combine it (see the module docstring).

    Parameters
    ----------
    sci, err : ndarray of float32, shape (n, ny, nx), or n arrays of shape (ny, nx)
        Images and their errors, electrons.
    dq : ndarray of int16, shape (n, ny, nx), or n arrays of shape (ny, nx)
        Their data quality.
    exptime : sequence of float
        EXPTIME of each image (s). When all are 0 (biases) each counts as 1 s.
    params : CrRejParams
        Rejection parameters.
    crval : int
        DQ bit marking a rejected pixel.
    bias_or_dark : bool
        The stack is of BIAS or DARK frames (IMAGETYP): DQ bit 4 is then kept in the sum.
    overwrite : bool
        ``sci`` and ``err`` may be overwritten (with the sky-subtracted images in e/s and the
        squared errors) instead of copied: for callers done with them.
    shading : RejShading, optional
        SHADCORR: the SHADFILE as hstcal's ACSREJ applies it
        (:func:`owl.calib.crrej_shading.rej_shading`). None: no shading correction.

    Returns
    -------
    CrRejResult

    Raises
    ------
    ValueError
        For fewer than two images, mismatched shapes or a negative exposure time.
    """
    scis = tuple(np.ascontiguousarray(a, dtype=np.float32) for a in sci)
    errs = tuple(np.ascontiguousarray(a, dtype=np.float32) for a in err)
    shapes = {a.shape for a in scis}
    if len(scis) < 2 or len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"need a stack of at least two images of one 2-D shape, got "
                         f"{len(scis)} of shapes {sorted(shapes)}")
    shape = (len(scis), *scis[0].shape)
    dqs = tuple(np.ascontiguousarray(a, dtype=np.int16) for a in dq)
    if ({a.shape for a in errs} != shapes or len(errs) != shape[0]
            or {a.shape for a in dqs} != shapes or len(dqs) != shape[0]):
        raise ValueError(f"SCI {shape}, ERR {[a.shape for a in errs]} and DQ "
                         f"{[a.shape for a in dqs]} differ")
    efac = np.asarray(exptime, dtype=np.float32)
    if efac.shape != (shape[0],) or (efac < 0).any():
        raise ValueError(f"need one non-negative exposure time per image, got {exptime}")
    if not (efac > 0).any():
        efac = np.ones_like(efac)
    texpt = np.float32(0)
    for t in efac:
        texpt = np.float32(texpt + t)
    sky = sky_levels(scis, dqs, params.skysub, params.badinpdq)
    skysum = np.float32(0)
    for v in sky:
        skysum = np.float32(skysum + v)
    skysum = max(skysum, np.float32(0))
    dqpat = int(params.badinpdq)
    # BIAS and DARK stacks: hstcal leaves bit 4 in the sum and out of BADINPDQ.
    maskdq = CK.SPILL | CK.HIT | (0 if bias_or_dark else CK.EXCLUDE)
    if bias_or_dark:
        dqpat &= ~CK.EXCLUDE
    pic, ee = _scratch(scis, errs, overwrite)
    CK.scaled(scis, errs, sky, efac, pic, ee)
    dq = dqs
    ave = np.empty(shape[1:], dtype=np.float32)
    if params.initgues[:3].lower() == "med":
        median_guess(pic, dq, efac, int(params.badinpdq), ave)
    else:
        minimum_guess(pic, dq, efac, int(params.badinpdq), params.good_minimum, ave)
    if shading is not None and (shading.image.shape[1] != shape[2]
                                or shading.image.shape[0] < shape[1]
                                or shading.thr_row.shape != (shape[1],)):
        raise ValueError(f"shading image {shading.image.shape} does not fit {shape[1:]}")
    shade = CK.shade_args(None if shading is None else shading.image,
                          None if shading is None else shading.thr_row,
                          0 if shading is None else shading.ncols, efac)
    state = np.empty(shape, dtype=np.uint8)
    nhit = np.zeros(shape[:2], dtype=np.int64)
    start, col = CK.excluded_index(dq, efac, dqpat)
    out_err = np.zeros(shape[1:], dtype=np.float32)
    out_dq = np.zeros(shape[1:], dtype=np.int16)
    rejected = np.zeros(shape, dtype=np.bool_)
    nrej_rows = np.zeros(shape[1], dtype=np.int64)
    spans = CK.spans(params.crradius)
    thresh = np.float32(params.crthresh)
    psig2 = thresh * thresh if params.crthresh > 0 else np.float32(-1.0)
    scale = np.float32(params.scalense / 100.0)
    niter = len(params.crsigmas)
    for it, sigma in enumerate(params.crsigmas):
        sig2 = np.float32(sigma) * np.float32(sigma)
        CK.detect(pic, ee, dq, efac, ave, sig2, scale, dqpat, shade, state, nhit)
        CK.reach_excluded(pic, ee, efac, ave, sig2, psig2, scale, spans, start, col, shade,
                          state, nhit)
        hstart, hcol = CK.hit_index(state, nhit)
        CK.spill_combine(pic, ee, dq, efac, ave, sig2, psig2, spans,
                         params.symmetric_spill, maskdq, crval, shade, state, hstart, hcol,
                         it == niter - 1, texpt, skysum, out_err, out_dq, rejected, nrej_rows)
    return CrRejResult(sci=ave, err=out_err, dq=out_dq, crmask=rejected, sky=sky,
                       nrej=int(nrej_rows.sum()), skysum=float(skysum))
