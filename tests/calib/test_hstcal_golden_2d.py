"""owl's optional ACS2D steps and the _flc path against stored hstcal outputs (no build needed).

``tests/calib/golden/hstcal_goldens_2d.json`` was written by ``tools/make_hstcal_goldens_2d.py``
from hstcal 10.5.0: ``acsccd.e`` + ``acs2d.e`` on a set with a SHADFILE binned 64 x 64, a
DFLTFILE and post-flash (``shad64``), and ``calacs.e`` on a PCTECORR=PERFORM set with a
full-size SHADFILE, post-flash and a separate DRKCFILE (``cte``). owl runs the same chain from
the raw frames and must reproduce every stored keyword and SCI/ERR/DQ value exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cte_fixtures import pctetab
from goldens import check_golden

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.calacs import calacs
from owl.calib.parity import stage
from owl.calib.simulate import simulate_set
from owl.calib.simulate_2d import Extras

GOLDEN = Path(__file__).with_name("golden") / "hstcal_goldens_2d.json"
#: The CTE fixture pack ($OWL_FIXTURES, or ../shared/fixtures/cte beside the repository).
PCTETAB = pctetab()

pytestmark = pytest.mark.slow


def _set(name: str, tmp_path: Path) -> tuple[Any, dict[str, Any], np.ndarray]:
    golden = json.loads(GOLDEN.read_text())
    spec = golden["sets"][name]
    sim = simulate_set(tmp_path / "in", **spec["sim"], extras=Extras(**spec["extras"]),
                       pctetab=PCTETAB if spec["cte"] else None)
    files = {k.split("/", 1)[1]: v for k, v in golden["files"].items()
             if k.startswith(f"{name}/")}
    return sim, files, np.array(golden["pixels"])


def test_shading_delta_flat_flash_reproduce_hstcal(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sim, files, pixels = _set("shad64", tmp_path)
    monkeypatch.setenv("jref", f"{sim.refs.directory}/")
    root = sim.exposures[0].raw.name[:9]
    blv = acsccd(sim.exposures[0].raw, tmp_path / f"{root}_blv_tmp.fits")
    check_golden(acs2d(blv, tmp_path / f"{root}_flt.fits"), files[f"{root}_flt.fits"], pixels)


@pytest.mark.timeout(1800)  # full-frame PCTECORR: minutes on a loaded machine
@pytest.mark.skipif(not PCTETAB.is_file(), reason=f"CTE fixture pack absent ({PCTETAB})")
def test_calacs_flt_and_flc_reproduce_hstcal(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sim, files, pixels = _set("cte", tmp_path)
    monkeypatch.setenv("jref", f"{sim.refs.directory}/")
    raw = stage([sim.exposures[0].raw], tmp_path / "o")[0]
    products = calacs(raw)
    for kind in ("flt", "flc"):
        (out,) = products.files[kind]
        check_golden(out, files[out.name], pixels)
