"""PNG previews: size, orientation (WFC1 on top), not constant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed
from PIL import Image

from owl.calib.fitsio import Frame, Imset, write_frame
from owl.calib.preview import render_preview
from owl.errors import CalibError

SHAPE = (2048, 4096)


def _frame(path: Path) -> Path:
    """A trimmed two-chip frame: chip 1 bright with a gradient, chip 2 dark, plus noise."""
    rng = np.random.default_rng(3)
    imsets = []
    for extver, chip in ((1, 2), (2, 1)):
        level = 200.0 if chip == 1 else 20.0
        sci = (level + rng.normal(0.0, 5.0, SHAPE)).astype(np.float32)
        sci[:, :100] += 500.0  # a bright band at the left edge of each chip
        header = fits.Header([("CCDCHIP", chip)])
        imsets.append(Imset(sci=sci, err=np.ones(SHAPE, np.float32),
                            dq=np.zeros(SHAPE, np.int16), sci_header=header,
                            err_header=header.copy(), dq_header=header.copy(), extver=extver))
    primary = fits.Header([("INSTRUME", "ACS"), ("DETECTOR", "WFC")])
    write_frame(Frame(primary=primary, imsets=imsets, path=None), path)
    return path


def test_preview_size_orientation_and_contrast(tmp_path: Path) -> None:
    src = _frame(tmp_path / "p_flt.fits")
    png = tmp_path / "out" / "p.png"
    assert render_preview(src, png, width=512) == (512, 512)
    with Image.open(png) as image:
        assert image.size == (512, 512) and image.mode == "L"
        pixels = np.asarray(image, dtype=np.float64)
    assert pixels.std() > 10
    top, bottom = pixels[:256, 100:], pixels[256:, 100:]
    assert top.mean() > bottom.mean() + 50  # WFC1 (bright) is on top
    assert pixels[:, :5].mean() > pixels[:, 100:].mean()  # band at the left edge


def test_preview_width_that_is_not_a_divisor(tmp_path: Path) -> None:
    src = _frame(tmp_path / "q_flt.fits")
    png = tmp_path / "q.png"
    assert render_preview(src, png, width=300) == (300, 300)
    with Image.open(png) as image:
        assert image.size == (300, 300)


def test_preview_errors(tmp_path: Path) -> None:
    with pytest.raises(CalibError, match="width"):
        render_preview(tmp_path / "x.fits", tmp_path / "x.png", width=0)
    with pytest.raises(CalibError, match="does not exist"):
        render_preview(tmp_path / "missing.fits", tmp_path / "x.png")
