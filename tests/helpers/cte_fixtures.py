"""Where the CTE fixture pack is: ``$OWL_FIXTURES`` (the pack, or a folder holding ``cte/``),
else ``../shared/fixtures/cte`` beside the repository. Every calibration test finds it here."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The synthetic PCTETAB of the pack (the simulator's CTE trails use it).
PCTETAB_NAME = "pctetab_synth.fits.gz"


def cte_fixtures() -> Path | None:
    """The fixture pack's folder, or None when it is not on this machine."""
    env = os.environ.get("OWL_FIXTURES")
    candidates = [Path(env), Path(env) / "cte"] if env else []
    candidates.append(REPO.parent / "shared" / "fixtures" / "cte")
    for path in candidates:
        if (path / "MANIFEST.json").exists() or (path / PCTETAB_NAME).exists():
            return path
    return None


def pctetab() -> Path:
    """The pack's PCTETAB (a path that does not exist when the pack is absent)."""
    found = cte_fixtures()
    return (found if found is not None else REPO.parent / "shared" / "fixtures" / "cte") \
        / PCTETAB_NAME
