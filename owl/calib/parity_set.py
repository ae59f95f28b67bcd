"""Run hstcal and owl step by step on one simulated set and collect how they differ.

Each step runs on hstcal's own input to it, so differences do not accumulate: ACSCCD on the
raw frames, ACS2D on hstcal's ``_blv_tmp``; with PCTECORR=PERFORM, ACSCTE on hstcal's
``_blv_tmp`` and ACS2D on hstcal's ``_blc_tmp`` (the ``_flc``); for an association, ACSREJ
on hstcal's ``_blv_tmp`` files and ACS2D on hstcal's ``_crj_tmp``. ``tools/compare_hstcal.py``
prints the result; ``tests/calib/test_hstcal_sub.py`` asserts on it.
"""

from __future__ import annotations

import os
from pathlib import Path

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.acsrej import acsrej
from owl.calib.cte import run_acscte
from owl.calib.parity import FileDiff, compare, header_of, run_hstcal, stage


def compare_set(setdir: Path, workdir: Path, rtol: float = 1e-7) -> list[tuple[str, FileDiff]]:
    """(``STEP file``, difference) for every output of every step on set ``setdir``.

    ``setdir`` is what ``tools/simulate_acs.py`` writes (raw files, ``_asn``, ``refs/``);
    ``workdir`` is replaced piecewise. Needs ``HSTCAL_BIN``.
    """
    jref = (setdir / "refs").resolve()
    raws = sorted(setdir.glob("*_raw.fits"))
    work = workdir.resolve()
    os.environ["jref"] = f"{jref}/"  # noqa: SIM112  (hstcal and owl read lower-case jref)
    out: list[tuple[str, FileDiff]] = []
    ccd = stage(raws, work / "hstcal_ccd")
    for raw in ccd:
        run_hstcal("acsccd.e", [raw.name], raw.parent, jref)
    hblv = [r.with_name(r.name.replace("_raw", "_blv_tmp")) for r in ccd]
    (work / "owl").mkdir(exist_ok=True)
    for raw, theirs in zip(raws, hblv, strict=True):
        ours = acsccd(raw, work / "owl" / theirs.name, overwrite=True)
        out.append((f"ACSCCD {theirs.name}", compare(ours, theirs, rtol)))
    for blv in stage(hblv, work / "hstcal_2d"):
        out.append((f"ACS2D {blv.name}", _acs2d(blv, "_blv_tmp", "_flt", work / "owl_2d",
                                                jref, rtol)))
    if str(header_of(hblv[0]).get("PCTECORR", "")).strip().upper() == "PERFORM":
        for blv in stage(hblv, work / "hstcal_cte"):
            run_hstcal("acscte.e", [blv.name], blv.parent, jref)
            theirs = blv.with_name(blv.name.replace("_blv_tmp", "_blc_tmp"))
            src = stage([blv], work / "owl_cte" / blv.stem)[0]
            ours = src.with_name(theirs.name)
            run_acscte(src, ours, overwrite=True)
            out.append((f"ACSCTE {theirs.name}", compare(ours, theirs, rtol)))
            flc = stage([theirs], work / "hstcal_flc" / blv.stem)[0]
            out.append((f"ACS2D {flc.name}", _acs2d(flc, "_blc_tmp", "_flc", work / "owl_flc",
                                                    jref, rtol)))
    if len(hblv) > 1:
        asn = sorted(setdir.glob("*_asn.fits"))
        product = f"{asn[0].name[:9] if asn else 'product'}_crj_tmp.fits"
        rej = stage(hblv, work / "hstcal_rej")
        run_hstcal("acsrej.e", [",".join(b.name for b in rej), product], rej[0].parent, jref)
        mine = stage(hblv, work / "owl_rej")
        ours = acsrej(mine, mine[0].with_name(product), overwrite=True).output
        theirs = rej[0].with_name(product)
        out.append((f"ACSREJ {product}", compare(ours, theirs, rtol)))
        for a, b in zip(mine, rej, strict=True):
            out.append((f"ACSREJ {a.name} (CR flags)", compare(a, b, rtol)))
        crj = stage([theirs], work / "hstcal_crj")[0]
        out.append((f"ACS2D {crj.name}", _acs2d(crj, "_crj_tmp", "_crj", work / "owl_crj",
                                                jref, rtol)))
    return out


def _acs2d(src: Path, suffix: str, new: str, owl_dir: Path, jref: Path,
           rtol: float) -> FileDiff:
    """hstcal's and owl's ACS2D on hstcal's ``src`` (already staged for hstcal)."""
    run_hstcal("acs2d.e", [src.name], src.parent, jref)
    name = src.name.replace(suffix, new)
    mine = stage([src], owl_dir / src.stem)[0]
    return compare(acs2d(mine, mine.with_name(name), overwrite=True), src.with_name(name), rtol)
