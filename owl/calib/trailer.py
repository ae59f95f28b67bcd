"""Trailer files (``<rootname>.tra``): the log of each step, appended as hstcal does.

hstcal's CALACS writes what every step reports into a trailer beside the products: one per
exposure (ACSCCD, ACSCTE, ACS2D of its ``_flt``/``_flc``) and one per CR-combined product
(ACSREJ and the ACS2D of the ``_crj``/``_crc``). Each step's block starts with a ``CALBEG``
line naming the step and the software and ends with ``*** STEP complete ***``; a failed step
leaves its lines and an ``ERROR`` line naming the error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import owl
from owl.calib.step import Report


def _now() -> str:
    return datetime.now(UTC).strftime("%d-%b-%Y %H:%M:%S UTC")


@contextmanager
def trailer(path: Path, step: str, report: Report) -> Iterator[Report]:
    """A :data:`Report` that also appends ``step``'s lines to the trailer ``path``.

    The block is written when the step ends, successfully or not (the error is re-raised).
    """
    lines = [f"CALBEG*** {step} -- owl {owl.__version__} ***", f"Begin    {_now()}"]

    def both(line: str) -> None:
        lines.append(line)
        report(line)

    try:
        yield both
    except Exception as exc:
        lines.append(f"ERROR:    {exc}")
        raise
    else:
        lines += [f"End      {_now()}", f"*** {step} complete ***"]
    finally:
        with path.open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n\n")
