"""PNG previews of ACS/WFC frames: both chips as on the sky, zscale-stretched, downsampled."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from astropy.visualization import ZScaleInterval  # type: ignore[import-untyped, unused-ignore]
from PIL import Image

from owl.calib.fitsio import read_frame
from owl.errors import CalibError

F32 = npt.NDArray[np.float32]


def render_preview(
    path: str | os.PathLike[str], png_path: str | os.PathLike[str], *, width: int = 1024
) -> tuple[int, int]:
    """Write a greyscale PNG of the SCI arrays of a frame, WFC1 above WFC2.

    The chips are stacked as they lie on the sky (CCDCHIP 1 on top), block-averaged by the
    largest integer factor that keeps at least ``width`` columns, stretched with
    :class:`astropy.visualization.ZScaleInterval`, and resized to exactly ``width`` columns.

    Parameters
    ----------
    path : str or os.PathLike
        A frame readable by :func:`owl.calib.fitsio.read_frame` (raw, flt, ...).
    png_path : str or os.PathLike
        Output PNG.
    width : int, optional
        Width of the PNG in pixels; the height keeps the mosaic's aspect ratio.

    Returns
    -------
    tuple of int
        (width, height) of the PNG.

    Raises
    ------
    owl.errors.CalibError
        When the frame cannot be read or ``width`` is not positive.
    """
    if width < 1:
        raise CalibError(f"preview width must be positive, not {width}")
    frame = read_frame(path)
    # On the sky WFC1 lies above WFC2 (its row 0 meets WFC2's last row). Stack in FITS
    # order (row 0 at the bottom), then flip: PNG row 0 is the top.
    chips = sorted(frame.imsets, key=lambda s: s.chip, reverse=True)
    mosaic = np.flipud(np.vstack([s.sci.astype(np.float32) for s in chips]))
    factor = max(1, mosaic.shape[1] // width)
    small = _block_mean(mosaic, factor)
    finite = np.isfinite(small)
    if not finite.any():
        raise CalibError(f"{path}: SCI has no finite pixels to preview")
    small = np.where(finite, small, np.nanmedian(small))
    lo, hi = ZScaleInterval().get_limits(small)
    scaled = np.clip((small - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    image = Image.fromarray(np.rint(scaled * 255.0).astype(np.uint8), mode="L")
    height = max(1, round(mosaic.shape[0] * width / mosaic.shape[1]))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return width, height


def _block_mean(image: F32, factor: int) -> F32:
    """Mean over ``factor`` x ``factor`` blocks (edges that do not fill a block are dropped)."""
    ny, nx = image.shape[0] // factor, image.shape[1] // factor
    blocks = image[: ny * factor, : nx * factor].reshape(ny, factor, nx, factor)
    result: F32 = blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)
    return result
