"""Reference files with PEDIGREE=DUMMY, on a simulated subarray (no hstcal needed).

What hstcal does with them (``owl.calib.pedigree``): the step is not performed, its switch is
SKIPPED and the primary header says ``<SWITCH> skipped due to dummy reference file ...``
followed by the file's name, PEDIGREE and DESCRIP; a DUMMY OSCNTAB leaves the frame untrimmed
with BLEVCORR=COMPLETE; a DUMMY CCDTAB or PCTETAB, or DUMMY files for every step asked for,
are errors. ``test_hstcal_pedigree.py`` checks the same cases against hstcal itself.
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
from owl.calib.cte import run_acscte
from owl.calib.dqicorr import ATODSAT
from owl.calib.fitsio import read_frame
from owl.calib.pedigree import is_dummy
from owl.calib.simulate import simulate_set
from owl.calib.simulate_2d import Extras
from owl.errors import CalibError

DUMMY = "DUMMY 01/01/2026"


def make_dummy(refs: Path, name: str) -> str:
    """Copy reference ``name`` to ``<stem>_dmy.fits`` with PEDIGREE=DUMMY; its header value."""
    target = refs / name.replace(".fits", "_dmy.fits")
    if not target.exists():
        shutil.copyfile(refs / name, target)
        fits.setval(target, "PEDIGREE", value=DUMMY, ext=0)
    return f"jref${target.name}"


def history(path: Path) -> list[str]:
    return [str(c) for c in fits.getheader(path).get("HISTORY", [])]


def block(lines: list[str], first: str) -> list[str]:
    """The history line ``first`` and the indented lines that follow it."""
    start = lines.index(first)
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return lines[start:end]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("pedigree")
    s = simulate_set(root / "in", n_exposures=1, seed=17, visit="93", subarray="WFC1A-512",
                     n_stars=40, n_bright=0, sink=True, extras=Extras(delta_flat=True))
    refs = s.refs.directory
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("jref", f"{refs}/")
        raw = s.exposures[0].raw
        blv = acsccd(raw, root / "jsim9301q_blv_tmp.fits")
        yield {"sim": s, "refs": refs, "raw": raw, "blv": blv, "root": root}


def _key(sim: dict[str, Any], keyword: str) -> str:
    name = str(fits.getval(sim["raw"], keyword)).split("$")[-1]
    return make_dummy(sim["refs"], name)


def test_is_dummy_is_hstcals_five_letter_prefix() -> None:
    assert is_dummy("DUMMY") and is_dummy(DUMMY) and is_dummy("DUMMYISH")
    assert not any(is_dummy(p) for p in ("dummy", " DUMMY", "INFLIGHT 01/01/2020", "", None))


def test_dummy_dark_is_not_applied_and_switch_says_skipped(sim: dict[str, Any],
                                                          tmp_path: Path) -> None:
    dark = _key(sim, "DARKFILE")
    report: list[str] = []
    out = acs2d(sim["blv"], tmp_path / "d_flt.fits", keywords={"DARKFILE": dark},
                report=report.append)
    plain = acs2d(sim["blv"], tmp_path / "o_flt.fits", switches={"DARKCORR": "OMIT"})
    a, b = read_frame(out), read_frame(plain)
    np.testing.assert_array_equal(a.imsets[0].sci, b.imsets[0].sci)
    np.testing.assert_array_equal(a.imsets[0].err, b.imsets[0].err)
    np.testing.assert_array_equal(a.imsets[0].dq, b.imsets[0].dq)
    assert a.primary["DARKCORR"] == "SKIPPED" and a.primary["FLATCORR"] == "COMPLETE"
    assert "MEANDARK" not in a.imsets[0].sci_header
    assert block(history(out), "DARKCORR skipped due to dummy reference file ...") == [
        "DARKCORR skipped due to dummy reference file ...", f"  reference image {dark}",
        f"    {DUMMY}", "    owl simulator superdark (e-/s)"]
    assert "DARKCORR SKIPPED" in report and f"DARKFILE PEDIGREE={DUMMY}" in report


def test_dummy_acsccd_references(sim: dict[str, Any], tmp_path: Path) -> None:
    # BPIXTAB, BIASFILE and SNKCFILE DUMMY: the same pixels as with those steps OMIT.
    keys = {k: _key(sim, k) for k in ("BPIXTAB", "BIASFILE", "SNKCFILE")}
    out = acsccd(sim["raw"], tmp_path / "d_blv_tmp.fits", keywords=keys)
    plain = acsccd(sim["raw"], tmp_path / "o_blv_tmp.fits",
                   switches={"DQICORR": "OMIT", "BIASCORR": "OMIT", "SINKCORR": "OMIT"})
    a, b = read_frame(out), read_frame(plain)
    for name in ("sci", "err", "dq"):
        np.testing.assert_array_equal(getattr(a.imsets[0], name), getattr(b.imsets[0], name))
    ph, lines = a.primary, history(out)
    assert (ph["DQICORR"], ph["BIASCORR"], ph["SINKCORR"], ph["BLEVCORR"]) == \
        ("SKIPPED", "SKIPPED", "SKIPPED", "COMPLETE")
    assert block(lines, "DQICORR skipped due to dummy reference file ...")[1:4] == [
        "  values checked for saturation", "  DQ array initialized ...",
        f"  reference table {keys['BPIXTAB']}"]
    for switch, key in (("BIASCORR", "BIASFILE"), ("SINKCORR", "SNKCFILE")):
        assert block(lines, f"{switch} skipped due to dummy reference file ...")[1:3] == [
            f"  reference image {keys[key]}", f"    {DUMMY}"]


def test_dummy_oscntab_leaves_the_frame_untrimmed_yet_blevcorr_complete(
        sim: dict[str, Any], tmp_path: Path) -> None:
    oscn = _key(sim, "OSCNTAB")
    # as hstcal: even BLEVCORR=OMIT becomes COMPLETE when the OSCNTAB is DUMMY
    out = acsccd(sim["raw"], tmp_path / "d_blv_tmp.fits", keywords={"OSCNTAB": oscn},
                 switches={"BLEVCORR": "OMIT"})
    plain = acsccd(sim["raw"], tmp_path / "o_blv_tmp.fits", switches={"BLEVCORR": "OMIT"})
    a, b = read_frame(out), read_frame(plain)
    assert a.imsets[0].sci.shape == read_frame(sim["raw"]).imsets[0].sci.shape
    np.testing.assert_array_equal(a.imsets[0].sci, b.imsets[0].sci)
    assert a.primary["BLEVCORR"] == "COMPLETE" and "MEANBLEV" not in a.imsets[0].sci_header
    assert block(history(out), "  Overscan region table:") == [
        "  Overscan region table:", f"  reference table {oscn}", f"    {DUMMY}",
        "    owl simulator overscan regions"]
    assert "BLEVCORR complete, but default bias level was subtracted." in history(out)
    with pytest.raises(CalibError, match="overscan region not trimmed"):
        acs2d(out, tmp_path / "d_flt.fits")


def test_dummy_flat_among_good_ones_is_left_out(sim: dict[str, Any], tmp_path: Path) -> None:
    pflt = _key(sim, "PFLTFILE")
    out = acs2d(sim["blv"], tmp_path / "d_flt.fits", keywords={"PFLTFILE": pflt})
    plain = acs2d(sim["blv"], tmp_path / "o_flt.fits", keywords={"PFLTFILE": "N/A"})
    np.testing.assert_array_equal(read_frame(out).imsets[0].sci,
                                  read_frame(plain).imsets[0].sci)
    assert fits.getval(out, "FLATCORR") == "COMPLETE"
    assert f"  reference image {pflt}" in history(out) and f"    {DUMMY}" in history(out)
    both = acs2d(sim["blv"], tmp_path / "b_flt.fits",
                 keywords={"PFLTFILE": pflt, "DFLTFILE": _key(sim, "DFLTFILE")})
    assert fits.getval(both, "FLATCORR") == "SKIPPED"
    assert len(block(history(both), "FLATCORR skipped due to dummy reference file ...")) == 7


def test_dummy_ccdtab_pctetab_and_nothing_left_are_errors(sim: dict[str, Any],
                                                          tmp_path: Path) -> None:
    ccd = _key(sim, "CCDTAB")
    with pytest.raises(CalibError, match=r"CCDTAB `jref\$owlsim_ccd_dmy\.fits' is a dummy"):
        acsccd(sim["raw"], tmp_path / "c_blv_tmp.fits", keywords={"CCDTAB": ccd})
    every = {k: _key(sim, k) for k in ("DARKFILE", "PFLTFILE", "DFLTFILE", "IMPHTTAB")}
    with pytest.raises(CalibError, match=r"no output: .*PEDIGREE = DUMMY .*owlsim_drk_dmy"):
        acs2d(sim["blv"], tmp_path / "a_flt.fits", keywords=every)
    assert not (tmp_path / "a_flt.fits").exists()
    # hstcal reads only the PCTETAB's PEDIGREE before giving up: any DUMMY file will do
    blv = tmp_path / "x_blv_tmp.fits"
    shutil.copyfile(sim["blv"], blv)
    fits.setval(blv, "PCTECORR", value="PERFORM", ext=0)
    with pytest.raises(CalibError, match=r"PCTETAB `jref\$owlsim_osc_dmy\.fits'.*DUMMY"):
        run_acscte(blv, tmp_path / "x_blc_tmp.fits", keywords={"PCTETAB": _key(sim, "OSCNTAB")})


def test_dummy_ccdtab_row_warns_and_atod_saturation_is_flagged(sim: dict[str, Any],
                                                               tmp_path: Path) -> None:
    refs = sim["refs"]
    with fits.open(refs / "owlsim_ccd.fits") as hdul:
        hdul[1].data["PEDIGREE"][:] = "DUMMY ROW"
        hdul.writeto(refs / "owlsim_ccd_row.fits")
    raw = tmp_path / "jsim9301q_raw.fits"
    shutil.copyfile(sim["raw"], raw)
    with fits.open(raw, mode="update") as hdul:
        hdul[1].data[100, 200] = 65535
    report: list[str] = []
    out = read_frame(acsccd(raw, tmp_path / "jsim9301q_blv_tmp.fits", report=report.append,
                            keywords={"CCDTAB": "jref$owlsim_ccd_row.fits"}))
    assert any("Row" in line and "of CCDTAB is DUMMY." in line for line in report)
    raw_h, out_h = read_frame(raw).imsets[0].sci_header, out.imsets[0].sci_header
    dx, dy = (round(float(raw_h[k]) - float(out_h[k])) for k in ("LTV1", "LTV2"))
    assert out.imsets[0].dq[100 - dy, 200 - dx] & ATODSAT
    assert np.count_nonzero(out.imsets[0].dq & ATODSAT) == 1


def test_a_coronagraphic_spot_flat_is_refused_and_a_lone_cfltfile_ignored(
        sim: dict[str, Any], tmp_path: Path) -> None:
    flat = str(fits.getval(sim["raw"], "PFLTFILE"))
    table = str(fits.getval(sim["raw"], "CCDTAB"))
    with pytest.raises(CalibError, match=r"CFLTFILE=.* and SPOTTAB=.* name a coronagraphic "
                                         r"spot flat \(ACS/HRC\)"):
        acs2d(sim["blv"], tmp_path / "s_flt.fits",
              keywords={"CFLTFILE": flat, "SPOTTAB": table})
    assert not (tmp_path / "s_flt.fits").exists()
    with pytest.raises(CalibError, match=r"nosuch_cfl\.fits"):
        acs2d(sim["blv"], tmp_path / "m_flt.fits",
              keywords={"CFLTFILE": "jref$nosuch_cfl.fits"})
    lone = acs2d(sim["blv"], tmp_path / "c_flt.fits", keywords={"CFLTFILE": flat})
    plain = acs2d(sim["blv"], tmp_path / "p_flt.fits", keywords={"CFLTFILE": "N/A"})
    np.testing.assert_array_equal(read_frame(lone).imsets[0].sci,
                                  read_frame(plain).imsets[0].sci)
