"""SHADCORR, DFLTFILE/LFLTFILE and FLSHCORR: against the simulator's truth, against a plain
loop port of hstcal's ``unbinsect``, and their errors."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.fitsio import read_frame
from owl.calib.flat2d import unbin_section
from owl.calib.simulate import simulate_set
from owl.calib.simulate_2d import Extras
from owl.errors import CalibError


def _f(x: float) -> float:
    return float(np.float32(x))


def _interp(a: float, npts: int) -> tuple[int, float, float]:
    i = max(int(a), 0)
    i = npts - 2 if i >= npts - 1 else i
    q = _f(a - i)
    return i, _f(1.0 - q), q


def _dq_info(a: float, npts: int) -> tuple[int, int, int]:
    i1 = int(a)
    i2, num = i1 + 1, 1 if a == float(i1) else 2
    if i1 <= 0:
        i1, num = 0, 1
    if i1 >= npts - 1:
        i1, num = npts - 1, 1
    return i1, i2, num


def _unbinsect_loop(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, bx: int,
                    by: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """hstcal's ``unbinsect`` (2-D branch and the one-axis branches), pixel by pixel."""
    iny, inx = sci.shape
    out = np.zeros((iny * by, inx * bx), np.float32)
    eout, dout = np.zeros_like(out), np.zeros(out.shape, np.int16)
    xo, yo = _f((bx - 1) / 2.0), _f((by - 1) / 2.0)
    for n in range(iny * by):
        aj = _f(_f(n - yo) / by)
        j, r, s = _interp(aj, iny) if by > 1 else (n, 1.0, 0.0)
        j1, j2, nj = _dq_info(aj, iny) if by > 1 else (n, n, 1)
        for m in range(inx * bx):
            ai = _f(_f(m - xo) / bx)
            i, p, q = _interp(ai, inx) if bx > 1 else (m, 1.0, 0.0)
            i1, i2, ni = _dq_info(ai, inx) if bx > 1 else (m, m, 1)
            jj, ii = min(j + 1, iny - 1), min(i + 1, inx - 1)
            terms = [(_f(p * r), j, i), (_f(q * r), j, ii), (_f(p * s), jj, i), (_f(q * s), jj, ii)]
            if bx == 1:
                terms = [(r, j, m), (s, jj, m)]
            elif by == 1:
                terms = [(p, n, i), (q, n, ii)]
            v = e = 0.0
            for w, y, x in terms:
                v = _f(v + _f(w * sci[y, x]))
                e = _f(e + _f(_f(w * err[y, x]) * err[y, x]))
            out[n, m], eout[n, m] = v, _f(math.sqrt(e)) if e >= 0 else np.nan
            d = int(dq[j1, i1])
            if ni == 2:
                d |= int(dq[j1, i2])
            if nj == 2:
                d |= int(dq[j2, i1])
            if ni == 2 and nj == 2:
                d |= int(dq[j2, i2])
            dout[n, m] = d
    return out, eout, dout


