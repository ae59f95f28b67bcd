"""Write a simulated ACS/WFC data set: N raw exposures of one scene plus reference files.

Usage: python3 tools/simulate_acs.py OUTDIR [--exposures N] [--seed S] [--exptime T]
       [--filter F606W] [--visit 01] [--pctetab PCTETAB] [--expstart MJD]
       [--shading BIN] [--delta-flat] [--low-order-flat] [--flashdur S] [--cte-dark]
       [--subarray WFC1A-1K] [--sink]

The reference files land in OUTDIR/refs; calibrate with ``export jref=OUTDIR/refs/``.
"""

from __future__ import annotations

import argparse
import sys

from owl.calib.simulate import simulate_set
from owl.calib.simulate_2d import Extras
from owl.calib.simulate_tables import FILTERS
from owl.calib.subarray import APERTURES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="output directory")
    parser.add_argument("--exposures", type=int, default=2, help="exposures in the set")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--exptime", type=float, default=500.0, help="seconds per exposure")
    parser.add_argument("--filter", default="F606W", choices=FILTERS, help="FILTER1")
    parser.add_argument("--visit", default="01", help="two characters of the rootnames")
    parser.add_argument("--pctetab", default=None, help="add CTE trails with this PCTETAB")
    parser.add_argument("--expstart", type=float, default=58853.20733,
                        help="EXPSTART (MJD); before 54962 gives pre-SM4 frames (CLAMP readout)")
    parser.add_argument("--shading", type=int, default=0,
                        help="write a SHADFILE: 1 full size, N binned N x N (SHADCORR=PERFORM)")
    parser.add_argument("--delta-flat", action="store_true", help="write a DFLTFILE")
    parser.add_argument("--low-order-flat", action="store_true", help="write an LFLTFILE")
    parser.add_argument("--flashdur", type=float, default=0.0,
                        help="seconds of post-flash (FLSHFILE, FLSHCORR=PERFORM)")
    parser.add_argument("--cte-dark", action="store_true",
                        help="with --pctetab: a separate DRKCFILE and a trailed DARKFILE")
    parser.add_argument("--subarray", default=None, choices=sorted(APERTURES),
                        help="write raw frames of this subarray aperture (one amp, one chip)")
    parser.add_argument("--sink", action="store_true",
                        help="write a SNKCFILE and set SINKCORR=PERFORM")
    args = parser.parse_args(argv)
    try:
        extras = Extras(shading=args.shading, delta_flat=args.delta_flat,
                        low_order_flat=args.low_order_flat, flashdur=args.flashdur,
                        cte_dark=args.cte_dark)
        result = simulate_set(args.outdir, n_exposures=args.exposures, seed=args.seed,
                              exptime=args.exptime, filt=args.filter, visit=args.visit,
                              pctetab=args.pctetab, expstart=args.expstart, extras=extras,
                              subarray=args.subarray, sink=args.sink)
    except ValueError as exc:
        parser.error(str(exc))
    for exposure in result.exposures:
        print(exposure.raw)
    if result.asn is not None:
        print(result.asn)
    print(f"export jref={result.refs.directory}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
