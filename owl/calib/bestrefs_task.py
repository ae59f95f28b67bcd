"""The ``bestrefs`` stage: choose reference files by rules and record the choice.

The chosen files are written into each raw file's primary header (as CRDS's
``--update-bestrefs`` does, so every later step and hstcal itself read them from there) and
returned as the stage's outputs, which the engine keeps on the blackboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.bestrefs import best_refs, load_rules
from owl.calib.calacs import read_association
from owl.errors import CalibError


def bestrefs(ctx: Any) -> dict[str, Any]:
    """Choose and record the reference files of every exposure of the dataset.

    ``ctx.params["rules"]`` may name a rules file; by default the shipped ACS rules.
    """
    path = Path(ctx.input_path)
    if not path.exists():
        raise CalibError(f"dataset {ctx.dataset}: input {path} does not exist")
    members = (list(read_association(path).members) if path.name.endswith("_asn.fits")
               else [path])
    rules = load_rules(ctx.params.get("rules"))
    chosen: dict[str, dict[str, str]] = {}
    for raw in members:
        with fits.open(raw, mode="update") as hdul:
            header = hdul[0].header
            refs = best_refs(header, rules)
            changed = {k: v for k, v in refs.items() if header.get(k) != v}
            for key, value in refs.items():
                header[key] = value
            if changed:
                header.add_history("owl bestrefs: " + ", ".join(
                    f"{k}={v}" for k, v in sorted(changed.items())))
        chosen[raw.name] = refs
    ctx.log.info("calib.bestrefs.done", exposures=len(members))
    return {"refs": chosen}
