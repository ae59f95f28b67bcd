"""The ``bestrefs`` stage: choose reference files by rules and record the choice.

The raw files are never modified: the choice is returned as the stage's outputs
(``{"refs": {member file name: {reftype: file}}}``), which ``acsccd`` applies to each
member's header on the way to its ``_blv_tmp`` output, so every calibrated output names
the files used. The board's reference overrides (``ctx.refs``, written by ``owl refs
apply``) replace the rules' choice. For reprocessing, the stage records in its provenance
the rules file it read (reference ``RULES``) and, per member, the header keywords the rules
select on with the exposure start: ``owl refs diff`` evaluates new rules on those, without
opening any raw file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.bestrefs import DEFAULT_RULES, best_refs, exposure_start, load_rules
from owl.calib.calacs import read_association
from owl.errors import CalibError
from owl.resources import data_path


def _plain(value: Any) -> Any:
    return value if isinstance(value, bool | int | float) else str(value).strip()


def bestrefs(ctx: Any) -> dict[str, Any]:
    """Choose the reference files of every exposure of the dataset.

    ``ctx.params["rules"]`` may name a rules file; by default the shipped ACS rules.
    """
    path = Path(ctx.input_path)
    if not path.exists():
        raise CalibError(f"dataset {ctx.dataset}: input {path} does not exist")
    members = (list(read_association(path).members) if path.name.endswith("_asn.fits")
               else [path])
    rules_path = Path(ctx.params["rules"]) if ctx.params.get("rules") else data_path(
        "pipelines", DEFAULT_RULES)
    rules = load_rules(rules_path)
    ctx.record.reference("RULES", str(ctx.params.get("rules") or DEFAULT_RULES), rules_path)
    selects = sorted({key for rule in rules for key, _ in rule.match})
    chosen: dict[str, dict[str, str]] = {}
    for raw in members:
        ctx.record.input(raw)
        header = fits.getheader(raw)
        refs = best_refs(header, rules)
        refs.update({k: v for k, v in (ctx.refs or {}).items() if k in refs})
        chosen[raw.name] = refs
        ctx.record.selection({k: _plain(header[k]) for k in selects if k in header},
                             exposure_start(header).strftime("%Y-%m-%dT%H:%M:%S"))
    ctx.log.info("calib.bestrefs.done", exposures=len(members))
    return {"refs": chosen}
