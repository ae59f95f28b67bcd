"""Write the small hstcal golden file the tests use when no hstcal build is at hand.

Simulates two fixed-seed sets (a post-SM4 CR-split pair and a pre-SM4 single frame), runs
hstcal's ``acsccd.e``, ``acsrej.e`` and ``acs2d.e`` on them (each on hstcal's own input) and
stores, per output file and imset, the keywords :mod:`owl.calib.parity` compares and the
SCI/ERR/DQ values at 384 fixed pixels (256 drawn with seed 0, 128 among the flagged pixels
of hstcal's ``_crj``), as JSON (``tests/calib/golden/hstcal_goldens.json``, 0.25 MB).

Usage: ``HSTCAL_BIN=/path/to/hstcal/bin python3 tools/make_hstcal_goldens.py [OUT.json]``
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from owl.calib.fitsio import read_frame  # noqa: E402  (after sys.path)
from owl.calib.parity import (  # noqa: E402
    PRIMARY_KEYS,
    SCI_KEYS,
    hstcal_bin,
    run_hstcal,
    stage,
)
from owl.calib.simulate import simulate_set  # noqa: E402

#: The sets: name -> simulate_set arguments (tests rebuild them from these).
SETS: dict[str, dict[str, Any]] = {
    "post": {"n_exposures": 2, "seed": 5, "visit": "41"},
    "pre": {"n_exposures": 1, "seed": 6, "visit": "42", "expstart": 54500.3},
}
OUT = REPO / "tests" / "calib" / "golden" / "hstcal_goldens.json"


def _plain(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str)) or v is None else str(v)


def summarise(path: Path, pixels: np.ndarray) -> dict[str, Any]:
    """Keywords and the pixel samples of one hstcal output."""
    frame = read_frame(path)
    out: dict[str, Any] = {"primary": {k: _plain(frame.primary.get(k)) for k in PRIMARY_KEYS
                                       if k in frame.primary}, "imsets": {}}
    ys, xs = pixels[:, 0], pixels[:, 1]
    for imset in frame.imsets:
        out["imsets"][str(imset.extver)] = {
            "keys": {k: _plain(imset.sci_header.get(k)) for k in SCI_KEYS
                     if k in imset.sci_header},
            "sci": [float(v) for v in imset.sci[ys, xs]],
            "err": [float(v) for v in imset.err[ys, xs]],
            "dq": [int(v) for v in imset.dq[ys, xs]],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    target = Path(argv[0]) if argv else OUT
    if hstcal_bin() is None:
        print("HSTCAL_BIN is not set to a directory with hstcal's acsccd.e", file=sys.stderr)
        return 2
    result: dict[str, Any] = {"hstcal": run_hstcal_version(), "sets": SETS, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        outputs: dict[str, Path] = {}
        for name, kwargs in SETS.items():
            sim = simulate_set(work / name, **kwargs)
            jref = sim.refs.directory
            os.environ["jref"] = f"{jref}/"  # noqa: SIM112  (hstcal reads lower-case jref)
            ccd = stage([e.raw for e in sim.exposures], work / f"{name}_ccd")
            for raw in ccd:
                run_hstcal("acsccd.e", [raw.name], raw.parent, jref)
                blv = raw.with_name(raw.name.replace("_raw", "_blv_tmp"))
                outputs[f"{name}/{blv.name}"] = blv
                flt = stage([blv], work / f"{name}_2d_{raw.name[:9]}")[0]
                run_hstcal("acs2d.e", [flt.name], flt.parent, jref)
                outputs[f"{name}/{raw.name[:9]}_flt.fits"] = flt.with_name(
                    flt.name.replace("_blv_tmp", "_flt"))
            if sim.asn is not None:
                product = sim.asn.name[:9]
                rej = stage([o for k, o in outputs.items() if k.startswith(f"{name}/")
                             and k.endswith("_blv_tmp.fits")], work / f"{name}_rej")
                run_hstcal("acsrej.e", [",".join(r.name for r in rej),
                                        f"{product}_crj_tmp.fits"], rej[0].parent, jref)
                crj = rej[0].with_name(f"{product}_crj_tmp.fits")
                outputs[f"{name}/{crj.name}"] = crj
                run_hstcal("acs2d.e", [crj.name], crj.parent, jref)
                outputs[f"{name}/{product}_crj.fits"] = crj.with_name(f"{product}_crj.fits")
        crj_dq = read_frame(next(p for k, p in outputs.items() if k.endswith("_crj.fits")))
        rng = np.random.default_rng(0)
        shape = crj_dq.imsets[0].sci.shape
        flagged = np.argwhere(crj_dq.imsets[0].dq != 0)
        pick = flagged[rng.choice(len(flagged), 128, replace=False)]
        pixels = np.concatenate([np.column_stack([rng.integers(0, shape[0], 256),
                                                  rng.integers(0, shape[1], 256)]), pick])
        result["pixels"] = pixels.tolist()
        for key, path in outputs.items():
            result["files"][key] = summarise(path, pixels)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"{target}: {target.stat().st_size} bytes, {len(result['files'])} files")
    return 0


def run_hstcal_version() -> str:
    """hstcal's version line (``calacs.e --version``)."""
    import subprocess

    where = hstcal_bin()
    assert where is not None
    done = subprocess.run([str(where / "calacs.e"), "--version"], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or done.stderr.strip()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
