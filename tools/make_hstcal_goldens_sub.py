"""Write the hstcal golden file of the subarray and SINKCORR tests (no hstcal build needed
to run them).

Simulates three fixed-seed subarray sets (:data:`SETS`: a post-SM4 ``WFC1A-2K`` CR-split
pair with sink pixels, the bias-shift path; a post-SM4 ``WFC2D-1K`` frame with sink pixels
and CTE trails, PCTECORR on; a pre-SM4 ``WFC1B-512`` frame, the ``doBlev`` line fit), runs
hstcal's ``acsccd.e``, ``acscte.e``, ``acsrej.e`` and ``acs2d.e`` on them (each on hstcal's
own input) and stores, per output and imset, the keywords :mod:`owl.calib.parity` compares
and SCI/ERR/DQ at fixed pixels (per set 192 drawn with seed 0 plus 64 among the pixels
SINKCORR flagged), as JSON (``tests/calib/golden/hstcal_goldens_sub.json``).

The CTE set needs the fixture pack's ``pctetab_synth.fits.gz`` (``--fixtures DIR``, default
``$OWL_FIXTURES`` or ``../shared/fixtures/cte`` beside the repository).

Usage: ``HSTCAL_BIN=/path/to/hstcal/bin python3 tools/make_hstcal_goldens_sub.py [OUT.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from make_hstcal_goldens import run_hstcal_version, summarise  # noqa: E402

from owl.calib.fitsio import read_frame  # noqa: E402  (after sys.path)
from owl.calib.parity import (  # noqa: E402
    hstcal_bin,
    run_hstcal,
    stage,
)
from owl.calib.simulate import simulate_set  # noqa: E402

#: name -> simulate_set arguments; "pctetab": True means the fixture pack's PCTETAB.
SETS: dict[str, dict[str, Any]] = {
    "sub2k": {"n_exposures": 2, "seed": 21, "visit": "71", "subarray": "WFC1A-2K",
              "sink": True},
    "sub1k_cte": {"n_exposures": 1, "seed": 22, "visit": "72", "subarray": "WFC2D-1K",
                  "sink": True, "pctetab": True},
    "sub512_pre": {"n_exposures": 1, "seed": 23, "visit": "73", "subarray": "WFC1B-512",
                   "expstart": 54500.3},
}
OUT = REPO / "tests" / "calib" / "golden" / "hstcal_goldens_sub.json"
PCTETAB = "pctetab_synth.fits.gz"
SINKPIXEL = 1024


def set_kwargs(name: str, fixtures: Path) -> dict[str, Any]:
    """simulate_set arguments of set ``name`` (the PCTETAB resolved in ``fixtures``)."""
    kwargs = dict(SETS[name])
    if kwargs.pop("pctetab", False):
        kwargs["pctetab"] = fixtures / PCTETAB
    return kwargs


def run_set(name: str, work: Path, fixtures: Path) -> dict[str, Path]:
    """Simulate set ``name`` and run hstcal's steps on it; return output name -> file."""
    sim = simulate_set(work / name, **set_kwargs(name, fixtures))
    jref = sim.refs.directory
    os.environ["jref"] = f"{jref}/"  # noqa: SIM112  (hstcal reads lower-case jref)
    outputs: dict[str, Path] = {}
    ccd = stage([e.raw for e in sim.exposures], work / f"{name}_ccd")
    for raw in ccd:
        root = raw.name[:9]
        run_hstcal("acsccd.e", [raw.name], raw.parent, jref)
        blv = raw.with_name(f"{root}_blv_tmp.fits")
        outputs[blv.name] = blv
        flt = stage([blv], work / f"{name}_2d_{root}")[0]
        run_hstcal("acs2d.e", [flt.name], flt.parent, jref)
        outputs[f"{root}_flt.fits"] = flt.with_name(f"{root}_flt.fits")
        if "pctetab" in SETS[name]:
            cte = stage([blv], work / f"{name}_cte_{root}")[0]
            run_hstcal("acscte.e", [cte.name], cte.parent, jref)
            blc = cte.with_name(f"{root}_blc_tmp.fits")
            outputs[blc.name] = blc
            run_hstcal("acs2d.e", [blc.name], blc.parent, jref)
            outputs[f"{root}_flc.fits"] = blc.with_name(f"{root}_flc.fits")
    if sim.asn is not None:
        product = sim.asn.name[:9]
        rej = stage([p for k, p in outputs.items() if k.endswith("_blv_tmp.fits")],
                    work / f"{name}_rej")
        run_hstcal("acsrej.e", [",".join(r.name for r in rej), f"{product}_crj_tmp.fits"],
                   rej[0].parent, jref)
        crj = rej[0].with_name(f"{product}_crj_tmp.fits")
        outputs[crj.name] = crj
        run_hstcal("acs2d.e", [crj.name], crj.parent, jref)
        outputs[f"{product}_crj.fits"] = crj.with_name(f"{product}_crj.fits")
    return outputs


def pick_pixels(outputs: dict[str, Path], rng: np.random.Generator) -> np.ndarray:
    """192 random pixels of the set's (trimmed) shape plus 64 SINKCORR-flagged ones."""
    blv = read_frame(next(p for k, p in sorted(outputs.items()) if k.endswith("_blv_tmp.fits")))
    dq = blv.imsets[0].dq
    shape = dq.shape
    flagged = np.argwhere(dq & SINKPIXEL)
    picks = [np.column_stack([rng.integers(0, shape[0], 192), rng.integers(0, shape[1], 192)])]
    if len(flagged):
        picks.append(flagged[rng.choice(len(flagged), min(64, len(flagged)), replace=False)])
    return np.concatenate(picks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=OUT)
    default = os.environ.get("OWL_FIXTURES") or REPO.parent / "shared" / "fixtures" / "cte"
    parser.add_argument("--fixtures", type=Path, default=Path(default),
                        help="directory with pctetab_synth.fits.gz (default $OWL_FIXTURES "
                        "or ../shared/fixtures/cte)")
    args = parser.parse_args(argv)
    if hstcal_bin() is None:
        print("HSTCAL_BIN is not set to a directory with hstcal's acsccd.e", file=sys.stderr)
        return 2
    result: dict[str, Any] = {"hstcal": run_hstcal_version(), "sets": SETS, "pixels": {},
                              "files": {}}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            outputs = run_set(name, Path(tmp), args.fixtures)
            pixels = pick_pixels(outputs, rng)
            result["pixels"][name] = pixels.tolist()
            for key, path in sorted(outputs.items()):
                result["files"][f"{name}/{key}"] = summarise(path, pixels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"{args.out}: {args.out.stat().st_size} bytes, {len(result['files'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
