"""ACS FITS I/O: round trips, constant extensions, naming, switches and every error path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

import owl
from owl.calib.fitsio import (
    Frame,
    Imset,
    add_history,
    output_name,
    read_frame,
    set_switch,
    stamp_version,
    write_frame,
)
from owl.errors import CalibError

SHAPE = (20, 30)


def _imset(extver: int, chip: int) -> Imset:
    rng = np.random.default_rng(extver)
    sci = rng.normal(100.0, 5.0, SHAPE).astype(np.float32)
    header = fits.Header([("CCDCHIP", chip), ("BUNIT", "ELECTRONS")])
    return Imset(
        sci=sci,
        err=np.full(SHAPE, 2.5, np.float32),
        dq=np.zeros(SHAPE, np.int16),
        sci_header=header.copy(),
        err_header=header.copy(),
        dq_header=header.copy(),
        extver=extver,
    )


def _frame() -> Frame:
    primary = fits.Header(
        [("INSTRUME", "ACS"), ("DETECTOR", "WFC"), ("ROOTNAME", "jtst01abq"),
         ("BLEVCORR", "PERFORM")]
    )
    return Frame(primary=primary, imsets=[_imset(1, 2), _imset(2, 1)], path=None)


def _hdul(**drop: bool) -> fits.HDUList:
    """A small valid frame as an HDUList; ``drop`` removes parts to break it."""
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "ACS"
    if not drop.get("detector"):
        primary.header["DETECTOR"] = "WFC"
    hdus = [primary]
    for extver, chip in ((1, 2), (2, 1)):
        sci = fits.ImageHDU(np.ones(SHAPE, np.float32), name="SCI", ver=extver)
        if not (drop.get("ccdchip") and extver == 2):
            sci.header["CCDCHIP"] = chip
        hdus.append(sci)
        if not (drop.get("err") and extver == 1):
            err_shape = (SHAPE[0] + 1, SHAPE[1]) if drop.get("shape") else SHAPE
            hdus.append(fits.ImageHDU(np.ones(err_shape, np.float32), name="ERR", ver=extver))
        hdus.append(fits.ImageHDU(np.zeros(SHAPE, np.int16), name="DQ", ver=extver))
    return fits.HDUList(hdus)


def test_round_trip_keeps_layout_data_and_headers(tmp_path: Path) -> None:
    frame = _frame()
    path = tmp_path / "jtst01abq_flt.fits"
    write_frame(frame, path)
    with fits.open(path) as hdul:
        names = [(h.name, h.ver) for h in hdul[1:]]
        assert names == [("SCI", 1), ("ERR", 1), ("DQ", 1), ("SCI", 2), ("ERR", 2), ("DQ", 2)]
        assert hdul[0].header["NEXTEND"] == 6
        assert hdul[0].header["FILENAME"] == "jtst01abq_flt.fits"
    back = read_frame(path)
    assert back.path == path
    assert back.primary["ROOTNAME"] == "jtst01abq"
    assert [s.extver for s in back.imsets] == [1, 2]
    assert [s.chip for s in back.imsets] == [2, 1]
    assert back.imset(1).extver == 2
    for a, b in zip(frame.imsets, back.imsets, strict=True):
        np.testing.assert_array_equal(a.sci, b.sci)
        np.testing.assert_array_equal(a.err, b.err)
        np.testing.assert_array_equal(a.dq, b.dq)
        assert b.sci.dtype == np.float32 and b.dq.dtype == np.int16
        assert b.sci.dtype.isnative
        assert b.sci_header["BUNIT"] == "ELECTRONS"


def test_uniform_err_dq_are_written_as_constant_extensions(tmp_path: Path) -> None:
    path = tmp_path / "c_raw.fits"
    write_frame(_frame(), path)
    with fits.open(path) as hdul:
        err = hdul["ERR", 1]
        assert err.header["NAXIS"] == 0
        assert (err.header["NPIX1"], err.header["NPIX2"]) == (SHAPE[1], SHAPE[0])
        assert err.header["PIXVALUE"] == 2.5
        assert hdul["SCI", 1].header["NAXIS"] == 2


def test_constant_extensions_are_expanded_on_read(tmp_path: Path) -> None:
    hdul = _hdul()
    for extver in (1, 2):
        for name, value, bitpix in (("ERR", 0.0, -32), ("DQ", 4, 16)):
            hdu = fits.ImageHDU(name=name, ver=extver)
            hdu.header["BITPIX"] = bitpix
            hdu.header["NPIX1"] = SHAPE[1]
            hdu.header["NPIX2"] = SHAPE[0]
            hdu.header["PIXVALUE"] = value
            hdul[name, extver] = hdu
    path = tmp_path / "const_raw.fits"
    hdul.writeto(path)
    frame = read_frame(path)
    for imset in frame.imsets:
        assert imset.err.shape == SHAPE and imset.err.dtype == np.float32
        assert imset.dq.shape == SHAPE and imset.dq.dtype == np.int16
        assert np.all(imset.dq == 4)


def test_raw_uint16_sci_and_sci_dtype(tmp_path: Path) -> None:
    frame = _frame()
    for imset in frame.imsets:
        imset.sci = np.full(SHAPE, 44000, np.uint16)
    path = tmp_path / "u_raw.fits"
    write_frame(frame, path)
    assert fits.getheader(path, 1)["BZERO"] == 32768
    assert read_frame(path).imsets[0].sci.dtype == np.uint16
    as_float = read_frame(path, sci_dtype=np.float32).imsets[0].sci
    assert as_float.dtype == np.float32 and as_float[0, 0] == 44000.0


def test_gzip_input_is_read(tmp_path: Path) -> None:
    path = tmp_path / "g_blv_tmp.fits.gz"
    write_frame(_frame(), path)
    assert read_frame(path).imsets[1].chip == 1


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "o_flt.fits"
    write_frame(_frame(), path)
    with pytest.raises(CalibError, match="exists"):
        write_frame(_frame(), path)
    write_frame(_frame(), path, overwrite=True)
    assert list(tmp_path.iterdir()) == [path]


def test_write_rejects_mismatched_shapes(tmp_path: Path) -> None:
    frame = _frame()
    frame.imsets[0].dq = np.zeros((3, 3), np.int16)
    with pytest.raises(CalibError, match=r"\[DQ,1\].*differs"):
        write_frame(frame, tmp_path / "bad.fits")
    assert not list(tmp_path.iterdir())


def test_missing_file() -> None:
    with pytest.raises(CalibError, match="does not exist"):
        read_frame("/nonexistent/x_raw.fits")


def test_truncated_file_names_the_extension(tmp_path: Path) -> None:
    good = tmp_path / "good.fits"
    write_frame(_frame(), good)
    data = good.read_bytes()
    bad = tmp_path / "trunc.fits"
    bad.write_bytes(data[: len(data) - 2880])
    with pytest.raises(CalibError, match=r"trunc\.fits.*(truncated|DQ,2)"):
        read_frame(bad)


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "junk.fits"
    bad.write_bytes(b"this is not FITS" * 400)
    with pytest.raises(CalibError, match=r"junk\.fits"):
        read_frame(bad)


def test_missing_err_extension(tmp_path: Path) -> None:
    path = tmp_path / "noerr.fits"
    _hdul(err=True).writeto(path)
    with pytest.raises(CalibError, match=r"\[ERR,1\]: extension is missing"):
        read_frame(path)


def test_no_imsets(tmp_path: Path) -> None:
    path = tmp_path / "empty.fits"
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "ACS"
    primary.header["DETECTOR"] = "WFC"
    fits.HDUList([primary]).writeto(path)
    with pytest.raises(CalibError, match="no SCI/ERR/DQ"):
        read_frame(path)


def test_missing_primary_keyword(tmp_path: Path) -> None:
    path = tmp_path / "nodet.fits"
    _hdul(detector=True).writeto(path)
    with pytest.raises(CalibError, match=r"primary.*DETECTOR"):
        read_frame(path)


def test_missing_ccdchip(tmp_path: Path) -> None:
    path = tmp_path / "nochip.fits"
    _hdul(ccdchip=True).writeto(path)
    with pytest.raises(CalibError, match=r"\[SCI,2\].*CCDCHIP"):
        read_frame(path)


def test_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "shape.fits"
    _hdul(shape=True).writeto(path)
    with pytest.raises(CalibError, match=r"\[ERR,1\]: shape \(21, 30\) differs"):
        read_frame(path)


def test_empty_extension_that_is_not_constant(tmp_path: Path) -> None:
    hdul = _hdul()
    hdul["ERR", 2] = fits.ImageHDU(name="ERR", ver=2)
    path = tmp_path / "hollow.fits"
    hdul.writeto(path)
    with pytest.raises(CalibError, match=r"\[ERR,2\].*NPIX1"):
        read_frame(path)


def test_three_dimensional_extension(tmp_path: Path) -> None:
    hdul = _hdul()
    hdul["SCI", 1] = fits.ImageHDU(np.ones((2, *SHAPE), np.float32), name="SCI", ver=1)
    path = tmp_path / "cube.fits"
    hdul.writeto(path)
    with pytest.raises(CalibError, match=r"\[SCI,1\].*2-D"):
        read_frame(path)


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        ("j8xi01abq_raw.fits", "blv_tmp", "j8xi01abq_blv_tmp.fits"),
        ("j8xi01abq_blv_tmp.fits", "blc_tmp", "j8xi01abq_blc_tmp.fits"),
        ("case1_blv_tmp.fits.gz", "blc_tmp", "case1_blc_tmp.fits"),
        ("j8xi01abq_raw.fits.gz", "_flt", "j8xi01abq_flt.fits"),
        ("scene.fits", "flt", "scene_flt.fits"),
    ],
)
def test_output_name(name: str, suffix: str, expected: str, tmp_path: Path) -> None:
    assert output_name(tmp_path / name, suffix) == tmp_path / expected


def test_output_name_errors() -> None:
    with pytest.raises(CalibError, match="not a FITS file name"):
        output_name("x_raw.txt", "flt")
    with pytest.raises(CalibError, match="bad suffix"):
        output_name("x_raw.fits", "")


def test_set_switch() -> None:
    header = fits.Header([("BLEVCORR", "PERFORM", "subtract bias level")])
    set_switch(header, "blevcorr", "complete")
    assert header["BLEVCORR"] == "COMPLETE"
    assert header.comments["BLEVCORR"] == "subtract bias level"
    set_switch(header, "PCTECORR", "OMIT")
    assert header["PCTECORR"] == "OMIT"
    with pytest.raises(CalibError, match="must be one of"):
        set_switch(header, "DARKCORR", "DONE")
    with pytest.raises(CalibError, match="not a calibration switch"):
        set_switch(header, "EXPTIME", "OMIT")


def test_add_history_and_stamp_version() -> None:
    header = fits.Header()
    add_history(header, "BLEVCORR complete\n  reference table jref$x_osc.fits")
    assert list(header["HISTORY"]) == ["BLEVCORR complete", "  reference table jref$x_osc.fits"]
    stamp_version(header, now=datetime(2026, 3, 19, 12, 0, tzinfo=UTC))
    assert header["CAL_VER"] == f"owl {owl.__version__} (19-Mar-2026)"
    assert header["DATE"] == "2026-03-19T12:00:00"
    stamp_version(header)
    assert header["CAL_VER"].startswith(f"owl {owl.__version__} (")
