"""A stand-in calibration stage for the reference-delivery tests (imported by workers)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from owl.task import TaskContext


def uses_refs(ctx: TaskContext) -> Mapping[str, Any]:
    """A stand-in calibration stage: reads the reference files named ``params.names`` from
    bestrefs' choice (passed down the chain) with the board's overrides winning, records
    them, and writes one file of their contents."""
    chosen: dict[str, str] = {}
    for outputs in ctx.inputs.values():
        for member in (outputs.get("refs") or {}).values():
            chosen.update(member if isinstance(member, dict) else {})
        chosen.update(outputs.get("chosen") or {})
    chosen.update(ctx.refs)
    text = ""
    for name in ctx.params["names"]:
        prefix, _, rest = chosen[name].partition("$")
        path = Path(os.environ[prefix]) / rest
        ctx.record.reference(name, chosen[name], path)
        text += path.read_text()
    out = ctx.output_dir / f"{ctx.dataset}_{ctx.stage}.txt"
    out.write_text(text)
    return {"files": {"out": str(out)}, "chosen": chosen}
