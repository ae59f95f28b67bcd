"""DUMMY reference files against hstcal's executables (``HSTCAL_BIN``; skipped without it).

hstcal and owl run on the same simulated ``WFC1A-512`` frame (sink pixels, shading, delta flat,
post-flash) with one or more references copied with PEDIGREE=DUMMY: ACSCCD on the raw frame,
ACS2D on hstcal's own ``_blv_tmp``, ACSCTE on a ``_blv_tmp`` with PCTECORR=PERFORM. Where
hstcal writes a file, owl's is identical (0 differing SCI/ERR/DQ pixels, the compared
keywords equal) and holds hstcal's DUMMY history lines; where hstcal refuses (DUMMY CCDTAB or
PCTETAB, nothing left to do, untrimmed input), owl raises and writes nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.cte import run_acscte
from owl.calib.parity import compare, hstcal_bin, run_hstcal
from owl.calib.simulate import simulate_set
from owl.calib.simulate_2d import Extras
from owl.errors import CalibError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(hstcal_bin() is None,
                       reason="HSTCAL_BIN is not set to a local hstcal build (acsccd.e)"),
]

ROOT = "jsim9401q"
#: Lines that start hstcal's history of a step affected by a DUMMY reference.
STARTS = ("skipped due to dummy reference file", "BLEVCORR complete, but default bias",
          "  Overscan region table:")


@pytest.fixture(scope="module")
def hst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("hstcal_pedigree")
    sim = simulate_set(root / "in", n_exposures=1, seed=23, visit="94", subarray="WFC1A-512",
                       n_stars=60, n_bright=1, sink=True,
                       extras=Extras(shading=1, delta_flat=True, flashdur=1.0))
    refs = sim.refs.directory
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("jref", f"{refs}/")
        base = root / "base"
        base.mkdir()
        raw = Path(shutil.copy2(sim.exposures[0].raw, base))
        run_hstcal("acsccd.e", [raw.name], base, refs)
        yield {"refs": refs, "raw": sim.exposures[0].raw, "blv": base / f"{ROOT}_blv_tmp.fits",
               "root": root}


def _dummy(hst: dict[str, Any], header: fits.Header, keyword: str) -> str:
    """A PEDIGREE=DUMMY copy of the file ``keyword`` names; its ``jref$`` name."""
    name = str(header[keyword]).split("$")[-1]
    target = hst["refs"] / name.replace(".fits", "_dmy.fits")
    if not target.exists():
        shutil.copyfile(hst["refs"] / name, target)
        fits.setval(target, "PEDIGREE", value="DUMMY 01/01/2026", ext=0)
    return f"jref${target.name}"


def _variant(hst: dict[str, Any], src: Path, where: Path, dummies: tuple[str, ...],
             **values: str) -> tuple[Path, Path]:
    """``src`` copied for hstcal and for owl, with ``dummies`` pointing at DUMMY copies."""
    header = fits.getheader(src)
    keys = {k: _dummy(hst, header, k) for k in dummies} | values
    out = []
    for side in ("hstcal", "owl"):
        (where / side).mkdir(parents=True)
        path = Path(shutil.copy2(src, where / side))
        with fits.open(path, mode="update") as hdul:
            for k, v in keys.items():
                hdul[0].header[k] = v
        out.append(path)
    return out[0], out[1]


def _blocks(path: Path) -> list[list[str]]:
    """The DUMMY history blocks: a :data:`STARTS` line and the indented lines after it (the
    OSCNTAB's block only when it names a DUMMY table)."""
    lines = [str(c) for c in fits.getheader(path).get("HISTORY", [])]
    found = []
    for i, line in enumerate(lines):
        if any(s in line if not s.startswith(" ") else line == s for s in STARTS):
            end = i + 1
            while end < len(lines) and lines[end].startswith("  ") \
                    and not lines[end].startswith("  Overscan"):
                end += 1
            part = lines[i:end]
            if not line.startswith("  Overscan") or any("DUMMY" in x for x in part):
                found.append(part)
    return found


def _same(ours: Path, theirs: Path) -> None:
    diff = compare(ours, theirs)
    for a in diff.arrays:
        assert a.ndiff == 0, a
    assert diff.keywords == {}
    expected = _blocks(theirs)
    assert expected, "hstcal wrote no DUMMY history"
    assert _blocks(ours) == expected


CCD_CASES = {
    "bpix_sink": (("BPIXTAB", "SNKCFILE"), {}),
    "bias": (("BIASFILE",), {}),
    "oscn": (("OSCNTAB",), {}),
    "oscn_blev_omit": (("OSCNTAB",), {"BLEVCORR": "OMIT"}),
}


@pytest.mark.parametrize("case", sorted(CCD_CASES))
def test_acsccd_with_dummy_references_matches_hstcal(hst: dict[str, Any], tmp_path: Path,
                                                     case: str) -> None:
    dummies, values = CCD_CASES[case]
    h, o = _variant(hst, hst["raw"], tmp_path, dummies, **values)
    run_hstcal("acsccd.e", [h.name], h.parent, hst["refs"])
    theirs = h.with_name(f"{ROOT}_blv_tmp.fits")
    ours = acsccd(o, o.with_name(theirs.name))
    _same(ours, theirs)
    if "OSCNTAB" in dummies:  # untrimmed with BLEVCORR=COMPLETE: both ACS2Ds refuse it
        with pytest.raises(CalibError, match="not trimmed"):
            run_hstcal("acs2d.e", [theirs.name], theirs.parent, hst["refs"])
        with pytest.raises(CalibError, match="not trimmed"):
            acs2d(ours, ours.with_name(f"{ROOT}_flt.fits"))


TWO_D_CASES = {
    "dark_shad": ("DARKFILE", "SHADFILE"),
    "flash_phot": ("FLSHFILE", "IMPHTTAB"),
    "pflt": ("PFLTFILE",),
    "pflt_dflt": ("PFLTFILE", "DFLTFILE"),
}


@pytest.mark.parametrize("case", sorted(TWO_D_CASES))
def test_acs2d_with_dummy_references_matches_hstcal(hst: dict[str, Any], tmp_path: Path,
                                                    case: str) -> None:
    dummies = TWO_D_CASES[case]
    h, o = _variant(hst, hst["blv"], tmp_path, dummies)
    run_hstcal("acs2d.e", [h.name], h.parent, hst["refs"])
    theirs = h.with_name(f"{ROOT}_flt.fits")
    ours = acs2d(o, o.with_name(theirs.name))
    if case == "pflt":  # FLATCORR COMPLETE: only the DUMMY flat's history lines to compare
        diff = compare(ours, theirs)
        assert all(a.ndiff == 0 for a in diff.arrays) and diff.keywords == {}
        name = str(fits.getval(o, "PFLTFILE"))
        for path in (ours, theirs):
            lines = [str(c) for c in fits.getheader(path)["HISTORY"]]
            i = lines.index(f"  reference image {name}")
            assert lines[i + 1] == "    DUMMY 01/01/2026"
        return
    _same(ours, theirs)


def _both_refuse(hstcal: Callable[[], object], owl: Callable[[], object], match: str,
                 outputs: tuple[Path, Path]) -> None:
    with pytest.raises(CalibError, match=match):
        hstcal()
    with pytest.raises(CalibError):
        owl()
    assert not any(p.exists() for p in outputs)


def test_what_hstcal_refuses_owl_refuses(hst: dict[str, Any], tmp_path: Path) -> None:
    refs = hst["refs"]
    # a DUMMY CCDTAB
    h, o = _variant(hst, hst["raw"], tmp_path / "ccd", ("CCDTAB",))
    _both_refuse(lambda: run_hstcal("acsccd.e", [h.name], h.parent, refs),
                 lambda: acsccd(o, o.with_name(f"{ROOT}_blv_tmp.fits")), "dummy table",
                 (h.with_name(f"{ROOT}_blv_tmp.fits"), o.with_name(f"{ROOT}_blv_tmp.fits")))
    # every ACSCCD step asked for has a DUMMY file: nothing to do
    h, o = _variant(hst, hst["raw"], tmp_path / "ccd0", ("BPIXTAB", "BIASFILE", "OSCNTAB"),
                    SINKCORR="OMIT")
    _both_refuse(lambda: run_hstcal("acsccd.e", [h.name], h.parent, refs),
                 lambda: acsccd(o, o.with_name(f"{ROOT}_blv_tmp.fits")), "No output",
                 (h.with_name(f"{ROOT}_blv_tmp.fits"), o.with_name(f"{ROOT}_blv_tmp.fits")))
    # ... and every ACS2D step
    h, o = _variant(hst, hst["blv"], tmp_path / "2d0",
                    ("DARKFILE", "FLSHFILE", "PFLTFILE", "DFLTFILE", "SHADFILE", "IMPHTTAB"))
    _both_refuse(lambda: run_hstcal("acs2d.e", [h.name], h.parent, refs),
                 lambda: acs2d(o, o.with_name(f"{ROOT}_flt.fits")), "No output",
                 (h.with_name(f"{ROOT}_flt.fits"), o.with_name(f"{ROOT}_flt.fits")))
    # a DUMMY PCTETAB (hstcal reads only its PEDIGREE, so any DUMMY table will do)
    h, o = _variant(hst, hst["blv"], tmp_path / "cte", (), PCTECORR="PERFORM",
                    PCTETAB=_dummy(hst, fits.getheader(hst["blv"]), "OSCNTAB"))
    _both_refuse(lambda: run_hstcal("acscte.e", [h.name], h.parent, refs),
                 lambda: run_acscte(o, o.with_name(f"{ROOT}_blc_tmp.fits")), "No output",
                 (h.with_name(f"{ROOT}_blc_tmp.fits"), o.with_name(f"{ROOT}_blc_tmp.fits")))
