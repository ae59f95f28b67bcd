"""Direct image I/O: the same bytes as astropy's writer, the same arrays as its reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

from owl.calib import kernels as K
from owl.calib.fitsdata import read_image, write_hdus
from owl.calib.fitsio import Frame, Imset, read_frame, write_frame
from owl.calib.step import load_ref_imsets, ref_for
from owl.errors import CalibError

# Rows long enough that a chunk of the writer holds several rows and the last is partial.
SHAPE = (301, 1000)


def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [
        rng.normal(100.0, 5.0, SHAPE).astype(np.float32),
        rng.integers(0, 65535, SHAPE).astype(np.uint16),
        rng.integers(-3000, 3000, SHAPE).astype(np.int16),
        rng.integers(-10**6, 10**6, SHAPE).astype(np.int32),
        rng.normal(0.0, 1.0, SHAPE),
        rng.integers(0, 255, SHAPE).astype(np.uint8),
        rng.normal(0.0, 1.0, SHAPE).astype(np.float32)[:, 7:900],  # a strided view
    ]


def _hdul() -> fits.HDUList:
    hdus = [fits.PrimaryHDU(header=fits.Header([("INSTRUME", "ACS")]))]
    for i, a in enumerate(_arrays()):
        hdus.append(fits.ImageHDU(data=a, header=fits.Header([("EXTNAME", f"X{i}")])))
    hdus.append(fits.ImageHDU(header=fits.Header([("EXTNAME", "C"), ("NPIX1", 3)])))
    return fits.HDUList(hdus)


def test_written_bytes_equal_astropy(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.fits", tmp_path / "theirs.fits"
    with open(ours, "wb") as f:
        write_hdus(_hdul(), f)
    _hdul().writeto(theirs)
    assert ours.read_bytes() == theirs.read_bytes()


def test_read_equals_astropy(tmp_path: Path) -> None:
    path = tmp_path / "x.fits"
    _hdul().writeto(path)
    with fits.open(path) as hdul, open(path, "rb") as f:
        for i, want in enumerate(_arrays(), start=1):
            got = read_image(f, hdul[i].header, int(hdul.fileinfo(i)["datLoc"]))
            assert got is not None
            assert got.dtype == want.dtype.newbyteorder("=")
            assert got.dtype.isnative
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(got, hdul[i].data)


def test_scaled_image_is_left_to_astropy(tmp_path: Path) -> None:
    path = tmp_path / "x.fits"
    hdu = fits.ImageHDU(data=np.arange(12, dtype=np.int16).reshape(3, 4))
    hdu.header["BSCALE"] = 2.0
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with fits.open(path) as hdul, open(path, "rb") as f:
        assert read_image(f, hdul[1].header, int(hdul.fileinfo(1)["datLoc"])) is None


def _frame(sci: np.ndarray, err: np.ndarray, dq: np.ndarray) -> Frame:
    h = fits.Header([("CCDCHIP", 1)])
    return Frame(primary=fits.Header([("INSTRUME", "ACS"), ("DETECTOR", "WFC")]),
                 imsets=[Imset(sci, err, dq, h.copy(), h.copy(), h.copy(), 1)], path=None)


def test_truncated_image_data_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x_raw.fits"
    sci = np.arange(2000 * 30, dtype=np.float32).reshape(2000, 30)
    write_frame(_frame(sci, sci.copy(), np.ones(sci.shape, np.int16)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3 * 2880 * 20])
    with pytest.raises(CalibError, match="truncated"):
        read_frame(path)


def test_reference_constants_are_zero_stride_views(tmp_path: Path) -> None:
    path = tmp_path / "x_bia.fits"
    sci = np.arange(600, dtype=np.float32).reshape(20, 30)
    write_frame(_frame(sci, np.full(sci.shape, 0.5, np.float32),
                       np.full(sci.shape, 4, np.int16)), path)
    ref = load_ref_imsets(path)
    err, dq = ref.imsets[0].err, ref.imsets[0].dq
    assert err.strides == (0, 0) and dq.strides == (0, 0)
    assert not err.flags.writeable
    science = read_frame(path)  # a science frame gets writable full arrays
    assert science.imsets[0].err.flags.writeable and science.imsets[0].err.strides != (0, 0)
    cut = ref_for(ref, science.imsets[0])
    assert cut.err.strides == (0, 0) and float(cut.err.flat[0]) == 0.5
    # the scalar kernel gives what the array kernel gives
    a = [np.ones(sci.shape, np.float32) * 3, np.ones(sci.shape, np.float32),
         np.zeros(sci.shape, np.int16)]
    b = [x.copy() for x in a]
    K.subtract_scaled(*a, cut.sci, cut.err, cut.dq, 0.7)
    K.subtract_scaled(*b, cut.sci, np.ascontiguousarray(cut.err),
                      np.ascontiguousarray(cut.dq), 0.7)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    a = [np.ones(sci.shape, np.float32) * 3, np.ones(sci.shape, np.float32),
         np.zeros(sci.shape, np.int16)]
    b = [x.copy() for x in a]
    flat = cut.sci.copy()
    flat[0, :3] = 0
    K.divide_flat(*a, flat, cut.err, cut.dq)
    K.divide_flat(*b, flat, np.ascontiguousarray(cut.err), np.ascontiguousarray(cut.dq))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
