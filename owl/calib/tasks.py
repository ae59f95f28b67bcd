"""Engine task functions for the CALACS stages (``owl.calib.tasks:acsccd`` in a template).

Each takes the engine's task context (``.dataset``, ``.input_path``, ``.inputs`` — the
outputs of the predecessor stages by stage name —, ``.output_dir``, ``.params``, ``.log``)
and returns ``{"files": {kind: path or [paths]}, "metrics": {...}}``. A dataset is one raw
exposure (``*_raw.fits``; file values are paths) or an association (``*_asn.fits``; file
values are lists, one per member). Outputs go to ``ctx.output_dir``, which the engine makes
per attempt, so nothing is overwritten. Stages look up their inputs under the predecessor
names ``acsccd``, ``acscte`` and ``acsrej``.

Reference files: ``acsccd`` applies bestrefs' choice (its outputs) to each raw header, so
the ``_blv_tmp`` files and everything after them name the files used; the board's
overrides (``ctx.refs``, from ``owl refs apply``) win in every stage. Each reference a step
resolves, and each association member read, is recorded for the stage's provenance.

Parameters (``ctx.params``): ``acsrej`` takes CRREJTAB overrides under ``crrej`` (e.g.
``{"crrej": {"initgues": "minimum"}}``); ``calacs`` takes ``save_tmp``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib import acs2d as acs2d_step
from owl.calib import acsccd as acsccd_step
from owl.calib import acsrej as acsrej_step
from owl.calib import calacs as calacs_step
from owl.calib.fitsio import output_name
from owl.calib.refpath import recording
from owl.calib.step import switch
from owl.errors import CalibError

Result = dict[str, Any]


def _members(ctx: Any) -> tuple[list[Path], bool]:
    """Raw files of the dataset and whether it is an association (members are recorded as
    inputs of the stage's provenance)."""
    if ctx.input_path is None:
        raise CalibError(f"dataset {ctx.dataset}: no input file registered")
    path = Path(ctx.input_path)
    if "_asn" in path.name.lower():
        members = list(calacs_step.read_association(path).members)
        for m in members:
            ctx.record.input(m)
        return members, True
    return [path], False


@contextmanager
def _recorded(ctx: Any) -> Iterator[None]:
    """Every reference file a step resolves goes into the stage's provenance."""
    with recording(lambda keyword, named, path: ctx.record.reference(keyword, named, path)):
        yield


def _keywords(ctx: Any, raw: Path | None = None) -> dict[str, str]:
    """Reference keywords a step applies to its input header (and so records in its
    output's): bestrefs' choice for a raw member, then the board's overrides (``owl refs
    apply``), which win."""
    chosen: dict[str, str] = {}
    if raw is not None:
        picked = (ctx.inputs.get("bestrefs") or {}).get("refs", {})
        chosen.update(picked.get(raw.name, {}))
    chosen.update(ctx.refs or {})
    return chosen


def _files(value: Any) -> list[Path]:
    if isinstance(value, str):
        return [Path(value)]
    if isinstance(value, list):
        return [Path(v) for v in value]
    raise CalibError(f"expected a file path or a list of them, got {value!r}")


def _pack(paths: list[Path], many: bool) -> str | list[str]:
    names = [str(p.resolve()) for p in paths]
    return names if many else names[0]


def _upstream(ctx: Any, stage: str, kind: str) -> list[Path]:
    outputs: Mapping[str, Any] = ctx.inputs.get(stage) or {}
    value = outputs.get("files", {}).get(kind)
    return [] if value is None else _files(value)


def _report(ctx: Any) -> Any:
    return lambda line: ctx.log.debug("calib.progress", line=line.strip())


def acsccd(ctx: Any) -> Result:
    """ACSCCD on every exposure of the dataset: ``files.blv_tmp``."""
    raws, many = _members(ctx)
    start = time.perf_counter()
    outs = []
    for raw in raws:
        out = Path(ctx.output_dir) / output_name(raw, "blv_tmp").name
        with _recorded(ctx):
            acsccd_step.acsccd(raw, out, report=_report(ctx), keywords=_keywords(ctx, raw))
        outs.append(out)
    levels = {f"meanblev_{o.name[:9]}_chip{h['CCDCHIP']}": float(h["MEANBLEV"])
              for o in outs for h in (fits.getheader(o, ext) for ext in (("SCI", 1), ("SCI", 2)))
              if "MEANBLEV" in h}
    ctx.log.info("calib.acsccd.done", files=len(outs))
    return {"files": {"blv_tmp": _pack(outs, many)},
            "metrics": {"seconds": time.perf_counter() - start, **levels}}


def acscte(ctx: Any) -> Result:
    """ACSCTE where PCTECORR=PERFORM: ``files.blc_tmp`` (absent when nothing to do)."""
    from owl.calib.cte import run_acscte

    blv = _upstream(ctx, "acsccd", "blv_tmp")
    start = time.perf_counter()
    outs = []
    for path in blv:
        if switch(fits.getheader(path), "PCTECORR") != "PERFORM":
            continue
        out = Path(ctx.output_dir) / output_name(path, "blc_tmp").name
        with _recorded(ctx):
            run_acscte(path, out, keywords=_keywords(ctx))
        outs.append(out)
    files = {"blc_tmp": _pack(outs, len(blv) > 1)} if outs else {}
    return {"files": files, "metrics": {"seconds": time.perf_counter() - start,
                                        "corrected": len(outs)}}


def acsrej(ctx: Any) -> Result:
    """ACSREJ of a CR-split association: ``files.crj_tmp`` (and ``crc_tmp`` after CTE)."""
    start = time.perf_counter()
    _, many = _members(ctx)
    files: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    blv = _upstream(ctx, "acsccd", "blv_tmp")
    if not many or len(blv) < 2 or switch(fits.getheader(blv[0]), "CRCORR") != "PERFORM":
        return {"files": files, "metrics": {"seconds": 0.0, "combined": False}}
    product = calacs_step.read_association(Path(ctx.input_path)).product or ctx.dataset
    overrides = dict(ctx.params.get("crrej", {}))
    for kind, inputs in (("crj_tmp", blv), ("crc_tmp", _upstream(ctx, "acscte", "blc_tmp"))):
        if len(inputs) < 2:
            continue
        out = Path(ctx.output_dir) / f"{product}_{kind}.fits"
        with _recorded(ctx):
            summary = acsrej_step.acsrej(inputs, out, overrides=overrides, report=_report(ctx),
                                         keywords=_keywords(ctx))
        files[kind] = str(out.resolve())
        metrics[f"rej_rate_{kind[:3]}"] = summary.rej_rate
    metrics["seconds"] = time.perf_counter() - start
    metrics["combined"] = bool(files)
    return {"files": files, "metrics": metrics}


def acs2d(ctx: Any) -> Result:
    """ACS2D of everything upstream: ``files.flt``/``flc``/``crj``/``crc``."""
    start = time.perf_counter()
    _, many = _members(ctx)
    jobs = [("flt", _upstream(ctx, "acsccd", "blv_tmp")),
            ("flc", _upstream(ctx, "acscte", "blc_tmp")),
            ("crj", _upstream(ctx, "acsrej", "crj_tmp")),
            ("crc", _upstream(ctx, "acsrej", "crc_tmp"))]
    files: dict[str, Any] = {}
    for kind, inputs in jobs:
        outs = []
        for path in inputs:
            out = Path(ctx.output_dir) / output_name(path, kind).name
            with _recorded(ctx):
                acs2d_step.acs2d(path, out, report=_report(ctx), in_calacs=True,
                                 keywords=_keywords(ctx))
            outs.append(out)
        if outs:
            files[kind] = _pack(outs, many and kind in ("flt", "flc"))
    return {"files": files, "metrics": {"seconds": time.perf_counter() - start}}


def calacs(ctx: Any) -> Result:
    """The whole chain in one task (raw or association to ``_flt``/``_flc``/``_crj``)."""
    start = time.perf_counter()
    if ctx.input_path is None:
        raise CalibError(f"dataset {ctx.dataset}: no input file registered")
    _members(ctx)
    with _recorded(ctx):
        products = calacs_step.calacs(ctx.input_path, output_dir=ctx.output_dir,
                                      save_tmp=bool(ctx.params.get("save_tmp", False)),
                                      report=_report(ctx))
    files = {kind: [str(p.resolve()) for p in paths] for kind, paths in products.files.items()}
    return {"files": files, "metrics": {"seconds": time.perf_counter() - start}}
