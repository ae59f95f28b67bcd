"""ACSREJ with SHADCORR=PERFORM and a SHADFILE against hstcal's ``acsrej.e`` and ``calacs.e``.

Needs a local hstcal build (``HSTCAL_BIN``, see ``test_hstcal_parity.py``) and skips without
one. Each CR-split pair is a simulated set with a SHADFILE; ``acsrej.e`` and owl combine
hstcal's own ``_blv_tmp`` files. The sets are chosen so that each of hstcal's buffer rules
(:mod:`owl.calib.crrej_shading`) changes the answer:

- ``full``: a full-size SHADFILE of rough, row-to-row varying shading (0-3 s per pixel) on
  1 s exposures of a dense field, so that the SCALENSE threshold's shading matters: taking
  each row's own shading instead of hstcal's buffer row (``r - 2`` or ``r - 4``) changes
  about 77000 SCI and 44000 DQ pixels per chip (measured);
- ``binned``: the simulator's SHADFILE binned 64 x 64: with ACS2D's expansion instead of
  ``unbinArray``'s about 130000 SCI pixels per chip differ, and correcting every column
  instead of hstcal's first 4096 / 64 nearly all of them (measured);
- ``wfc1``: a ``WFC1B-512`` subarray (offsets 3584, 1536 into the full-frame SHADFILE), for
  which hstcal reads the SHADFILE's EXTVER 1, i.e. chip 2's shading: the chip-1 extension
  changes about 247000 of its 262144 SCI pixels (measured).

The bound is the same as for the other ACSREJ parity tests: SCI, ERR and DQ of the product,
the CR flags written back into the inputs and the compared keywords agree exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.acsrej import acsrej
from owl.calib.calacs import calacs
from owl.calib.parity import compare, header_of, hstcal_bin, run_hstcal, stage
from owl.calib.simulate import SimulatedSet, simulate_set
from owl.calib.simulate_2d import NAMES, Extras

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(hstcal_bin() is None,
                       reason="HSTCAL_BIN is not set to a local hstcal build (acsccd.e)"),
]

#: case -> (SHADFILE binning, subarray, rough SHADFILE, exposure time)
CASES = {"full": (1, None, True, 1.0), "binned": (64, None, False, 1.0),
         "wfc1": (1, "WFC1B-512", True, 1.0)}


def _simulate(directory: Path, case: str) -> SimulatedSet:
    shading, sub, rough, exptime = CASES[case]
    sim = simulate_set(directory, n_exposures=2, seed=21, visit="72", exptime=exptime,
                       subarray=sub, n_stars=30000, extras=Extras(shading=shading))
    if rough:
        rng = np.random.default_rng(5)
        with fits.open(sim.refs.directory / NAMES["SHADFILE"], mode="update") as hdul:
            for h in hdul:
                if h.header.get("EXTNAME") == "SCI":
                    h.data = rng.uniform(0.0, 3.0, h.data.shape).astype(np.float32)
    return sim


def _identical(ours: Path, theirs: Path) -> None:
    diff = compare(ours, theirs)
    for a in diff.arrays:
        assert a.ndiff == 0, (ours.name, a)
    assert diff.keywords == {}, (ours.name, diff.keywords)


@pytest.mark.parametrize("case", sorted(CASES))
def test_acsrej_with_shadfile_bit_identical(case: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sim = _simulate(tmp_path / "in", case)
    jref = sim.refs.directory
    monkeypatch.setenv("jref", f"{jref}/")
    raws = stage([e.raw for e in sim.exposures], tmp_path / "ccd")
    for raw in raws:
        run_hstcal("acsccd.e", [raw.name], raw.parent, jref)
    blv = [r.with_name(r.name.replace("_raw", "_blv_tmp")) for r in raws]
    assert header_of(blv[0])["SHADCORR"] == "PERFORM"
    product = f"{sim.asn.name[:9] if sim.asn else 'jsim72010'}_crj_tmp.fits"
    theirs = stage(blv, tmp_path / "h")
    run_hstcal("acsrej.e", [",".join(b.name for b in theirs), product], theirs[0].parent, jref)
    mine = stage(blv, tmp_path / "o")
    ours = acsrej(mine, mine[0].with_name(product)).output
    _identical(ours, theirs[0].with_name(product))
    for a, b in zip(mine, theirs, strict=True):
        for x in compare(a, b).arrays:
            assert x.ndiff == 0, (a.name, x)
    # hstcal's header: SHADCORR=COMPLETE, then its UpdateSwitch and ImgHistory lines.
    for path in (ours, theirs[0].with_name(product)):
        hist = [str(x) for x in header_of(path)["HISTORY"]]
        i = hist.index("SHADCORR complete ...")
        assert hist[i + 1:i + 4] == [f"  reference image jref${NAMES['SHADFILE']}",
                                     "    MODEL 01/01/2026", "    owl sim shutter shading (s)"]


def test_calacs_cr_split_with_shadcorr_bit_identical(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # calacs.e: ACSCCD, ACSREJ with the SHADFILE (SHADCORR=COMPLETE in the _crj_tmp), ACS2D
    # of the _crj_tmp without a second shading, ACS2D of each _blv_tmp with it (and with
    # ACSREJ's CR flags). owl's calacs writes the same _crj, _crj_tmp and _flt files.
    sim = _simulate(tmp_path / "in", "full")
    jref = sim.refs.directory
    monkeypatch.setenv("jref", f"{jref}/")
    assert sim.asn is not None
    files = [e.raw for e in sim.exposures] + [sim.asn]
    theirs = stage(files, tmp_path / "h")
    run_hstcal("calacs.e", ["-s", theirs[-1].name], theirs[0].parent, jref)
    mine = stage(files, tmp_path / "o")
    products = calacs(mine[-1], save_tmp=True)
    made = [*products.files["crj"], *products.files["crj_tmp"], *products.files["flt"]]
    assert len(made) == 4
    for ours in made:
        _identical(ours, theirs[0].parent / ours.name)
    crj = header_of(products.files["crj"][0])
    assert crj["SHADCORR"] == "COMPLETE"
    assert sum(str(x).startswith("SHADCORR complete") for x in crj["HISTORY"]) == 1
