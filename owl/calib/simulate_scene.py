"""The sky scene and the charge effects of the simulator: stars, cosmic rays, bleeding.

Everything here works on one trimmed WFC chip (2048 x 4096, electrons) and is vectorised
with numpy; the random generator is always passed in, so a seed fixes the result.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from owl.calib.wfc_layout import TRIM_SHAPE

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

STAR_DTYPE = np.dtype([("chip", np.int8), ("x", np.float32), ("y", np.float32),
                       ("flux", np.float32)])
"""Star list rows: CCDCHIP, trimmed column ``x`` and row ``y`` (0-based), electrons."""

PSF_CORE_SIGMA = 0.8
PSF_HALO_SIGMA = 2.5
PSF_HALO_FRACTION = 0.10
PSF_RADIUS = 10
FLUX_RANGE = (1e2, 5e5)
BRIGHT_RANGE = (1e6, 5e6)

CR_RATE = 28.0
"""Cosmic-ray events per second per WFC chip (about 1.5 per cm^2 per s on 19 cm^2)."""
CR_MAX_LENGTH = 30


def make_stars(rng: np.random.Generator, n_per_chip: int, n_bright: int) -> npt.NDArray[np.void]:
    """Draw a star list for both chips: log-uniform fluxes over 1e2..5e5 e-, plus bright stars.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source.
    n_per_chip : int
        Stars per chip with fluxes log-uniform in 1e2..5e5 e-.
    n_bright : int
        Extra stars per chip with 1e6..5e6 e-, whose cores saturate and bleed along columns
        (stars above about 4e5 e- already reach full well in their central pixel).

    Returns
    -------
    numpy.ndarray
        Structured array with :data:`STAR_DTYPE` rows.
    """
    lo, hi = np.log10(FLUX_RANGE[0]), np.log10(FLUX_RANGE[1])
    rows = []
    for chip in (2, 1):
        n = n_per_chip + n_bright
        stars = np.zeros(n, dtype=STAR_DTYPE)
        stars["chip"] = chip
        margin = PSF_RADIUS + 2
        stars["x"] = rng.uniform(margin, TRIM_SHAPE[1] - margin, n)
        stars["y"] = rng.uniform(margin, TRIM_SHAPE[0] - margin, n)
        flux = 10.0 ** rng.uniform(lo, hi, n)
        flux[n_per_chip:] = rng.uniform(*BRIGHT_RANGE, n_bright)
        stars["flux"] = flux
        rows.append(stars)
    return np.concatenate(rows)


def render_stars(stars: npt.NDArray[np.void], chip: int) -> F32:
    """Noise-free image (electrons) of the stars on ``chip``; each star's flux is conserved.

    The PSF is a core Gaussian (sigma 0.8 px) plus a 10 % halo Gaussian (sigma 2.5 px),
    sampled on a 21 x 21 stamp and normalised to the star's flux.
    """
    sel = stars[stars["chip"] == chip]
    offsets = np.arange(-PSF_RADIUS, PSF_RADIUS + 1)
    ix = np.rint(sel["x"]).astype(np.int64)
    iy = np.rint(sel["y"]).astype(np.int64)
    dx = offsets[None, None, :] - (sel["x"] - ix)[:, None, None]
    dy = offsets[None, :, None] - (sel["y"] - iy)[:, None, None]
    r2 = dx * dx + dy * dy
    psf = (1 - PSF_HALO_FRACTION) / PSF_CORE_SIGMA**2 * np.exp(-0.5 * r2 / PSF_CORE_SIGMA**2)
    psf += PSF_HALO_FRACTION / PSF_HALO_SIGMA**2 * np.exp(-0.5 * r2 / PSF_HALO_SIGMA**2)
    psf *= (sel["flux"] / psf.sum(axis=(1, 2)))[:, None, None]
    rows = iy[:, None, None] + offsets[None, :, None]
    cols = ix[:, None, None] + offsets[None, None, :]
    flat_index = np.broadcast_to(rows * TRIM_SHAPE[1] + cols, psf.shape)
    image = np.bincount(flat_index.ravel(), weights=psf.ravel(),
                        minlength=TRIM_SHAPE[0] * TRIM_SHAPE[1])
    return image.reshape(TRIM_SHAPE).astype(np.float32)


def cosmic_rays(rng: np.random.Generator, exptime: float) -> tuple[F32, Mask]:
    """Cosmic-ray charge (electrons) hitting one chip during ``exptime`` seconds.

    Each event is a straight track of 1-30 pixels at a random angle carrying a log-normal
    charge (median 2000 e-, 300..60000 e-), spread evenly along the track.

    Returns
    -------
    charge : ndarray of float32, shape (2048, 4096)
        Deposited electrons.
    mask : ndarray of bool
        Pixels that received cosmic-ray charge.
    """
    n = int(rng.poisson(CR_RATE * exptime))
    length = np.minimum(1 + rng.exponential(3.0, n), CR_MAX_LENGTH)
    energy = np.clip(rng.lognormal(np.log(2000.0), 0.9, n), 300.0, 60000.0)
    angle = rng.uniform(0, np.pi, n)
    x0 = rng.uniform(0, TRIM_SHAPE[1], n)
    y0 = rng.uniform(0, TRIM_SHAPE[0], n)
    steps = np.arange(CR_MAX_LENGTH + 1)[None, :]
    npts = np.ceil(length).astype(np.int64)[:, None] + 1
    used = steps < npts
    frac = np.where(used, steps / np.maximum(npts - 1, 1), 0.0)
    xs = np.rint(x0[:, None] + frac * length[:, None] * np.cos(angle)[:, None]).astype(np.int64)
    ys = np.rint(y0[:, None] + frac * length[:, None] * np.sin(angle)[:, None]).astype(np.int64)
    inside = used & (xs >= 0) & (xs < TRIM_SHAPE[1]) & (ys >= 0) & (ys < TRIM_SHAPE[0])
    weight = np.broadcast_to((energy / npts[:, 0])[:, None], used.shape)
    charge = np.bincount((ys * TRIM_SHAPE[1] + xs)[inside], weights=weight[inside],
                         minlength=TRIM_SHAPE[0] * TRIM_SHAPE[1]).reshape(TRIM_SHAPE)
    return charge.astype(np.float32), charge > 0


def bleed(image: F32, full_well: F32) -> Mask:
    """Spill charge above full well up and down its column, conserving charge, in place.

    A run of pixels above full well grows, one pixel at a time alternately on each side,
    until the charge it holds fits under full well; the run is then filled to full well and
    the last pixel added takes the remainder. Charge that would leave the chip is lost.

    Returns
    -------
    ndarray of bool
        Pixels left at full well (the bleed trails and saturated cores).
    """
    saturated = np.zeros(image.shape, dtype=bool)
    for c in np.flatnonzero((image > full_well).any(axis=0)):
        column = image[:, c].astype(np.float64)
        wells = full_well[:, c].astype(np.float64)
        nrows = column.size
        while True:
            over = np.flatnonzero(column > wells)
            if over.size == 0:
                break
            lo = hi = int(over[0])
            charge, cap = column[lo], wells[lo]
            last, up = lo, True
            while charge > cap and (lo > 0 or hi < nrows - 1):
                if (up and hi < nrows - 1) or lo == 0:
                    hi += 1
                    last = hi
                else:
                    lo -= 1
                    last = lo
                charge += column[last]
                cap += wells[last]
                up = not up
            column[lo:hi + 1] = wells[lo:hi + 1]
            if charge < cap:
                column[last] = wells[last] - (cap - charge)
            saturated[lo:hi + 1, c] = True
            saturated[last, c] = charge >= cap
        image[:, c] = column.astype(np.float32)
    return saturated
