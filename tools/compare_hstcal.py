"""Run hstcal and owl step by step on one simulated set and print how they differ.

Each step runs on hstcal's own input to it (so differences do not accumulate): ACSCCD on the
raw frames, ACS2D on hstcal's ``_blv_tmp``; with PCTECORR=PERFORM also ACSCTE on hstcal's
``_blv_tmp`` and ACS2D on hstcal's ``_blc_tmp`` (the ``_flc``); for an association ACSREJ
on hstcal's ``_blv_tmp`` files (product and the CR flags written back) and ACS2D on its
``_crj_tmp`` (:func:`owl.calib.parity_set.compare_set`). Prints, per output extension, the
maximum absolute and relative difference and how many pixels differ by more than ``--rtol``
(FITSDiff's rule), then every compared keyword that differs (see :mod:`owl.calib.parity`).

Usage: ``HSTCAL_BIN=/path/to/hstcal/bin python3 tools/compare_hstcal.py SETDIR WORKDIR``
where SETDIR was written by ``tools/simulate_acs.py`` (raw files, ``_asn``, ``refs/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from owl.calib.parity import hstcal_bin
from owl.calib.parity_set import compare_set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setdir", type=Path, help="directory written by simulate_acs.py")
    parser.add_argument("workdir", type=Path, help="scratch directory (replaced)")
    parser.add_argument("--rtol", type=float, default=1e-7)
    args = parser.parse_args(argv)
    if hstcal_bin() is None:
        print("HSTCAL_BIN is not set to a directory with hstcal's acsccd.e", file=sys.stderr)
        return 2
    for label, diff in compare_set(args.setdir, args.workdir, args.rtol):
        print(label)
        print("\n".join(diff.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
