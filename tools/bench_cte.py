"""Time owl's PCTECORR and CTE forward model on the fixture frames, next to hstcal.

Each case runs file to file (read the uncompressed ``_blv_tmp``, both tables, all four amps,
write the output), like hstcal's whole-program timings in the pack's MANIFEST.json. Runs
follow a warm-up that compiles (or loads the cached) numba kernels. Timings are the median
of ``--repeat`` runs at 1 thread, then at 2 threads.

Usage::

    python3 tools/bench_cte.py [--fixtures DIR] [--repeat 3] [--cases case1 case3]

Measure on an otherwise idle machine: with another job on the second vCPU the 1-thread
times grow by up to ~1.5x and the 2-thread times gain nothing (hstcal's numbers were taken
idle).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numba

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from owl.calib.cte import run_acscte, run_forward_model  # noqa: E402  (after sys.path)

FORWARD_CASES = ("case4", "case5")


def _default_fixtures() -> Path:
    env = os.environ.get("OWL_FIXTURES")
    for path in ([Path(env), Path(env) / "cte"] if env else []) + [
        REPO.parent / "shared" / "fixtures" / "cte"
    ]:
        if (path / "MANIFEST.json").exists():
            return path
    raise SystemExit("fixture pack not found: pass --fixtures or set OWL_FIXTURES")


def _run_case(case: str, source: Path, work: Path) -> float:
    output = work / f"{case}_out.fits"
    step = run_forward_model if case in FORWARD_CASES else run_acscte
    start = time.perf_counter()
    step(source, output, overwrite=True)
    elapsed = time.perf_counter() - start
    output.unlink()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per case and thread count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=["case1", "case2", "case3", "case4",
                                                        "case5"])
    args = parser.parse_args(argv)
    fixtures = args.fixtures or _default_fixtures()
    manifest = json.loads((fixtures / "MANIFEST.json").read_text())
    hstcal = {
        entry["case"]: entry["timings"]
        for entry in manifest["files"]
        if entry.get("role") == "expected output" and "timings" in entry
    }
    # hstcal and owl resolve the tables' jref$ prefix from this lower-case variable.
    os.environ["jref"] = f"{fixtures}/"  # noqa: SIM112
    with tempfile.TemporaryDirectory(prefix="bench_cte_") as tmp:
        work = Path(tmp)
        inputs = {}
        for case in args.cases:
            inputs[case] = work / f"{case}_blv_tmp.fits"
            with gzip.open(fixtures / f"{case}_blv_tmp.fits.gz") as src, \
                    inputs[case].open("wb") as dst:
                shutil.copyfileobj(src, dst)
        # Warm-up: compile or load every kernel (forward, correction with smoothing, serial).
        for case in ("case5", "case3"):
            if case in inputs:
                _run_case(case, inputs[case], work)
        print(f"{'case':6} {'thr':>3} {'owl s':>8} {'hstcal s':>9} {'speed-up':>9}")
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            for case in args.cases:
                times = [_run_case(case, inputs[case], work) for _ in range(args.repeat)]
                ours = statistics.median(times)
                key = "wall_s_1_thread" if threads == 1 else "wall_s_2_threads"
                ref = hstcal.get(case, {}).get(key, {}).get("median")
                ratio = f"{ref / ours:8.1f}x" if ref else "      n/a"
                ref_text = f"{ref:9.2f}" if ref else "      n/a"
                print(f"{case:6} {threads:3d} {ours:8.2f} {ref_text} {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
