"""Ingest: find new files, pick their template from the FITS header, register them.

A dataset is registered once: its id is the header's ROOTNAME (else the file name up to
its first ``_``), and registering an id that is already on the board is a no-op. An
exposure that belongs to an association (HST's ASN_ID keyword) whose ``_asn.fits`` lies
beside it is processed with that association, not on its own. With
``watch``, a file is taken only once it is completely written: its size is a whole number
of 2880-byte FITS blocks, its header parses, and its size and mtime have not changed for
``settle`` seconds.
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.board import Board
from owl.fitscheck import truncation
from owl.template import Template

FITS_BLOCK = 2880


@dataclass(frozen=True)
class IngestResult:
    """What happened to one file."""

    path: str
    dataset: str
    template: str
    status: str  # "registered" | "exists" | "skipped" | "conflict" | "error"
    detail: str = ""


def candidates(paths: Iterable[Path], templates: Sequence[Template]) -> Iterator[Path]:
    """Files named directly, and files under directories that match an ingest pattern."""
    patterns = [p for t in templates for p in t.ingest]
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and any(fnmatch.fnmatch(child.name, p) for p in patterns):
                    yield child
        else:
            yield path


def dataset_id(path: Path, header: fits.Header) -> str:
    root = str(header.get("ROOTNAME", "")).strip()
    if root:
        return root.lower()
    name = path.name
    return name.split("_", 1)[0] if "_" in name else name.split(".", 1)[0]


def ingest_file(board: Board, templates: Sequence[Template], path: Path,
                who: str = "ingest") -> IngestResult:
    """Register one file under the template that matches its name and header."""
    named = [t for t in templates if any(fnmatch.fnmatch(path.name, p) for p in t.ingest)]
    if not named:
        return IngestResult(str(path), "", "", "skipped",
                            "its name matches no template's ingest pattern")
    try:
        short = truncation(path)
    except (OSError, ValueError) as exc:
        return IngestResult(str(path), "", "", "error", f"cannot read the file: {exc}")
    if short:
        return IngestResult(str(path), "", "", "error", f"{short}; not registered")
    try:
        header = fits.getheader(path)
    except (OSError, ValueError) as exc:
        return IngestResult(str(path), "", "", "error", f"cannot read a FITS header: {exc}")
    matching = [t for t in named if t.matches(dict(header))]
    if not matching:
        wanted = "; ".join(f"{t.name} wants " + ", ".join(
            f"{k} in {list(v)}" for k, v in t.match.items()) for t in named)
        seen = ", ".join(f"{k}={header.get(k)!r}" for t in named for k in t.match)
        return IngestResult(str(path), "", "", "error",
                            f"no template matches its header ({seen}): {wanted}")
    if len(matching) > 1:
        names = [t.name for t in matching]
        return IngestResult(str(path), "", "", "error",
                            f"several templates match it: {names}; narrow their 'match'")
    template = matching[0]
    asn = str(header.get("ASN_ID", "NONE")).strip().lower()
    if (asn not in ("", "none") and not path.name.endswith("_asn.fits")
            and path.with_name(f"{asn}_asn.fits").exists()):
        return IngestResult(str(path), "", template.name, "skipped",
                            f"member of association {asn} (registered with {asn}_asn.fits)")
    ds = dataset_id(path, header)
    try:
        reg = board.register(template, ds, str(path.resolve()), who,
                             meta=header_meta(header, template))
    except Exception as exc:  # reported per file; the other files go on
        return IngestResult(str(path), ds, template.name, "error", str(exc))
    if reg.new:
        return IngestResult(str(path), ds, template.name, "registered")
    if reg.path and reg.path != str(path.resolve()):
        return IngestResult(str(path), ds, reg.template, "conflict",
                            f"dataset {ds} (its ROOTNAME) is already on the board from another "
                            f"file, {reg.path}; this file was not registered")
    return IngestResult(str(path), ds, reg.template, "exists",
                        f"already on the board (template {reg.template} {reg.version})")


#: Header keywords kept with every dataset (besides its template's match keywords), so a
#: campaign can select by them without opening the files.
META_KEYWORDS = ("INSTRUME", "DETECTOR", "DATE-OBS", "TIME-OBS", "EXPSTART", "EXPTIME",
                 "FILTER1", "FILTER2", "APERTURE", "CCDAMP", "CCDGAIN", "OBSTYPE", "TARGNAME",
                 "ASN_ID", "PROPOSID")


def header_meta(header: fits.Header, template: Template) -> dict[str, Any]:
    """The header keywords a dataset keeps on the board (strings and numbers only)."""
    out: dict[str, Any] = {}
    for key in (*template.match, *META_KEYWORDS):
        value = header.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, int | float | str):
            out[key] = value.strip() if isinstance(value, str) else value
    return out


def complete_fits(path: Path) -> bool:
    """A FITS file is complete when it is whole 2880-byte blocks, its header parses and it
    holds every data byte its headers describe."""
    try:
        size = path.stat().st_size
        if size == 0 or size % FITS_BLOCK:
            return False
        if truncation(path) is not None:
            return False
        fits.getheader(path)
        return True
    except (OSError, ValueError):
        return False


def watch(board: Board, templates: Sequence[Template], paths: Sequence[Path], *,
          interval: float = 2.0, settle: float = 2.0, stall: float = 60.0,
          report: Callable[[IngestResult], None],
          stop: Callable[[], bool] = lambda: False) -> None:
    """Keep registering new, completely written files until ``stop()`` says so.

    A file that stays incomplete (truncated) and unchanged for ``stall`` seconds is
    reported once as an error; it is looked at again if it changes.
    """
    seen: dict[Path, tuple[int, float, float]] = {}  # size, mtime, first time so
    taken: set[Path] = set()
    stalled: dict[Path, tuple[int, float]] = {}  # reported as incomplete, at this size/mtime
    while not stop():
        now = time.monotonic()
        for path in candidates(paths, templates):
            if path in taken:
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            sig = (st.st_size, st.st_mtime)
            before = seen.get(path)
            if before is None or before[:2] != sig:
                seen[path] = (*sig, now)
                continue
            if now - before[2] < settle:
                continue
            if not complete_fits(path):
                if now - before[2] >= stall and stalled.get(path) != sig:
                    stalled[path] = sig
                    report(ingest_file(board, templates, path))
                continue
            taken.add(path)
            report(ingest_file(board, templates, path))
        time.sleep(interval)
