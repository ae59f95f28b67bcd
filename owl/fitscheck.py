"""Whether a FITS file holds every byte its headers describe.

A file cut short inside its data (a copy that stalled, a disk that filled) still has a
readable primary header, and when it stops at a 2880-byte boundary it even looks whole;
astropy then fails only when the data are read ("buffer is too small"), in every attempt.
Ingest walks the headers instead: each HDU's data size is ``|BITPIX|/8 x GCOUNT x (PCOUNT +
NAXIS1 x ... x NAXISn)`` bytes, padded to whole 2880-byte blocks, and the file must be at
least as long as every header and data block together.
"""

from __future__ import annotations

import math
from pathlib import Path

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

BLOCK = 2880
_CARD = 80


def _blocks(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def data_size(header: fits.Header) -> int:
    """Bytes of data (unpadded) that follow a header, from its keywords."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    axes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    if axes[0] == 0 and header.get("GROUPS"):  # random groups: NAXIS1 = 0 by convention
        axes = axes[1:]
    count = int(header.get("GCOUNT", 1)) * (int(header.get("PCOUNT", 0)) + math.prod(axes))
    return abs(int(header.get("BITPIX", 8))) // 8 * count


def truncation(path: Path) -> str | None:
    """Why the file is shorter than its headers say, or None when every byte is there.

    A gzip-compressed file is not checked (None).

    Raises
    ------
    OSError
        The file cannot be read.
    """
    size = path.stat().st_size
    offset, hdu = 0, 0
    with path.open("rb") as f:
        if f.read(2) == b"\x1f\x8b":
            return None  # gzip-compressed: its sizes are not the file's (astropy checks it)
        while offset < size:
            f.seek(offset)
            raw = b""
            while True:  # header blocks up to the END card
                block = f.read(BLOCK)
                if len(block) < BLOCK:
                    what = "primary header" if hdu == 0 else f"header of extension {hdu}"
                    return (f"truncated: the {what} (at byte {offset}) is cut short; the file "
                            f"has {size} bytes")
                raw += block
                if any(block[i:i + 8] == b"END     " for i in range(0, BLOCK, _CARD)):
                    break
            header = fits.Header.fromstring(raw.decode("ascii", "replace"))
            need = data_size(header)
            end = offset + len(raw) + _blocks(need)
            if offset + len(raw) + need > size:
                where = "primary HDU" if hdu == 0 else f"extension {hdu}"
                return (f"truncated: the {where} needs {need} bytes of data after its header "
                        f"(BITPIX/NAXISn/PCOUNT/GCOUNT) but the file ends "
                        f"{offset + len(raw) + need - size} bytes short ({size} bytes in all)")
            offset = end
            hdu += 1
    return None
