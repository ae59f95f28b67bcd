"""Benchmark the per-pixel CALACS kernels and ACSREJ on a full ACS/WFC frame, side by side.

Prints, in one run (so all numbers share the machine's load): the memory-pass floor (a
plain numpy copy of the frame's SCI, ERR and DQ), every per-pixel step as numba and as the
numpy reference (and ccdproc for bias, dark and flat) with its ratio to the floor, and ACSREJ
against ``ccdproc.combine(method="median")`` on the same CR-split pair. Times are the best of
``--repeat`` runs after a warm-up (numba compiles on first call and caches). With
``HSTCAL_BIN`` set, then runs ``tools/bench_hstcal.py`` (owl vs hstcal's executables per
step on the same full frames, same thread count, plus a dense full-frame PCTECORR). Then runs
``tools/bench_cte.py`` (PCTECORR) when it exists, unless ``--no-cte``.

Usage: ``python3 tools/bench_calib.py [--repeat 5] [--threads N] [--no-cte]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import astropy.units as u  # type: ignore[import-untyped]  # astropy ships no py.typed
import ccdproc
import numba
import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty  # type: ignore[import-untyped]  # ditto

from owl.calib import kernels as K
from owl.calib import kernels_numpy as N
from owl.calib.crrej import CrRejParams, crrej

RAW = (2068, 4144)
TRIM = (2048, 4096)
CHIPS = 2


def best(fn: Callable[[], object], setup: Callable[[], object] | None, repeat: int) -> float:
    """Best wall time of ``fn`` over ``repeat`` runs (``setup`` runs untimed before each)."""
    times = []
    for _ in range(repeat + 1):  # the first run warms up (numba compile / cache load)
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


class Frame:
    """A full frame: per chip SCI, ERR (float32) and DQ (int16) plus reference images."""

    def __init__(self, shape: tuple[int, int], rng: np.random.Generator) -> None:
        self.sci = [rng.normal(3000, 50, shape).astype(np.float32) for _ in range(CHIPS)]
        self.err = [rng.uniform(5, 60, shape).astype(np.float32) for _ in range(CHIPS)]
        self.dq = [np.zeros(shape, np.int16) for _ in range(CHIPS)]
        self.ref = [rng.normal(1.0, 0.02, shape).astype(np.float32) for _ in range(CHIPS)]
        self.ref_err = [np.full(shape, 0.01, np.float32) for _ in range(CHIPS)]
        self.ref_dq = [np.zeros(shape, np.int16) for _ in range(CHIPS)]
        self._orig = [(s.copy(), e.copy(), d.copy()) for s, e, d in
                      zip(self.sci, self.err, self.dq, strict=True)]

    def reset(self) -> None:
        """Restore SCI/ERR/DQ so an in-place step sees the same data each run."""
        for i, (s, e, d) in enumerate(self._orig):
            np.copyto(self.sci[i], s)
            np.copyto(self.err[i], e)
            np.copyto(self.dq[i], d)

    def floor(self) -> None:
        """The memory-pass floor: one numpy copy of every array of the frame."""
        for arrays in (self.sci, self.err, self.dq):
            for a in arrays:
                a.copy()


def per_chip(mod: Any, name: str, f: Frame, *args: Any) -> Callable[[], None]:
    """A callable running kernel ``name`` of ``mod`` on both chips of ``f``."""
    fn = getattr(mod, name)

    def run() -> None:
        for c in range(CHIPS):
            fn(*(arg(f, c) if callable(arg) else arg for arg in args))
    return run


def sci(f: Frame, c: int) -> np.ndarray:
    return f.sci[c]


def err(f: Frame, c: int) -> np.ndarray:
    return f.err[c]


def dq(f: Frame, c: int) -> np.ndarray:
    return f.dq[c]


def ref(f: Frame, c: int) -> np.ndarray:
    return f.ref[c]


def ref_err(f: Frame, c: int) -> np.ndarray:
    return f.ref_err[c]


def ref_dq(f: Frame, c: int) -> np.ndarray:
    return f.ref_dq[c]


def blev(mod: Any, f: Frame) -> Callable[[], None]:
    """BLEVCORR on both amps of both chips: measure, fit, subtract."""
    sections = [np.array([[2, 21]]), np.array([[4122, 4141]])]

    def run() -> None:
        for c in range(CHIPS):
            for side in (0, 1):
                rows = mod.overscan_row_levels(f.sci[c], f.dq[c], sections[side], 0, 2048,
                                               31743)
                level = mod.fit_bias_level(rows, 0, 4.5, 0.0)
                cols = (24, 2072) if side == 0 else (2072, 4120)
                mod.subtract_bias_level(f.sci[c], 0, 2048, cols[0], cols[1], level)
    return run


def trim_all(mod: Any, f: Frame) -> Callable[[], None]:
    """Trim the overscan off SCI, ERR and DQ of both chips."""
    def run() -> None:
        for arrays in (f.sci, f.err, f.dq):
            for a in arrays:
                mod.trim(a, 24, 4120, 0, 2048)
    return run


def ccdproc_step(kind: str, f: Frame) -> Callable[[], None]:
    """ccdproc's bias/dark/flat on both chips (CCDData with units and uncertainties)."""
    data = [CCDData(f.sci[c], unit=u.electron, uncertainty=StdDevUncertainty(f.err[c]))
            for c in range(CHIPS)]
    unit = u.dimensionless_unscaled if kind == "flat" else u.electron
    refs = [CCDData(f.ref[c], unit=unit, uncertainty=StdDevUncertainty(f.ref_err[c]))
            for c in range(CHIPS)]

    def run() -> None:
        for c in range(CHIPS):
            if kind == "bias":
                ccdproc.subtract_bias(data[c], refs[c])
            elif kind == "dark":
                ccdproc.subtract_dark(data[c], refs[c], dark_exposure=1.0 * u.s,
                                      data_exposure=510.0 * u.s, scale=True)
            else:
                ccdproc.flat_correct(data[c], refs[c], norm_value=1.0)
    return run


