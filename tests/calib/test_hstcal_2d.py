"""owl's ACS2D steps SHADCORR, DFLTFILE, FLSHCORR and the CTE (_flc) path against hstcal.

Needs a local hstcal build (``HSTCAL_BIN``, see ``test_hstcal_parity.py``) and skips without
one. The simulated sets carry the optional references of :class:`owl.calib.simulate_2d.Extras`.
Each step is compared on hstcal's own input to it; the bound asserted is stated at each test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cte_fixtures import pctetab

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.calacs import calacs
from owl.calib.parity import compare, header_of, hstcal_bin, run_hstcal, stage
from owl.calib.simulate import simulate_set
from owl.calib.simulate_2d import Extras

#: The CTE fixture pack ($OWL_FIXTURES, or ../shared/fixtures/cte beside the repository).
PCTETAB = pctetab()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(hstcal_bin() is None,
                       reason="HSTCAL_BIN is not set to a local hstcal build (acsccd.e)"),
]


def _identical(ours: Path, theirs: Path) -> None:
    diff = compare(ours, theirs)
    for a in diff.arrays:
        assert a.ndiff == 0, (ours.name, a)
    assert diff.keywords == {}, ours.name


@pytest.mark.parametrize("shading", [1, 64])
def test_shading_delta_flat_and_flash_bit_identical(shading: int, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # SHADFILE full size and binned 64 x 64 (hstcal's two-row unbinsect expansion, float32),
    # DFLTFILE after PFLTFILE, FLSHFILE x FLASHDUR with the OVRHFLS dark time: SCI, ERR, DQ
    # and the keywords (MEANFLSH, DARKTIME, the switches) agree exactly. Measured: 0 of
    # 8388608 pixels differ per chip and extension.
    sim = simulate_set(tmp_path / "in", n_exposures=1, seed=9, visit="53",
                       extras=Extras(shading=shading, delta_flat=True, flashdur=5.0))
    jref = sim.refs.directory
    monkeypatch.setenv("jref", f"{jref}/")
    raw = stage([sim.exposures[0].raw], tmp_path / "h")[0]
    run_hstcal("acsccd.e", [raw.name], raw.parent, jref)
    blv = raw.with_name(raw.name.replace("_raw", "_blv_tmp"))
    _identical(acsccd(sim.exposures[0].raw, tmp_path / blv.name), blv)
    mine = stage([blv], tmp_path / "o")[0]
    run_hstcal("acs2d.e", [blv.name], blv.parent, jref)
    flt = blv.with_name(blv.name.replace("_blv_tmp", "_flt"))
    _identical(acs2d(mine, mine.with_name(flt.name)), flt)
    primary = header_of(flt)
    assert (primary["SHADCORR"], primary["FLSHCORR"], primary["FLATCORR"]) == (
        "COMPLETE", "COMPLETE", "COMPLETE")
    assert header_of(flt, ("SCI", 1))["MEANFLSH"] > 9.0


@pytest.mark.timeout(1800)  # full-frame PCTECORR: minutes on a loaded machine
@pytest.mark.skipif(not PCTETAB.is_file(), reason=f"CTE fixture pack absent ({PCTETAB})")
def test_calacs_flc_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PCTECORR=PERFORM through CALACS: ACSCCD, ACSCTE (_blc_tmp), then ACS2D twice: the _flt
    # from _blv_tmp with DARKFILE (trailed dark), the _flc from _blc_tmp with DRKCFILE and,
    # as hstcal, the same FLSHFILE. calacs.e and owl's calacs agree exactly on both products
    # and on the kept _blc_tmp. Measured: 0 of 8388608 pixels differ, no keyword differs.
    sim = simulate_set(tmp_path / "in", n_exposures=1, seed=8, visit="54", pctetab=PCTETAB,
                       extras=Extras(cte_dark=True, flashdur=3.0))
    jref = sim.refs.directory
    monkeypatch.setenv("jref", f"{jref}/")
    theirs = stage([sim.exposures[0].raw], tmp_path / "h")[0]
    run_hstcal("calacs.e", ["-s", theirs.name], theirs.parent, jref)
    mine = stage([sim.exposures[0].raw], tmp_path / "o")[0]
    products = calacs(mine, save_tmp=True)
    root = mine.name[:9]
    for kind in ("blc_tmp", "flt", "flc"):
        _identical(mine.with_name(f"{root}_{kind}.fits"),
                   theirs.with_name(f"{root}_{kind}.fits"))
    assert [p.name for p in products.files["flc"]] == [f"{root}_flc.fits"]
    assert header_of(theirs.with_name(f"{root}_flc.fits"))["DRKCFILE"].endswith("dkc.fits")
