"""ACSREJ's SHADCORR: the simulator's truth, hstcal's buffer rules, the header it writes.

The CR-split pair is a ``WFC2C-1K`` subarray (chip 2, whose SHADFILE extension is EXTVER 1
as hstcal reads it) of 2 s exposures, so that the simulator's shutter shading (0.02-0.04 s,
applied as ``scene * (1 + S / EXPTIME)``) is about 1.3 % of the signal. hstcal's combination
divides the sum of the ``n`` images by ``t_good + S`` (``(sum / t_good) / (1 + S / t_good)``):
it removes the shading of one exposure, not of each, so for two equal exposures half of it
remains. The truth test measures exactly that on the bright star pixels, and that leaving
SHADCORR out is twice as far from the truth.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.acsrej import acsrej
from owl.calib.crrej_shading import SECTLINES, find_line_hdr, rej_shading
from owl.calib.fitsio import read_frame
from owl.calib.simulate import SimulatedSet, simulate_set
from owl.calib.simulate_2d import NAMES, Extras
from owl.calib.wfc_layout import CHIP_EXTVER
from owl.errors import CalibError

EXPTIME = 2.0
NO_MASK = {"crmask": False}  # the inputs stay as they are for the next run


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("rejshad")
    sim = simulate_set(root, n_exposures=2, seed=13, visit="73", exptime=EXPTIME,
                       subarray="WFC2C-1K", n_stars=20000, extras=Extras(shading=1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("jref", f"{sim.refs.directory}/")
        blv = [acsccd(e.raw, root / f"{e.raw.name[:9]}_blv_tmp.fits") for e in sim.exposures]
        shaded = acsrej(blv, root / "a_crj_tmp.fits", overrides=NO_MASK).output
        plain = acsrej(blv, root / "b_crj_tmp.fits", overrides=NO_MASK,
                       keywords={"SHADCORR": "OMIT"}).output
        yield {"sim": sim, "blv": blv, "shaded": shaded, "plain": plain, "root": root}


def _truth(sim: SimulatedSet, chip: int, shape: tuple[int, int]) -> tuple[Any, Any]:
    """The unshaded model sum of the pair (scene x flat + dark x DARKTIME) and the SHADFILE,
    both cut to the subarray (chip 2, amp C: the trimmed chip's first rows and columns)."""
    cut = (slice(0, shape[0]), slice(0, shape[1]))
    ext = CHIP_EXTVER[chip] - 1
    flat, dark = sim.refs.flats["F606W"][chip][cut], sim.refs.dark[chip][cut]
    model = sum(e.truth.scene[ext][cut] * flat + dark * np.float32(e.truth.darktime)
                for e in sim.exposures)
    shade = fits.getdata(sim.refs.directory / NAMES["SHADFILE"], ("SCI", CHIP_EXTVER[chip]))
    return model, shade[cut]


def test_shading_halves_the_error_as_hstcal_predicts(pair: dict[str, Any]) -> None:
    a, b = read_frame(pair["shaded"]).imsets[0], read_frame(pair["plain"]).imsets[0]
    assert a.chip == 2
    model, s = _truth(pair["sim"], a.chip, a.sci.shape)
    # Bright star pixels, unflagged and unsaturated: the sky and the noise are negligible.
    good = (a.dq == 0) & (b.dq == 0) & (model > 2e4) & (model < 1.2e5)
    assert good.sum() > 1000
    with_shading = a.sci[good] / model[good] - 1
    without = b.sci[good] / model[good] - 1
    st = (s / np.float32(EXPTIME))[good]
    left = (1 + st) / (1 + st / 2) - 1  # hstcal: (2t + 2S) / (2t + S)
    # Measured: both within 2e-5 of the prediction (median shading 1.26 %).
    assert abs(np.median(without - st)) < 0.1 * np.median(st)
    assert abs(np.median(with_shading - left)) < 0.1 * np.median(left)
    assert abs(np.median(with_shading)) < 0.6 * abs(np.median(without))


def test_header_says_complete_with_the_files_history(pair: dict[str, Any]) -> None:
    h = fits.getheader(pair["shaded"])
    assert h["SHADCORR"] == "COMPLETE"
    hist = [str(x) for x in h["HISTORY"]]
    i = hist.index("SHADCORR complete ...")
    assert hist[i + 1:i + 4] == ["  reference image jref$owlsim_shd.fits", "    MODEL 01/01/2026",
                                 "    owl sim shutter shading (s)"]
    assert fits.getheader(pair["plain"])["SHADCORR"] == "OMIT"
    # ACS2D (in CALACS) does not shade the product again: SHADCORR is no longer PERFORM.
    crj = acs2d(pair["shaded"], pair["root"] / "a_crj.fits", in_calacs=True)
    assert not any(str(x).startswith("SHADCORR complete:") for x in fits.getheader(crj)["HISTORY"])


def test_dummy_shadfile_is_applied_and_shadcorr_flag_forces_it(
        pair: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jref = tmp_path / "refs"
    shutil.copytree(pair["sim"].refs.directory, jref)
    monkeypatch.setenv("jref", f"{jref}/")
    fits.setval(jref / NAMES["SHADFILE"], "PEDIGREE", value="DUMMY")
    blv = [Path(shutil.copy2(p, tmp_path / p.name)) for p in pair["blv"]]
    # hstcal tests the pedigree against DUMMY (-1) instead of DUMMY_PEDIGREE (0): applied.
    dummy = acsrej(blv, tmp_path / "d_crj_tmp.fits", overrides=NO_MASK).output
    forced = acsrej(blv, tmp_path / "f_crj_tmp.fits", overrides=NO_MASK, shadcorr=True,
                    keywords={"SHADCORR": "OMIT"}).output
    want = fits.getdata(pair["shaded"], ("SCI", 1))
    for path in (dummy, forced):
        assert np.array_equal(fits.getdata(path, ("SCI", 1)), want)
        assert fits.getheader(path)["SHADCORR"] == "COMPLETE"
    assert "    DUMMY" in [str(x) for x in fits.getheader(dummy)["HISTORY"]]
    with pytest.raises(CalibError, match="SHADCORR = MAYBE is invalid"):
        acsrej(blv, tmp_path / "x_crj_tmp.fits", keywords={"SHADCORR": "MAYBE"})
    with pytest.raises(CalibError, match="SHADFILE"):
        acsrej(blv, tmp_path / "y_crj_tmp.fits", keywords={"SHADFILE": "jref$none_shd.fits"})


# ---- hstcal's buffers, ported line by line from acsrej_loop.c ------------------------------

def _interp(ai: np.float32, npts: int) -> tuple[int, np.float32, np.float32]:
    """InterpInfo."""
    i = int(ai)
    i = 0 if i < 0 else i
    i = npts - 2 if i >= npts - 1 else i
    q = np.float32(ai - np.float32(i))
    return i, np.float32(1) - q, q


def _get_shad_buff(binned: np.ndarray, line: int, dimy: int, dim_x: int, rx: int, ry: int,
                   x0: int, y0: int) -> np.ndarray:
    """getShadBuff + unbinArray, scalar float32 arithmetic in hstcal's order."""
    j = y0 + line // ry
    ysect = binned[j:j + SECTLINES]
    shad_x = binned.shape[1]
    out = np.empty((dimy, dim_x), np.float32)
    for n in range(dimy):
        jj, r, s = _interp(np.float32(n) / np.float32(ry), SECTLINES)
        for m in range(dim_x):
            mm = m + x0 * rx
            ii, p, q = _interp(np.float32(mm) / np.float32(rx), shad_x)
            a = ysect
            out[n, m] = (p * r * a[jj, ii] + q * r * a[jj, ii + 1]) + p * s * a[jj + 1, ii] \
                + q * s * a[jj + 1, ii + 1]
    return out


def test_expansion_and_threshold_rows_follow_hstcals_buffers() -> None:
    rng = np.random.default_rng(4)
    binned = rng.uniform(0.0, 1.0, (12, 9)).astype(np.float32)
    ref = fits.Header({"LTM1_1": 1 / 3, "LTM2_2": 1 / 2, "LTV1": 2 / 3, "LTV2": 0.5})
    sci = fits.Header({"LTV1": -6.0, "LTV2": -4.0})  # corner (6, 4): binned (2, 2)
    ny, nx, radius = 13, 15, 2.1
    assert find_line_hdr(sci, ref, nx, 9) == (3, 2, 2, 2)
    got = rej_shading(binned, ref, sci, (ny, nx), radius, "t")
    dimy, width = SECTLINES * 2, 3
    buffers: dict[int, np.ndarray] = {}
    thr = np.full(ny, -1)
    for line in range(ny):  # the scrolling loop: which buffer row each threshold reads
        if line % dimy == 0:
            buffers[line] = _get_shad_buff(binned, line, dimy, nx, 3, 2, 2, 2)
            start = line
        rows = range(width + 1) if line == 0 else [line + width]
        for r in rows:
            if r < ny:
                thr[r] = start + r % dimy
    want = np.concatenate([buffers[b] for b in sorted(buffers)])
    assert np.array_equal(got.image, want)
    assert np.array_equal(got.thr_row, thr)
    assert got.ncols == nx // 3
    # Same size: no offset; a full-frame SHADFILE under a subarray: the LTV offset.
    assert find_line_hdr(fits.Header(), fits.Header(), 40, 40) == (1, 1, 0, 0)
    assert find_line_hdr(fits.Header({"LTV1": -3584.0, "LTV2": -1536.0}), fits.Header(),
                         512, 4096) == (1, 1, 3584, 1536)
    with pytest.raises(CalibError, match="outside its 12 rows"):
        rej_shading(binned, ref, sci, (21, nx), radius, "t")
