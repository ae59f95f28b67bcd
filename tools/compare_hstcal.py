"""Run hstcal and owl step by step on one simulated set and print how they differ.

Each step runs on hstcal's own input to it (so differences do not accumulate): ACSCCD on the
raw frames, ACSREJ on hstcal's ``_blv_tmp`` files, ACS2D on hstcal's ``_blv_tmp`` and
``_crj_tmp``. Prints, per output extension, the maximum absolute and relative difference
and how many pixels differ by more than ``--rtol`` (FITSDiff's rule), then every compared
keyword that differs (see :mod:`owl.calib.parity`).

Usage: ``HSTCAL_BIN=/path/to/hstcal/bin python3 tools/compare_hstcal.py SETDIR WORKDIR``
where SETDIR was written by ``tools/simulate_acs.py`` (raw files, ``_asn``, ``refs/``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.acsrej import acsrej
from owl.calib.parity import compare, hstcal_bin, run_hstcal, stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setdir", type=Path, help="directory written by simulate_acs.py")
    parser.add_argument("workdir", type=Path, help="scratch directory (replaced)")
    parser.add_argument("--rtol", type=float, default=1e-7)
    args = parser.parse_args(argv)
    if hstcal_bin() is None:
        print("HSTCAL_BIN is not set to a directory with hstcal's acsccd.e", file=sys.stderr)
        return 2
    jref = (args.setdir / "refs").resolve()
    raws = sorted(args.setdir.glob("*_raw.fits"))
    work = args.workdir.resolve()
    os.environ["jref"] = f"{jref}/"  # noqa: SIM112  (hstcal and owl read lower-case jref)
    ccd = stage(raws, work / "hstcal_ccd")
    for raw in ccd:
        run_hstcal("acsccd.e", [raw.name], raw.parent, jref)
    hblv = [r.with_name(r.name.replace("_raw", "_blv_tmp")) for r in ccd]
    print(f"== ACSCCD ({len(raws)} frames, owl on the raw files)")
    (work / "owl").mkdir(exist_ok=True)
    for raw, theirs in zip(raws, hblv, strict=True):
        ours = acsccd(raw, work / "owl" / theirs.name, overwrite=True)
        print(theirs.name)
        print("\n".join(compare(ours, theirs, args.rtol).lines()))
    print("== ACS2D (owl on hstcal's _blv_tmp)")
    d2 = stage(hblv, work / "hstcal_2d")
    for blv in d2:
        run_hstcal("acs2d.e", [blv.name], blv.parent, jref)
        theirs = blv.with_name(blv.name.replace("_blv_tmp", "_flt"))
        src = stage([blv], work / "owl_2d" / blv.stem)[0]
        ours = acs2d(src, src.with_name(theirs.name), overwrite=True)
        print(theirs.name)
        print("\n".join(compare(ours, theirs, args.rtol).lines()))
    if len(hblv) > 1:
        print("== ACSREJ (owl on hstcal's _blv_tmp)")
        asn = sorted(args.setdir.glob("*_asn.fits"))
        product = asn[0].name[:9] if asn else "product"
        rej = stage(hblv, work / "hstcal_rej")
        run_hstcal("acsrej.e", [",".join(b.name for b in rej), f"{product}_crj_tmp.fits"],
                   rej[0].parent, jref)
        mine = stage(hblv, work / "owl_rej")
        ours = acsrej(mine, mine[0].with_name(f"{product}_crj_tmp.fits"), overwrite=True).output
        theirs = rej[0].with_name(f"{product}_crj_tmp.fits")
        print(theirs.name)
        print("\n".join(compare(ours, theirs, args.rtol).lines()))
        print("== ACS2D on the _crj_tmp (owl on hstcal's)")
        src = stage([theirs], work / "owl_crj")[0]
        run_hstcal("acs2d.e", [theirs.name], theirs.parent, jref)
        ours = acs2d(src, src.with_name(f"{product}_crj.fits"), overwrite=True)
        print(f"{product}_crj.fits")
        print("\n".join(compare(ours, theirs.with_name(f"{product}_crj.fits"), args.rtol).lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