def crsplit_pair(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per chip: SCI, ERR, DQ stacks of two 500-s exposures of sky + cosmic rays."""
    out = []
    for _ in range(CHIPS):
        scis = []
        for _k in range(2):
            img = rng.poisson(30.0, TRIM).astype(np.float32)
            img += rng.normal(0, 4.5, TRIM).astype(np.float32)
            hits = rng.random(TRIM) < 0.01
            img[hits] += rng.uniform(100, 3000, int(hits.sum())).astype(np.float32)
            scis.append(img)
        s = np.stack(scis)
        out.append((s, np.sqrt(np.maximum(s, 0) + 4.5**2).astype(np.float32),
                    np.zeros(s.shape, np.int16)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-cte", action="store_true")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    raw, trim = Frame(RAW, rng), Frame(TRIM, rng)
    r = args.repeat
    floor_raw = best(raw.floor, None, r)
    floor = best(trim.floor, None, r)
    print(f"numba threads: {numba.get_num_threads()}; frame = 2 chips of SCI+ERR+DQ")
    print(f"floor (numpy copy of the frame): raw {RAW} {floor_raw * 1e3:7.1f} ms, "
          f"trimmed {TRIM} {floor * 1e3:7.1f} ms")
    quad = np.array([[2.0, 2.02], [1.98, 2.01]])
    limit = np.full(TRIM, 80000.0, np.float32)
    bpix = [np.arange(1, 201), np.arange(1, 201), np.full(200, 50), np.full(200, 2),
            np.full(200, 4)]
    steps: list[tuple[str, Frame, float, str | None, tuple[Any, ...]]] = [
        ("DQICORR (200-run BPIXTAB)", raw, floor_raw, "apply_bpixtab", (dq, *bpix, 24, 0)),
        ("BIASCORR (image)", raw, floor_raw, "subtract_scaled",
         (sci, err, dq, ref, ref_err, ref_dq, 1.0)),
        ("gain (per amp)", raw, floor_raw, "multiply_quadrants", (sci, err, quad, 2072, 0)),
        ("BLEVCORR (fit+subtract)", raw, floor_raw, None, ()),
        ("saturation (SATUFILE)", raw, floor_raw, "flag_above", (sci, dq, limit, 24, 0)),
        ("ERR init", raw, floor_raw, "init_err", (sci, err, quad, 2072, 0)),
        ("trim (SCI+ERR+DQ)", raw, floor_raw, None, ()),
        ("DARKCORR (x DARKTIME)", trim, floor, "subtract_scaled",
         (sci, err, dq, ref, ref_err, ref_dq, 510.0)),
        ("FLSHCORR (x FLASHDUR)", trim, floor, "subtract_scaled",
         (sci, err, dq, ref, ref_err, ref_dq, 2.5)),
        ("FLATCORR", trim, floor, "divide_flat", (sci, err, dq, ref, ref_err, ref_dq)),
    ]
    print(f"\n{'step':28s} {'numba ms':>9s} {'x floor':>8s} {'numpy ms':>9s} {'x floor':>8s}"
          f" {'numpy/numba':>11s} {'ccdproc ms':>11s} {'ccdproc/numba':>13s}")
    for label, f, fl, name, args_ in steps:
        if label.startswith("BLEV"):
            fns = (blev(K, f), blev(N, f))
        elif label.startswith("trim"):
            fns = (trim_all(K, f), trim_all(N, f))
        else:
            assert name is not None
            fns = (per_chip(K, name, f, *args_), per_chip(N, name, f, *args_))
        tk = best(fns[0], f.reset, r)
        tn = best(fns[1], f.reset, r)
        line = (f"{label:28s} {tk * 1e3:9.1f} {tk / fl:8.2f} {tn * 1e3:9.1f} {tn / fl:8.2f}"
                f" {tn / tk:11.1f}")
        kind = {"BIASCORR": "bias", "DARKCORR": "dark", "FLATCORR": "flat"}.get(label[:8])
        if kind:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tc = best(ccdproc_step(kind, f), f.reset, max(1, r // 2))
            line += f" {tc * 1e3:11.1f} {tc / tk:13.1f}"
        print(line)
    pair = crsplit_pair(rng)
    params = CrRejParams(initgues="minimum", scalense=30.0)
    t_rej = best(lambda: [crrej(s, e, d, [500.0, 500.0], params) for s, e, d in pair], None, r)
    ccds = [[CCDData(s[k], unit=u.electron) for k in range(2)] for s, _, _ in pair]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_med = best(lambda: [ccdproc.combine(c, method="median") for c in ccds], None,
                     max(1, r // 2))
    print(f"\nACSREJ (2 x {TRIM}, 3 iterations, both chips): {t_rej * 1e3:9.1f} ms "
          f"({t_rej / floor:.1f} x floor)")
    print(f"ccdproc.combine(method='median') on the same pair: {t_med * 1e3:9.1f} ms "
          f"-> ACSREJ is {t_med / t_rej:.1f}x faster")
    if os.environ.get("HSTCAL_BIN"):
        print("\n--- bench_hstcal.py (owl vs hstcal per step, same frames and threads) ---",
              flush=True)
        threads = ["--threads", str(numba.get_num_threads())]
        subprocess.call([sys.executable, str(Path(__file__).with_name("bench_hstcal.py")),
                         *threads, *(["--no-cte"] if args.no_cte else [])])
    cte = Path(__file__).with_name("bench_cte.py")
    if cte.exists() and not args.no_cte:
        print(f"\n--- {cte.name} ---", flush=True)
        return subprocess.call([sys.executable, str(cte)])
    if not cte.exists():
        print("\n(tools/bench_cte.py not present: PCTECORR not timed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
