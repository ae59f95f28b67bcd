"""Time owl against hstcal's executables, step by step, on the same simulated full frames.

Each step runs file to file on the same input (hstcal's own input to that step), owl in this
process after a warm-up run (numba compiles or loads its cache), hstcal as a subprocess; both
at ``--threads`` threads (numba threads; OMP_NUM_THREADS for hstcal), best of two runs each
on freshly staged inputs. The speed-up is owl's cold figure (reference cache emptied before
each run: every reference file is read, as by hstcal); the warm figure (references kept by
the process, as a worker keeps them across exposures) is printed beside it, for
information. Steps: ACSCCD (one raw frame), ACSREJ (the CR-split pair), ACS2D (one
``_blv_tmp``), and PCTECORR on a dense full frame (sky ``--dense-sky`` e-/s and many stars,
CTE trails added by the simulator's forward model), where the cost of the CTE correction
grows with the charge to move (one run each: hstcal takes minutes there).

Usage: ``HSTCAL_BIN=/path/to/hstcal/bin python3 tools/bench_hstcal.py [--threads 1]
[--workdir /tmp/owlbench] [--no-cte]``. Called by ``tools/bench_calib.py`` when
HSTCAL_BIN is set.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numba

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from owl.calib import refcache  # noqa: E402
from owl.calib.acs2d import acs2d  # noqa: E402  (after sys.path)
from owl.calib.acsccd import acsccd  # noqa: E402
from owl.calib.acsrej import acsrej  # noqa: E402
from owl.calib.parity import hstcal_bin, run_hstcal, stage  # noqa: E402
from owl.calib.simulate import simulate_set  # noqa: E402

PCTETAB = Path("/work/shared/fixtures/cte/pctetab_synth.fits.gz")


class Run(NamedTuple):
    """One timed run: wall seconds, and CPU seconds of this process and its children (on a
    shared, loaded machine the steadier figure)."""

    wall: float
    cpu: float


NEVER = Run(float("inf"), float("nan"))


def _cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _timed(fn: Callable[[], object]) -> Run:
    t0, c0 = time.perf_counter(), _cpu()
    fn()
    return Run(time.perf_counter() - t0, _cpu() - c0)


def _owl(fn: Callable[[Path], object], make: Callable[[str], Path], *,
         runs: int = 2, warm_too: bool = True) -> tuple[Run, Run | None]:
    """(cold, warm): best of ``runs`` owl runs after a warm-up (numba), ``make(tag)`` staging
    a fresh input (untimed). Cold runs start with an empty reference cache (every reference
    file is read, as by hstcal); warm runs find the references kept from the run before, as
    a long-lived worker does for exposures that share them."""
    refcache.clear()
    fn(make("warm"))
    cold = warm = NEVER
    for i in range(runs):
        refcache.clear()
        staged = make(f"run{i}")
        cold = min(cold, _timed(lambda staged=staged: fn(staged)))
    if not warm_too:
        return cold, None
    for i in range(runs):
        staged = make(f"hot{i}")
        warm = min(warm, _timed(lambda staged=staged: fn(staged)))
    return cold, warm


def _hst(run: Callable[[Path], object], make: Callable[[str], Path], runs: int = 2) -> Run:
    """Best of ``runs`` hstcal runs, each on a freshly staged input (hstcal never
    overwrites its outputs); ``run(staged)`` runs the executable."""
    best = NEVER
    for i in range(runs):
        staged = make(f"{i}")
        best = min(best, _timed(lambda staged=staged: run(staged)))
    return best


def _line(step: str, owl: tuple[Run, Run | None], hst: Run) -> None:
    cold, warm = owl
    extra = "" if warm is None else f"   (warm refs {warm.wall:.2f} s, {hst.wall / warm.wall:.1f}x)"
    print(f"{step:34s} {cold.wall:9.2f} {hst.wall:9.2f} {hst.wall / cold.wall:9.1f}x   "
          f"cpu {cold.cpu:.2f} vs {hst.cpu:.2f} s, {hst.cpu / cold.cpu:.1f}x{extra}",
          flush=True)


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
    print(f"owl vs hstcal, file to file, {args.threads} thread(s) each; wall seconds "
          "(cpu: CPU seconds of the same runs); load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"{'step':34s} {'owl':>9s} {'hstcal':>9s} {'speed-up':>10s}")
    t = args.threads
    ccd = stage(raws, work / "h_ccd")
    run_hstcal("acsccd.e", [ccd[1].name], ccd[1].parent, jref, threads=t)
    blv = [r.with_name(r.name.replace("_raw", "_blv_tmp")) for r in ccd]
    t_h = _hst(lambda r: run_hstcal("acsccd.e", [r.name], r.parent, jref, threads=t),
               lambda tag: stage(raws[:1], work / f"h_ccd_{tag}")[0])
    t_o = _owl(lambda d: acsccd(raws[0], d / "x_blv_tmp.fits"),
               lambda tag: _fresh(work / f"o_ccd_{tag}"))
    _line("ACSCCD (1 full frame)", t_o, t_h)
    run_hstcal("acsccd.e", [ccd[0].name], ccd[0].parent, jref, threads=t)
    t_h = _hst(lambda d: run_hstcal("acsrej.e", [",".join(b.name for b in blv),
                                                 "p_crj_tmp.fits"], d, jref, threads=t),
               lambda tag: stage(blv, work / f"h_rej_{tag}")[0].parent)
    t_o = _owl(lambda d: acsrej(sorted(d.glob("*_blv_tmp.fits")), d / "p_crj_tmp.fits"),
               lambda tag: stage(blv, work / f"o_rej_{tag}")[0].parent)
    _line("ACSREJ (2 full frames)", t_o, t_h)
    t_h = _hst(lambda b: run_hstcal("acs2d.e", [b.name], b.parent, jref, threads=t),
               lambda tag: stage(blv[:1], work / f"h_2d_{tag}")[0])
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
    # one timed run each (a dense frame takes hstcal minutes); owl's CTE step reads no
    # cached references, so it has no warm figure
    t_h = _hst(lambda b: run_hstcal("acscte.e", [b.name], b.parent, jref,
                                    threads=args.threads),
               lambda tag: stage([blv], work / f"h_cte_{tag}")[0], runs=1)
    t_o = _owl(lambda d: run_acscte(d, d.with_name("x_blc_tmp.fits")),
               lambda tag: stage([blv], work / f"o_cte_{tag}")[0], runs=1, warm_too=False)
    _line(f"PCTECORR (dense, sky {args.dense_sky:g} e/s)", t_o, t_h)


if __name__ == "__main__":
    sys.exit(main())
