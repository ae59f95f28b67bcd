"""The simulator: raw layout, headers, reference files hstcal-style readers accept, truth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed
from cte_fixtures import pctetab

from owl.calib.ccdtab import CCDKey, lookup_ccd
from owl.calib.fitsio import read_frame
from owl.calib.refpath import resolve_ref
from owl.calib.simulate import SimulatedSet, Truth, simulate_set
from owl.calib.simulate_tables import photometry
from owl.calib.wfc_layout import RAW_SHAPE, TRIM_SHAPE, chip_layout


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatedSet:
    return simulate_set(tmp_path_factory.mktemp("sim"), n_exposures=2, seed=7)


@pytest.fixture
def jref(sim: SimulatedSet, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("jref", str(sim.refs.directory) + os.sep)
    return sim.refs.directory


def test_raw_layout_and_headers(sim: SimulatedSet) -> None:
    frame = read_frame(sim.exposures[0].raw)
    assert [(s.extver, s.chip) for s in frame.imsets] == [(1, 2), (2, 1)]
    p = frame.primary
    assert p["ROOTNAME"] == "jsim0101q" and p["DETECTOR"] == "WFC"
    assert p["ASN_ID"] == "jsim01010" and p["CRSPLIT"] == 2 and p["CRCORR"] == "PERFORM"
    assert p["DARKTIME"] == p["EXPTIME"] + 10.0
    assert p["BLEVCORR"] == "PERFORM" and p["ATODCORR"] == "OMIT"
    for imset in frame.imsets:
        assert imset.sci.shape == RAW_SHAPE and imset.sci.dtype == np.uint16
        assert np.all(imset.err == 0) and np.all(imset.dq == 0)
        lay = chip_layout(imset.chip)
        assert imset.sci_header["LTV1"] == 24.0
        assert imset.sci_header["LTV2"] == float(lay.ltv2)
    with fits.open(sim.exposures[0].raw) as hdul:
        assert hdul["ERR", 1].header["NAXIS"] == 0  # constant extension, as in real raws


def test_overscan_holds_bias_level_only(sim: SimulatedSet) -> None:
    frame = read_frame(sim.exposures[0].raw, sci_dtype=np.float64)
    truth = sim.exposures[0].truth
    for imset in frame.imsets:
        lay = chip_layout(imset.chip)
        amps = "AB" if imset.chip == 1 else "CD"
        for amp in amps:
            i = "ABCD".index(amp)
            prescan = imset.sci[lay.image_rows, lay.prescan_cols(amp)]
            bias = sim.refs.bias[imset.chip][lay.image_rows, lay.prescan_cols(amp)]
            level = float(np.mean(prescan - bias))
            assert level == pytest.approx(truth.bias_level[i], abs=0.1)
            noise = float(np.std(prescan - bias)) * sim.refs.detector.gain[i]
            assert noise == pytest.approx(sim.refs.detector.readnoise[i], rel=0.05)
        virtual = imset.sci[lay.overscan_rows, lay.image_cols]
        assert float(np.median(virtual)) < float(truth.bias_level.max()) + 5
        image = imset.sci[lay.image_rows, lay.image_cols]
        assert float(np.median(image)) > float(np.median(virtual)) + 10  # sky + dark


def test_truth_is_saved_and_consistent(sim: SimulatedSet) -> None:
    exposure = sim.exposures[1]
    truth = Truth.load(exposure.truth_path)
    np.testing.assert_array_equal(truth.scene, exposure.truth.scene)
    assert truth.scene.shape == (2, *TRIM_SHAPE)
    assert truth.sky == pytest.approx(0.06 * 500.0)
    stars = truth.stars
    assert stars["flux"].min() >= 100.0 and stars["flux"].max() <= 5e6
    assert (stars["flux"] > 1e5).any() and (stars["flux"] < 1e3).any()
    for ext, chip in ((0, 2), (1, 1)):
        on_chip = stars[stars["chip"] == chip]["flux"].sum(dtype=np.float64)
        star_light = truth.scene[ext].sum(dtype=np.float64) - truth.sky * truth.scene[ext].size
        assert star_light == pytest.approx(on_chip, rel=1e-4)
    # CR-split: same scene, independent cosmic rays.
    first = sim.exposures[0].truth
    np.testing.assert_array_equal(first.scene, truth.scene)
    overlap = (first.cr_mask & truth.cr_mask).sum() / truth.cr_mask.sum()
    assert 0.002 < truth.cr_mask.mean() < 0.03 and overlap < 0.05


def test_cosmic_rays_and_saturation_reach_the_raw(sim: SimulatedSet) -> None:
    frame = read_frame(sim.exposures[0].raw, sci_dtype=np.float32)
    truth = sim.exposures[0].truth
    lay = chip_layout(1)
    trim = (lay.image_rows, lay.image_cols)
    dn = frame.imset(1).sci[trim] - sim.refs.bias[1][trim]
    electrons = np.empty_like(dn)
    for amp, cols in (("A", slice(0, 2048)), ("B", slice(2048, 4096))):
        i = "ABCD".index(amp)
        electrons[:, cols] = (dn[:, cols] - truth.bias_level[i]) * sim.refs.detector.gain[i]
    crs = truth.cr_mask[1] & (truth.scene[1] < 100)
    assert np.median(electrons[crs]) > 200
    saturated = electrons > 0.95 * sim.refs.full_well[1]
    # Bright stars bleed: some columns hold long runs at full well.
    assert saturated.sum(axis=0).max() > 10


def test_same_seed_same_pixels(sim: SimulatedSet, tmp_path: Path) -> None:
    again = simulate_set(tmp_path, n_exposures=1, seed=7)
    a = read_frame(again.exposures[0].raw).imsets[0].sci
    b = read_frame(sim.exposures[0].raw).imsets[0].sci
    np.testing.assert_array_equal(a, b)
    assert again.asn is None
    assert read_frame(again.exposures[0].raw).primary["CRCORR"] == "OMIT"


def test_reference_keywords_resolve(sim: SimulatedSet, jref: Path) -> None:
    primary = read_frame(sim.exposures[0].raw).primary
    for key in ("BPIXTAB", "CCDTAB", "OSCNTAB", "BIASFILE", "DARKFILE", "PFLTFILE",
                "CRREJTAB", "IMPHTTAB", "SATUFILE"):
        assert resolve_ref(primary[key], keyword=key).parent == jref
    assert primary["PCTETAB"] == "N/A"


def test_ccdtab_matches_the_exposure(sim: SimulatedSet, jref: Path) -> None:
    primary = read_frame(sim.exposures[0].raw).primary
    for chip in (1, 2):
        params = lookup_ccd(resolve_ref(primary["CCDTAB"]), CCDKey.from_header(primary, chip=chip))
        assert params.amps["A"].gain == pytest.approx(sim.refs.detector.gain[0], rel=1e-6)
        assert params.amps["D"].readnoise == pytest.approx(4.6, rel=1e-6)
        assert params.saturate == 84700.0


def test_reference_images(sim: SimulatedSet, jref: Path) -> None:
    primary = read_frame(sim.exposures[0].raw).primary
    bias = read_frame(resolve_ref(primary["BIASFILE"]))
    assert [s.sci.shape for s in bias.imsets] == [RAW_SHAPE, RAW_SHAPE]
    dark = read_frame(resolve_ref(primary["DARKFILE"]))
    assert dark.imsets[0].sci_header["BUNIT"] == "ELECTRONS/S"
    assert dark.imsets[0].sci.shape == TRIM_SHAPE
    flat = read_frame(resolve_ref(primary["PFLTFILE"]))
    assert flat.primary["FILTER1"] == primary["FILTER1"]
    mean = np.mean([s.sci.mean(dtype=np.float64) for s in flat.imsets])
    assert mean == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(flat.imset(1).sci, sim.refs.flats["F606W"][1])


def test_reference_tables(sim: SimulatedSet, jref: Path) -> None:
    primary = read_frame(sim.exposures[0].raw).primary
    osc = fits.getdata(resolve_ref(primary["OSCNTAB"]))
    for row in osc:
        lay = chip_layout(int(row["CCDCHIP"]))
        assert (row["NX"], row["NY"]) == (RAW_SHAPE[1], RAW_SHAPE[0])
        assert row["TRIMY1"] == lay.image_rows.start
        assert row["TRIMX1"] == row["TRIMX2"] == 24
    bpx = fits.getdata(resolve_ref(primary["BPIXTAB"]))
    assert set(bpx["AXIS"]) == {1, 2} and np.all(bpx["VALUE"] == 4)
    flagged = sum(int(m.sum()) for m in sim.refs.bad.values())
    assert flagged == pytest.approx(bpx["LENGTH"].sum(), rel=0.01)  # few overlaps
    crr = fits.getdata(resolve_ref(primary["CRREJTAB"]))
    assert {"CRSIGMAS", "CRRADIUS", "CRTHRESH", "INITGUES", "SCALENSE", "SKYSUB"} <= set(
        crr.columns.names
    )
    with fits.open(resolve_ref(primary["IMPHTTAB"])) as imp:
        assert imp[0].header["NEXTEND"] == 3
        table = imp["PHOTFLAM"].data
        row = table[np.char.strip(table["OBSMODE"]) == "acs,wfc1,f606w"][0]
        assert row["PHOTFLAM"] == pytest.approx(photometry("F606W", 1)[0])
        mjd_row = table[np.char.strip(table["OBSMODE"]) == "acs,wfc1,f606w,mjd#"][0]
        assert mjd_row["DATACOL"].strip() == "PHOTFLAM1" and mjd_row["NELEM1"] == 6


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_exposures"):
        simulate_set(tmp_path, n_exposures=0)
    with pytest.raises(ValueError, match="visit"):
        simulate_set(tmp_path, visit="abc")


PCTETAB = pctetab()  # $OWL_FIXTURES, or ../shared/fixtures/cte beside the repository


@pytest.mark.skipif(not PCTETAB.exists(), reason="pack-S CTE fixtures not present")
def test_cte_trails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = simulate_set(tmp_path / "plain", n_exposures=1, seed=11)
    trailed = simulate_set(tmp_path / "cte", n_exposures=1, seed=11, pctetab=PCTETAB)
    primary = read_frame(trailed.exposures[0].raw).primary
    assert primary["PCTECORR"] == "PERFORM" and primary["DRKCFILE"] == primary["DARKFILE"]
    monkeypatch.setenv("jref", str(trailed.refs.directory) + os.sep)
    assert resolve_ref(primary["PCTETAB"]).exists()
    a = read_frame(plain.exposures[0].raw, sci_dtype=np.float64).imset(2).sci
    b = read_frame(trailed.exposures[0].raw, sci_dtype=np.float64).imset(2).sci
    # Same random draws, so only the readout differs: charge moves from sources into
    # trails, and some stays in the traps (never more charge than without CTE).
    diff = b - a
    assert diff.max() > 5 and diff.min() < -5
    assert 0 <= -diff.sum() < 0.1 * np.abs(diff).sum()
