"""ACSREJ on a simulated CR-split pair, checked against the simulator's truth.

The pair is calibrated by ACSCCD and combined with the simulator's CRREJTAB except
``initgues``: with two images the median is the mean of the hit and the clean value, so a
cosmic ray deviates by only half its charge while SCALENSE (30 %) widens the threshold by
15 % of it, and nothing is ever rejected (hstcal's arithmetic, which it avoids with
``minimum`` for CRSPLIT=2).

"Detectable" cosmic-ray pixels are truth-mask pixels whose charge (the ``_blv_tmp`` value
minus the noiseless model scene x flat + dark x DARKTIME) exceeds 10 sigma of the pixel's
noise, outside bad pixels and outside pixels hit in both images (no two-image method can
see those). Below ~10 sigma the first-pass threshold (6.5 ERR, ERR including the ray's own
Poisson noise) is not reached reliably; faint track ends carry a few electrons.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.acsccd import acsccd
from owl.calib.acsrej import acsrej
from owl.calib.crrej import DATAREJECT, CrRejParams, crrej, sky_levels
from owl.calib.fitsio import read_frame
from owl.calib.simulate import SimulatedSet, simulate_set


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("crsplit")
    sim: SimulatedSet = simulate_set(root, n_exposures=2, seed=11)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("jref", str(sim.refs.directory) + "/")
        blv = [acsccd(e.raw, root / f"{e.raw.name[:9]}_blv_tmp.fits") for e in sim.exposures]
        crj = root / "jsim01010_crj_tmp.fits"
        summary = acsrej(blv, crj, overrides={"initgues": "minimum"})
        yield {"sim": sim, "blv": blv, "crj": crj, "summary": summary}


def _model(sim: SimulatedSet, chip: int, ext: int, exposure: int) -> np.ndarray:
    truth = sim.exposures[exposure].truth
    refs = sim.refs
    model: np.ndarray = truth.scene[ext] * refs.flats["F606W"][chip] \
        + refs.dark[chip] * np.float32(truth.darktime)
    return model


def test_cosmic_ray_recall_and_false_flags(pair: dict[str, Any]) -> None:
    sim: SimulatedSet = pair["sim"]
    frames = [read_frame(p) for p in pair["blv"]]
    readnoise = max(sim.refs.detector.readnoise)
    hits = found = false = total = 0
    for imset in frames[0].imsets:
        ext, chip = imset.extver - 1, imset.chip
        truth = np.stack([e.truth.cr_mask[ext] for e in sim.exposures])
        both = truth.all(axis=0)
        for k, frame in enumerate(frames):
            s = frame.imset(chip)
            model = _model(sim, chip, ext, k)
            charge = s.sci - model
            detectable = (truth[k] & ~both & (charge > 10 * np.sqrt(model + readnoise**2))
                          & ((s.dq & ~DATAREJECT) == 0))
            flagged = (s.dq & DATAREJECT) != 0
            hits += int(detectable.sum())
            found += int((flagged & detectable).sum())
            false += int((flagged & ~truth[k]).sum())
            total += s.dq.size
    assert hits > 50_000
    assert found / hits >= 0.995
    assert false / total <= 0.001


def test_combined_image_matches_truth_within_its_errors(pair: dict[str, Any]) -> None:
    sim: SimulatedSet = pair["sim"]
    crj = read_frame(pair["crj"])
    for imset in crj.imsets:
        ext, chip = imset.extver - 1, imset.chip
        model = _model(sim, chip, ext, 0) + _model(sim, chip, ext, 1)
        good = imset.dq == 0
        z = (imset.sci[good] - model[good]) / imset.err[good]
        # Bias-level fits leave ~0.1 e offsets on a ~10 e noise: the median is within 0.05.
        assert abs(np.median(z)) < 0.05
        # ERR is the propagated input ERR: the robust scatter of z is 1 to within 5 %.
        assert 0.95 < 1.4826 * np.median(np.abs(z - np.median(z))) < 1.05


def test_output_header_records_the_combination(pair: dict[str, Any]) -> None:
    h = fits.getheader(pair["crj"])
    assert h["CRCORR"] == "COMPLETE"
    assert h["EXPTIME"] == h["TEXPTIME"] == 1000.0
    # As hstcal: NCOMBINE in the SCI headers; SKYSUM and REJ_RATE of EXTVER 1 (CCDCHIP 2);
    # the CRREJ parameters, ROOTNAME and EXPNAME after the product; ERR[0,0] = -1.
    assert fits.getheader(pair["crj"], ("SCI", 1))["NCOMBINE"] == 2
    assert "NCOMBINE" not in h
    assert h["REJ_RATE"] == pytest.approx(pair["summary"].nrej_by_chip[2] / 1000.0)
    assert h["CRSIGMAS"] and h["CRRADIUS"] > 0 and h["MEANEXP"] == 500.0
    assert h["ROOTNAME"] == Path(pair["crj"]).name.split("_")[0].upper()
    assert fits.getheader(pair["crj"], ("SCI", 2))["EXPNAME"] == h["ROOTNAME"].lower()
    assert fits.getdata(pair["crj"], ("ERR", 1))[0, 0] == -1.0
    assert any("CRCORR complete" in str(c) for c in h["HISTORY"])


def test_sky_mode_of_a_flat_field() -> None:
    rng = np.random.default_rng(3)
    sci = rng.normal(100.0, 8.0, (2, 300, 400)).astype(np.float32)
    sci[1] += 20.0
    sky = sky_levels(sci, np.zeros(sci.shape, np.int16), "mode", 0)
    np.testing.assert_allclose(sky, [100.0, 120.0], atol=0.5)  # mode of 120k samples
    assert not sky_levels(sci, np.zeros(sci.shape, np.int16), "none", 0).any()


def test_pixel_hit_in_every_image_keeps_the_cr_flag() -> None:
    rng = np.random.default_rng(4)
    sci = rng.normal(50.0, 5.0, (3, 40, 50)).astype(np.float32)
    err = np.full(sci.shape, 5.0, np.float32)
    dq = np.zeros(sci.shape, np.int16)
    sci[0, 10, 10] += 4000.0
    sci[:, 30, 30] += np.array([3000.0, 5000.0, 7000.0], np.float32)
    dq[1, 20, 20] = 4
    res = crrej(sci, err, dq, [100.0, 100.0, 100.0],
                CrRejParams(initgues="minimum", skysub="none", badinpdq=4))
    assert res.crmask[0, 10, 10] and not res.crmask[1:, 10, 10].any()
    assert res.dq[10, 10] == 0
    assert res.sci[10, 10] == pytest.approx(sci[1:, 10, 10].sum() * 1.5, rel=1e-6)
    assert res.dq[20, 20] == 4 and not res.crmask[:, 20, 20].any()
    assert res.crmask[1:, 30, 30].all()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="initgues"):
        CrRejParams(initgues="mean")
    with pytest.raises(ValueError, match="at least two"):
        crrej(np.zeros((1, 4, 4), np.float32), np.zeros((1, 4, 4), np.float32),
              np.zeros((1, 4, 4), np.int16), [1.0], CrRejParams())


def test_existing_output_is_not_replaced(pair: dict[str, Any], tmp_path: Path) -> None:
    from owl.errors import CalibError

    with pytest.raises(CalibError, match="output exists"):
        acsrej(pair["blv"], pair["crj"])


def _flat_stack(n: int = 3, shape: tuple[int, int] = (30, 40)) -> tuple[np.ndarray, ...]:
    sci = np.full((n, *shape), 100.0, np.float32)
    err = np.full(sci.shape, 10.0, np.float32)
    return sci, err, np.zeros(sci.shape, np.int16)


def test_input_dq_bits_2_4_8_stay_out_of_the_sum() -> None:
    # hstcal seeds its rejection mask with the input DQ: bits 2, 4 and 8 never enter the
    # combination, other bits (e.g. 256, saturation) do.
    sci, err, dq = _flat_stack()
    params = CrRejParams(skysub="none", initgues="median", badinpdq=0, crsigmas=(50.0,))
    for bit in (2, 4, 8):
        s = sci.copy()
        s[0, 5, 5] = 130.0
        d = dq.copy()
        d[0, 5, 5] = bit | 16
        res = crrej(s, err, d, [1.0, 1.0, 1.0], params)
        assert res.sci[5, 5] == pytest.approx(300.0), bit
    s = sci.copy()
    s[0, 5, 5] = 130.0
    d = dq.copy()
    d[0, 5, 5] = 256
    assert crrej(s, err, d, [1.0] * 3, params).sci[5, 5] == pytest.approx(330.0)


def test_pixel_excluded_in_every_input_gets_the_sky() -> None:
    sci, err, dq = _flat_stack()
    sci[:] += np.random.default_rng(1).normal(0.0, 1.0, sci.shape).astype(np.float32)
    dq[:, 7, 9] = 4
    res = crrej(sci, err, dq, [1.0] * 3, CrRejParams(initgues="median", badinpdq=0))
    assert res.sci[7, 9] == pytest.approx(res.skysum) and res.skysum > 0
    assert res.dq[7, 9] == 4  # no CR bit: excluded is not rejected


def test_spill_grows_down_the_rows_unless_symmetric() -> None:
    # A hit on row 10: hstcal's scrolling buffer marks SPILL on rows 10-12 only (the rows
    # above it in the buffer are already summed); symmetric growth marks rows 8-9 too.
    sci, err, dq = _flat_stack(3)
    sci[0, 10, 20] += 5000.0
    sci[0, 8:13, 20] += 35.0  # above crthresh x 5 sigma (25), below 5 sigma (50)
    base = CrRejParams(skysub="none", initgues="median", badinpdq=0, crsigmas=(5.0,),
                       crthresh=0.5)
    hst = crrej(sci, err, dq, [1.0] * 3, base).crmask[0, 8:13, 20]
    sym = crrej(sci, err, dq, [1.0] * 3,
                CrRejParams(**{**base.__dict__, "symmetric_spill": True})).crmask[0, 8:13, 20]
    assert hst.tolist() == [False, False, True, True, True]
    assert sym.tolist() == [True, True, True, True, True]


def test_minimum_guess_rule_and_the_good_minimum_option() -> None:
    from owl.calib.crrej_guess import minimum_guess

    sci = np.array([[[50.0]], [[80.0]], [[70.0]]], np.float32)
    dq = np.array([[[1]], [[0]], [[0]]], np.int16)
    efac = np.ones(3, np.float32)  # no sky, 1 s: the values are already in e/s
    ave = np.empty((1, 1), np.float32)
    minimum_guess(sci, dq, efac, 1, False, ave)
    assert ave[0, 0] == 0.0  # hstcal: the flagged first value resets the guess to 0
    minimum_guess(sci, dq, efac, 1, True, ave)
    assert ave[0, 0] == 70.0
