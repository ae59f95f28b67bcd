"""Subarray geometry, SINKCORR and the one-amp paths, without hstcal (see
``test_hstcal_sub.py`` for the comparisons with hstcal's executables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import Overscan, _bias_sections, acsccd
from owl.calib.cte import run_acscte
from owl.calib.cte.amps import amp_regions
from owl.calib.fitsio import Frame, Imset, read_frame
from owl.calib.simulate import simulate_set
from owl.calib.simulate_sub import cut_subarray
from owl.calib.sinkcorr import SINKPIXEL, flag_sinks, sinkcorr
from owl.calib.subarray import APERTURES, subarray
from owl.calib.wfc_layout import RAW_SHAPE, chip_layout
from owl.errors import CalibError


def test_apertures_sit_at_their_amp_corner() -> None:
    assert len(APERTURES) == 12
    s = subarray("wfc1b-1k")
    assert (s.chip, s.amp, s.raw_shape, s.ltv) == (1, "B", (1024, 1048), (-3072.0, -1024.0))
    s = subarray("WFC2C-2K")
    assert (s.raw_shape, s.ltv, s.virtual) == ((2068, 2072), (24.0, 0.0), True)
    row = s.oscntab_row()
    # TRIMY2 = 20 (the virtual rows of chip 2 come last), BIASSECTA the prescan.
    assert row[6:10] == [24, 0, 0, 20] and row[14:18] == [3, 22, 0, 0]
    with pytest.raises(ValueError, match="WFC1A-2K"):
        subarray("WFC1-FIX")


@pytest.mark.parametrize("aperture", ["WFC1A-512", "WFC1B-2K", "WFC2C-1K", "WFC2D-512"])
def test_cut_keeps_the_ltv_mapping(aperture: str) -> None:
    sub = subarray(aperture)
    lay = chip_layout(sub.chip)
    full = np.arange(RAW_SHAPE[0] * RAW_SHAPE[1], dtype=np.float32).reshape(RAW_SHAPE)
    header = fits.Header({"CCDCHIP": sub.chip, "LTV1": float(lay.ltv1), "LTV2": float(lay.ltv2)})
    imset = Imset(sci=full, err=full, dq=np.zeros(RAW_SHAPE, np.int16), sci_header=header,
                  err_header=header.copy(), dq_header=header.copy(), extver=1)
    frame = cut_subarray(fits.Header({"CCDAMP": "ABCD"}), [imset], sub)
    cut = frame.imsets[0]
    assert cut.sci.shape == sub.raw_shape and frame.primary["CCDAMP"] == sub.amp
    # Trimmed pixel (y, x) of the chip is raw (y + LTV2, x + LTV1) of either array.
    rows, cols = sub.trimmed_box()
    y, x = rows.start + 5, cols.start + 7
    ltv1, ltv2 = cut.sci_header["LTV1"], cut.sci_header["LTV2"]
    assert cut.sci[int(y + ltv2), int(x + ltv1)] == full[y + lay.ltv2, x + lay.ltv1]


def test_flag_sinks_follows_the_trail_from_the_amp_side() -> None:
    # One column walked upward (SCI,1): downstream -1, sink -5 under sci 40, then upstream
    # levels 999 and 50 (> 40: flagged), 30 (<= 40: the trail ends), 45 (not flagged: ended).
    sink = np.array([0, -1, -5, 999, 50, 30, 45, 0], np.float32)[:, None]
    sci = np.full((8, 1), 40.0, np.float32)
    dq = np.zeros((8, 1), np.int16)
    assert flag_sinks(sci, dq, sink, upward=True) == 4
    assert (dq[:, 0] == SINKPIXEL * np.array([0, 1, 1, 1, 1, 0, 0, 0])).all()
    # Walked downward (SCI,2) the same column is read from the bottom: 45 and 30 come
    # before any sink and are not flagged; -5, -1 are.
    dq[:] = 0
    assert flag_sinks(sci, dq, sink, upward=False) == 2
    assert (dq[:, 0] == SINKPIXEL * np.array([0, 1, 1, 0, 0, 0, 0, 0])).all()


def test_sinkcorr_names_a_snkcfile_too_small(tmp_path: Path) -> None:
    header = fits.Header({"CCDCHIP": 2, "LTV1": 24.0, "LTV2": 0.0})
    sci = np.zeros((20, 30), np.float32)
    frame = Frame(primary=fits.Header(), imsets=[Imset(
        sci=sci, err=sci.copy(), dq=np.zeros(sci.shape, np.int16), sci_header=header,
        err_header=header, dq_header=header, extver=1)], path=None)
    small = Frame(primary=fits.Header(), imsets=[Imset(
        sci=sci[:10], err=sci[:10], dq=np.zeros((10, 30), np.int16), sci_header=header,
        err_header=header, dq_header=header, extver=1)], path=tmp_path / "x_snk.fits")
    with pytest.raises(CalibError, match=r"x_snk\.fits: chip 2 SNKCFILE"):
        sinkcorr(frame, small, str(small.path))


def test_bias_sections_take_biassecta_unless_it_ends_at_one() -> None:
    # hstcal stores the 1-based table values minus 1: an empty BIASSECTA reads (-1, -1) and
    # is still chosen over BIASSECTB, leaving no overscan pixels (the CCDTAB bias is used).
    empty_a = Overscan((0, 24), (0, 0), (-1, -1), (1026, 1045), (-1, -1), (-1, -1))
    sections, _ = _bias_sections(empty_a, 0, 1, 1048)
    assert sum(b - a + 1 for a, b in sections) == 0
    both = Overscan((24, 24), (0, 20), (2, 21), (4122, 4141), (44, 2051), (0, 19))
    assert _bias_sections(both, 1, 2, 4144)[0].tolist() == [[4122, 4141]]
    assert _bias_sections(both, 0, 1, 4144)[0].tolist() == [[2, 21], [4122, 4141]]


def test_one_amp_regions_use_the_left_amp_scalings() -> None:
    # hstcal's razColumnOffset for a one-amp readout: 4096 on chip 1, 0 on chip 2.
    assert amp_regions((1024, 1024), 1, "B") == [("B", slice(0, 1024), 4096)]
    assert amp_regions((512, 512), 2, "D") == [("D", slice(0, 512), 0)]
    assert [r[2] for r in amp_regions((2048, 4096), 1, "ABCD")] == [4096, 6144]
    with pytest.raises(CalibError, match="reads no amplifier of chip 2"):
        amp_regions((512, 512), 2, "A")


def test_subarray_chain_runs_and_flags_sinks(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sim = simulate_set(tmp_path / "in", n_exposures=1, seed=3, visit="81",
                       subarray="WFC2C-512", sink=True)
    monkeypatch.setenv("jref", f"{sim.refs.directory}/")
    blv = acsccd(sim.exposures[0].raw, tmp_path / "jsim8101q_blv_tmp.fits")
    frame = read_frame(blv)
    assert [s.sci.shape for s in frame.imsets] == [(512, 512)]
    assert frame.primary["SINKCORR"] == "COMPLETE" and frame.primary["ATODGND"] == 0.0
    assert (frame.imsets[0].dq & SINKPIXEL).any()
    assert (frame.imsets[0].sci_header["LTV1"], frame.imsets[0].sci_header["LTV2"]) == (0, 0)
    flt = read_frame(acs2d(blv, tmp_path / "jsim8101q_flt.fits"))
    assert flt.primary["DARKCORR"] == "COMPLETE" and flt.imsets[0].sci.shape == (512, 512)
    # Binned raw frames are refused by name (owl's reference cuts assume unbinned pixels).
    with fits.open(sim.exposures[0].raw, mode="update") as hdul:
        hdul[1].header["BINAXIS1"] = 2
    with pytest.raises(CalibError, match=r"jsim8101q_raw\.fits: chip 2 is binned"):
        acsccd(sim.exposures[0].raw, tmp_path / "binned_blv_tmp.fits")
    # PCTECORR refuses a subarray whose CCDAMP names two amps, naming the file.
    with fits.open(blv, mode="update") as hdul:
        hdul[0].header["PCTECORR"] = "PERFORM"
        hdul[0].header["CCDAMP"] = "CD"
    with pytest.raises(CalibError, match=r"jsim8101q_blv_tmp\.fits: subarray with CCDAMP"):
        run_acscte(blv, tmp_path / "jsim8101q_blc_tmp.fits")
