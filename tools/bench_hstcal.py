"""Time owl against hstcal's executables, step by step, on the same simulated full frames.

Each step runs file to file on the same input (hstcal's own input to that step), owl in this
process after a warm-up run (numba compiles or loads its cache), hstcal as a subprocess; both
at ``--threads`` threads (numba threads; OMP_NUM_THREADS for hstcal). Steps: ACSCCD (one
raw frame), ACSREJ (the CR-split pair), ACS2D (one ``_blv_tmp``), and PCTECORR on a dense
full frame (sky ``--dense-sky`` e-/s and many stars, CTE trails added by the simulator's
forward model), where the cost of the CTE correction grows with the charge to move.

Usage: ``HSTCAL_BIN=/path/to/hstcal/bin python3 tools/bench_hstcal.py [--threads 1]
[--workdir /tmp/owlbench] [--no-cte]``. Called by ``tools/bench_calib.py`` when
HSTCAL_BIN is set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from owl.calib.acs2d import acs2d  # noqa: E402  (after sys.path)
from owl.calib.acsccd import acsccd  # noqa: E402
from owl.calib.acsrej import acsrej  # noqa: E402
from owl.calib.parity import hstcal_bin, run_hstcal, stage  # noqa: E402
from owl.calib.simulate import simulate_set  # noqa: E402

PCTETAB = Path("/work/shared/fixtures/cte/pctetab_synth.fits.gz")


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _owl(fn: Callable[[Path], object], make: Callable[[str], Path]) -> float:
    """Best of two owl runs after a warm-up; ``make(tag)`` stages a fresh input (untimed)."""
    fn(make("warm"))
    best = float("inf")
    for i in range(2):
        staged = make(f"run{i}")
        best = min(best, _timed(lambda staged=staged: fn(staged)))
    return best


def _line(step: str, owl_s: float, hst_s: float) -> None:
    print(f"{step:34s} {owl_s:9.2f} {hst_s:9.2f} {hst_s / owl_s:9.1f}x", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/owlbench"))
    parser.add_argument("--no-cte", action="store_true")
    parser.add_argument("--dense-sky", type=float, default=4.0, help="e-/s, 500 s exposure")
    args = parser.parse_args(argv)
    if hstcal_bin() is None:
        print("HSTCAL_BIN is not set to a directory with hstcal's acsccd.e: not timed")
        return 0
    numba.set_num_threads(args.threads)
    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    sim = simulate_set(work / "set", n_exposures=2, seed=3, visit="91")
    jref = sim.refs.directory
    os.environ["jref"] = f"{jref}/"  # noqa: SIM112  (hstcal and owl read lower-case jref)
    raws = [e.raw for e in sim.exposures]
    print(f"owl vs hstcal, file to file, {args.threads} thread(s) each; seconds")
    print(f"{'step':34s} {'owl':>9s} {'hstcal':>9s} {'speed-up':>10s}")
    ccd = stage(raws, work / "h_ccd")
    t_h = min(_timed(lambda r=r: run_hstcal("acsccd.e", [r.name], r.parent, jref,
                                            threads=args.threads)) for r in ccd[:1])
    blv = [r.with_name(r.name.replace("_raw", "_blv_tmp")) for r in ccd]
    run_hstcal("acsccd.e", [ccd[1].name], ccd[1].parent, jref, threads=args.threads)
    t_o = _owl(lambda d: acsccd(raws[0], d / "x_blv_tmp.fits"),
               lambda tag: _fresh(work / f"o_ccd_{tag}"))
    _line("ACSCCD (1 full frame)", t_o, t_h)
    rej = stage(blv, work / "h_rej")
    names = ",".join(b.name for b in rej)
    t_h = _timed(lambda: run_hstcal("acsrej.e", [names, "p_crj_tmp.fits"], rej[0].parent,
                                    jref, threads=args.threads))
    t_o = _owl(lambda d: acsrej(sorted(d.glob("*_blv_tmp.fits")), d / "p_crj_tmp.fits"),
               lambda tag: stage(blv, work / f"o_rej_{tag}")[0].parent)
    _line("ACSREJ (2 full frames)", t_o, t_h)
    d2 = stage(blv[:1], work / "h_2d")[0]
    t_h = _timed(lambda: run_hstcal("acs2d.e", [d2.name], d2.parent, jref,
                                    threads=args.threads))
    t_o = _owl(lambda d: acs2d(d, d.with_name("x_flt.fits")),
               lambda tag: stage(blv[:1], work / f"o_2d_{tag}")[0])
    _line("ACS2D (1 full frame)", t_o, t_h)
    if not args.no_cte:
        _cte(work, args)
    return 0


def _fresh(d: Path) -> Path:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def _cte(work: Path, args: argparse.Namespace) -> None:
    from owl.calib.cte import run_acscte

    if not PCTETAB.is_file():
        print(f"(PCTECORR not timed: {PCTETAB} is missing)")
        return
    dense = simulate_set(work / "dense", n_exposures=1, seed=4, visit="92", n_stars=20000,
                         sky_rate=args.dense_sky, pctetab=PCTETAB)
    jref = dense.refs.directory
    os.environ["jref"] = f"{jref}/"  # noqa: SIM112  (owl runs in this process)
    raw = stage([dense.exposures[0].raw], work / "h_dense")[0]
    run_hstcal("acsccd.e", [raw.name], raw.parent, jref, threads=args.threads)
    blv = raw.with_name(raw.name.replace("_raw", "_blv_tmp"))
    t_h = _timed(lambda: run_hstcal("acscte.e", [blv.name], blv.parent, jref,
                                    threads=args.threads))
    t_o = _owl(lambda d: run_acscte(d, d.with_name("x_blc_tmp.fits")),
               lambda tag: stage([blv], work / f"o_cte_{tag}")[0])
    _line(f"PCTECORR (dense, sky {args.dense_sky:g} e/s)", t_o, t_h)


if __name__ == "__main__":
    sys.exit(main())