@pytest.mark.parametrize("bins", [(4, 4), (3, 1), (1, 4), (8, 2)])
def test_unbin_section_is_hstcal_unbinsect(bins: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    sci = rng.normal(0.03, 0.01, (2, 7)).astype(np.float32)
    err = rng.uniform(0.0, 0.002, (2, 7)).astype(np.float32)
    dq = np.where(rng.random((2, 7)) < 0.3, 4, 0).astype(np.int16)
    got = unbin_section(sci, err, dq, *bins)
    want = _unbinsect_loop(sci, err, dq, *bins)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    # 2 s exposures on a bright sky: shading of 0.02-0.04 s is a 1-2 % effect.
    root = tmp_path_factory.mktemp("extras")
    sim = simulate_set(root / "in", n_exposures=1, seed=31, visit="61", exptime=2.0,
                       sky_rate=20.0, n_stars=200, n_bright=0,
                       extras=Extras(shading=16, delta_flat=True, low_order_flat=True,
                                     flashdur=5.0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("jref", f"{sim.refs.directory}/")
        blv = acsccd(sim.exposures[0].raw, root / "jsim6101q_blv_tmp.fits")

        def run(name: str, **kw: Any) -> Path:
            return acs2d(blv, root / f"{name}_flt.fits", **kw)

        yield {"sim": sim, "run": run, "flt": run("all")}


def _sky_offsets(flt: Path, sim: Any) -> np.ndarray:
    """Mean (flt - sky) on sky pixels in four column blocks of each chip (e-)."""
    truth = sim.exposures[0].truth
    out = []
    for imset in read_frame(flt).imsets:
        ext = imset.extver - 1
        sky = (truth.scene[ext] == np.float32(truth.sky)) & (imset.dq == 0) \
            & ~truth.cr_mask[ext]
        d = imset.sci - np.float32(truth.sky)
        keep = sky & (np.abs(d) < 5 * imset.err)
        for block in range(4):
            cols = slice(block * 1024, (block + 1) * 1024)
            out.append(float(np.mean(d[:, cols][keep[:, cols]])))
    return np.array(out)


def test_all_corrections_recover_the_sky(calibrated: dict[str, Any]) -> None:
    h = fits.getheader(calibrated["flt"])
    assert (h["SHADCORR"], h["FLSHCORR"], h["FLATCORR"]) == ("COMPLETE",) * 3
    history = "".join(str(c) for c in h["HISTORY"])  # long lines span HISTORY cards
    assert "owlsim_f606w_dfl.fits" in history and "owlsim_f606w_lfl.fits" in history
    # sky 40 e-, noise ~ 9 e- per pixel over ~2M pixels per block
    assert np.all(np.abs(_sky_offsets(calibrated["flt"], calibrated["sim"])) < 0.1)


@pytest.mark.parametrize(("name", "kw", "least"), [
    ("noshad", {"switches": {"SHADCORR": "OMIT"}}, 0.2),  # measured 0.64
    ("noflash", {"switches": {"FLSHCORR": "OMIT"}}, 5.0),  # measured 10.9
    ("nolflt", {"keywords": {"LFLTFILE": "N/A"}}, 0.15),  # measured 0.26 (block noise ~0.04)
])
def test_each_correction_matters(calibrated: dict[str, Any], name: str, kw: dict[str, Any],
                                 least: float) -> None:
    offsets = _sky_offsets(calibrated["run"](name, **kw), calibrated["sim"])
    assert np.max(np.abs(offsets)) > least, offsets


def _tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lflt_bin: int) -> Path:
    """A 2 x 4 trimmed frame and a PFLTFILE/LFLTFILE pair (the LFLT binned ``lflt_bin``)."""
    monkeypatch.setenv("jref", f"{tmp_path}/")
    primary = fits.Header({"ROOTNAME": "jtiny01q", "INSTRUME": "ACS", "DETECTOR": "WFC",
                           "FLATCORR": "PERFORM", "PFLTFILE": "jref$p.fits", "DFLTFILE": "N/A",
                           "LFLTFILE": "jref$l.fits", "EXPTIME": 10.0, "NEXTEND": 3})

    def write(path: Path, shape: tuple[int, int], b: int) -> None:
        sci = fits.Header({"EXTNAME": "SCI", "EXTVER": 1, "CCDCHIP": 1, "LTM1_1": 1 / b,
                           "LTM2_2": 1 / b, "LTV1": (b - 1) / b, "LTV2": (b - 1) / b})
        hdus = [fits.PrimaryHDU(header=primary)]
        for ext, data in (("SCI", np.full(shape, 2.0, np.float32)),
                          ("ERR", np.ones(shape, np.float32)), ("DQ", np.zeros(shape, np.int16))):
            h = sci.copy()
            h["EXTNAME"] = ext
            hdus.append(fits.ImageHDU(data, header=h))
        fits.HDUList(hdus).writeto(path)
    write(tmp_path / "in_blv_tmp.fits", (2, 4), 1)
    write(tmp_path / "p.fits", (2, 4), 1)
    write(tmp_path / "l.fits", (1, 2) if lflt_bin == 2 else (2, 4), lflt_bin)
    return tmp_path / "in_blv_tmp.fits"


def test_same_size_lflt_divides_after_the_pixel_flat(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = acs2d(_tiny(tmp_path, monkeypatch, 1), tmp_path / "out_flt.fits",
                switches={"PHOTCORR": "OMIT", "DQICORR": "OMIT"})
    np.testing.assert_array_equal(fits.getdata(out, ("SCI", 1)), np.full((2, 4), 0.5))


def test_binned_lflt_and_missing_flats_are_errors(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blv = _tiny(tmp_path, monkeypatch, 2)
    with pytest.raises(CalibError, match=r"l\.fits.*binned 2x2"):
        acs2d(blv, tmp_path / "a_flt.fits", switches={"PHOTCORR": "OMIT", "DQICORR": "OMIT"})
    with pytest.raises(CalibError, match="all blank"):
        acs2d(blv, tmp_path / "b_flt.fits", switches={"PHOTCORR": "OMIT", "DQICORR": "OMIT"},
              keywords={"PFLTFILE": "N/A", "LFLTFILE": " "})
    with pytest.raises(CalibError, match=r"nothere_dfl\.fits"):
        acs2d(blv, tmp_path / "c_flt.fits", switches={"PHOTCORR": "OMIT", "DQICORR": "OMIT"},
              keywords={"DFLTFILE": "jref$nothere_dfl.fits"})
    with pytest.raises(CalibError, match=r"nothere_shd\.fits"):
        acs2d(blv, tmp_path / "d_flt.fits",
              switches={"PHOTCORR": "OMIT", "DQICORR": "OMIT", "FLATCORR": "OMIT",
                        "SHADCORR": "PERFORM"}, keywords={"SHADFILE": "jref$nothere_shd.fits"})
