"""Write the small hstcal golden file of the optional ACS2D steps and the _flc path.

Two fixed-seed single-exposure sets with the simulator's optional references
(:class:`owl.calib.simulate_2d.Extras`):

- ``shad64``: a SHADFILE binned 64 x 64, a DFLTFILE and 5 s of post-flash; hstcal's
  ``acsccd.e`` then ``acs2d.e`` (on hstcal's own ``_blv_tmp``) write the ``_flt``.
- ``cte``: PCTECORR=PERFORM with the CTE fixture pack's PCTETAB, a full-size SHADFILE, 3 s of
  post-flash and a separate DRKCFILE; hstcal's ``calacs.e`` writes the ``_flt`` and ``_flc``.

Stored per output file and imset: the keywords :mod:`owl.calib.parity` compares and SCI/ERR/DQ
at 448 fixed pixels (256 drawn with seed 0, 128 among the DQ-flagged pixels of the
``shad64`` ``_flt``, 64 on the chip edges where the shading is extrapolated), as JSON
(``tests/calib/golden/hstcal_goldens_2d.json``).

Usage: ``HSTCAL_BIN=/path/to/hstcal/bin python3 tools/make_hstcal_goldens_2d.py [OUT.json]``
(the CTE fixture pack must be at ``../shared/fixtures/cte`` or in ``OWL_FIXTURES``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from make_hstcal_goldens import run_hstcal_version, summarise  # noqa: E402

from owl.calib.fitsio import read_frame  # noqa: E402  (after sys.path)
from owl.calib.parity import hstcal_bin, run_hstcal, stage  # noqa: E402
from owl.calib.simulate import simulate_set  # noqa: E402
from owl.calib.simulate_2d import Extras  # noqa: E402

#: name -> (simulate_set arguments but ``extras``, Extras arguments, runs calacs.e).
SETS: dict[str, dict[str, Any]] = {
    "shad64": {"sim": {"n_exposures": 1, "seed": 9, "visit": "53"},
               "extras": {"shading": 64, "delta_flat": True, "flashdur": 5.0}, "cte": False},
    "cte": {"sim": {"n_exposures": 1, "seed": 8, "visit": "54"},
            "extras": {"shading": 1, "flashdur": 3.0, "cte_dark": True}, "cte": True},
}
OUT = REPO / "tests" / "calib" / "golden" / "hstcal_goldens_2d.json"


def pctetab() -> Path:
    """The fixture pack's PCTETAB: in ``$OWL_FIXTURES`` (the pack or a folder holding
    ``cte/``), else in ``../shared/fixtures/cte`` beside the repository."""
    env = os.environ.get("OWL_FIXTURES", "")
    for where in ([Path(env), Path(env) / "cte"] if env else []):
        if (where / "pctetab_synth.fits.gz").exists():
            return where / "pctetab_synth.fits.gz"
    return REPO.parent / "shared/fixtures/cte" / "pctetab_synth.fits.gz"


def pick_pixels(flt: Path) -> np.ndarray:
    """The sampled pixels: random, DQ-flagged, and on the edges of the chip."""
    frame = read_frame(flt)
    dq = frame.imsets[0].dq
    ny, nx = dq.shape
    rng = np.random.default_rng(0)
    flagged = np.argwhere(dq != 0)
    edges = np.column_stack([
        np.concatenate([np.zeros(16, int), np.full(16, ny - 1), rng.integers(0, ny, 32)]),
        np.concatenate([rng.integers(0, nx, 32), np.zeros(16, int), np.full(16, nx - 1)])])
    return np.concatenate([
        np.column_stack([rng.integers(0, ny, 256), rng.integers(0, nx, 256)]),
        flagged[rng.choice(len(flagged), 128, replace=False)], edges])


def main(argv: list[str] | None = None) -> int:
    target = Path(argv[0]) if argv else OUT
    if hstcal_bin() is None:
        print("HSTCAL_BIN is not set to a directory with hstcal's acsccd.e", file=sys.stderr)
        return 2
    table = pctetab()
    if not table.is_file():
        print(f"{table}: CTE fixture pack not found (set OWL_FIXTURES)", file=sys.stderr)
        return 2
    result: dict[str, Any] = {"hstcal": run_hstcal_version(), "sets": SETS, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        outputs: dict[str, Path] = {}
        for name, spec in SETS.items():
            sim = simulate_set(work / name, **spec["sim"], extras=Extras(**spec["extras"]),
                               pctetab=table if spec["cte"] else None)
            jref = sim.refs.directory
            os.environ["jref"] = f"{jref}/"  # noqa: SIM112  (hstcal reads lower-case jref)
            raw = stage([sim.exposures[0].raw], work / f"{name}_h")[0]
            root = raw.name[:9]
            if spec["cte"]:
                run_hstcal("calacs.e", [raw.name], raw.parent, jref)
                for kind in ("flt", "flc"):
                    outputs[f"{name}/{root}_{kind}.fits"] = raw.with_name(f"{root}_{kind}.fits")
            else:
                run_hstcal("acsccd.e", [raw.name], raw.parent, jref)
                blv = raw.with_name(f"{root}_blv_tmp.fits")
                run_hstcal("acs2d.e", [blv.name], blv.parent, jref)
                outputs[f"{name}/{root}_flt.fits"] = raw.with_name(f"{root}_flt.fits")
        pixels = pick_pixels(next(p for k, p in outputs.items() if k.startswith("shad64/")))
        result["pixels"] = pixels.tolist()
        for key, path in outputs.items():
            result["files"][key] = summarise(path, pixels)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"{target}: {target.stat().st_size} bytes, {len(result['files'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
