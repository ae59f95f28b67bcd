"""Read an ACS CCD parameters table (CCDTAB) and pick the row that fits an exposure.

The CCDTAB holds one row per readout configuration. A row applies to an exposure when its
CCDAMP, CCDCHIP, CCDGAIN, BINAXIS1/2 and CCDOFSTA-D equal the exposure's values (hstcal's
``GetCCDTab`` rule); the row then gives, per amplifier A-D, the gain (ATODGNx), read noise
(READNSEx) and bias (CCDBIASx), plus the saturation levels.

Typical use::

    key = CCDKey.from_header(primary_header, chip=1)
    params = lookup_ccd(resolve_ref(primary_header["CCDTAB"], keyword="CCDTAB"), key)
    params.amp("A").readnoise

Values are kept as the table stores them (32-bit floats converted exactly to Python floats),
so arithmetic downstream sees the same numbers as hstcal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.fitstable import table_columns
from owl.errors import CalibError

AMPS = "ABCD"
"""The four ACS/WFC amplifier letters, in table column order."""

_MATCH_COLUMNS = (
    "CCDAMP", "CCDCHIP", "CCDGAIN", "BINAXIS1", "BINAXIS2", *(f"CCDOFST{a}" for a in AMPS)
)
_VALUE_COLUMNS = (
    *(f"{p}{a}" for p in ("ATODGN", "READNSE", "CCDBIAS") for a in AMPS), "SATURATE"
)
_GAIN_RTOL = 1e-6


@dataclass(frozen=True)
class CCDKey:
    """The exposure values a CCDTAB row must match.

    Parameters
    ----------
    ccdamp : str
        Amplifiers used, e.g. ``"ABCD"`` (compared exactly, as hstcal does).
    chip : int
        CCDCHIP of the imset (1 or 2 for WFC).
    gain : float
        Commanded gain CCDGAIN.
    binaxis : tuple of int
        (BINAXIS1, BINAXIS2).
    offsets : tuple of int
        Commanded bias offsets (CCDOFSTA, CCDOFSTB, CCDOFSTC, CCDOFSTD).
    """

    ccdamp: str
    chip: int
    gain: float
    binaxis: tuple[int, int]
    offsets: tuple[int, int, int, int]

    @classmethod
    def from_header(cls, primary: Mapping[str, Any], chip: int) -> CCDKey:
        """Build the key from a primary header and the imset's CCDCHIP.

        Parameters
        ----------
        primary : mapping
            Primary header (``astropy.io.fits.Header`` or any mapping of keywords).
        chip : int
            CCDCHIP of the imset being calibrated.

        Returns
        -------
        CCDKey

        Raises
        ------
        CalibError
            If a keyword is missing or has the wrong type.
        """
        try:
            return cls(
                ccdamp=str(primary["CCDAMP"]).strip(),
                chip=int(chip),
                gain=float(primary["CCDGAIN"]),
                binaxis=(int(primary.get("BINAXIS1", 1)), int(primary.get("BINAXIS2", 1))),
                offsets=(
                    int(primary["CCDOFSTA"]),
                    int(primary["CCDOFSTB"]),
                    int(primary["CCDOFSTC"]),
                    int(primary["CCDOFSTD"]),
                ),
            )
        except KeyError as exc:
            raise CalibError(
                f"primary header lacks {exc.args[0]}, needed to select the CCDTAB row"
            ) from exc
        except (TypeError, ValueError) as exc:
            raise CalibError(f"primary header: bad CCD keyword value ({exc})") from exc


@dataclass(frozen=True)
class AmpCCD:
    """Per-amplifier values from one CCDTAB row.

    Parameters
    ----------
    gain : float
        ATODGNx, electrons per DN.
    readnoise : float
        READNSEx, electrons.
    bias : float
        CCDBIASx, DN.
    """

    gain: float
    readnoise: float
    bias: float


@dataclass(frozen=True)
class CCDParams:
    """The CCDTAB row that matched an exposure.

    Parameters
    ----------
    path : pathlib.Path
        Table the row came from.
    row : int
        1-based row number in the table (as hstcal reports it).
    amps : dict
        Amplifier letter to :class:`AmpCCD`, for every amp in the exposure's CCDAMP.
    saturate : float
        SATURATE (full well, electrons).
    pedigree, descrip : str
        The row's PEDIGREE and DESCRIP (empty when the columns are absent).
    overhead_flashed, overhead_unflashed : float
        OVRHFLS and OVRHUFLS, seconds hstcal adds to DARKTIME (0 when the columns are absent).
    atodsat : float or None
        ATODSAT, the A-to-D saturation level (DN) DQICORR flags at (None when absent).
    """

    path: Path
    row: int
    amps: Mapping[str, AmpCCD]
    saturate: float
    pedigree: str
    descrip: str
    overhead_flashed: float = 0.0
    overhead_unflashed: float = 0.0
    atodsat: float | None = None

    def amp(self, letter: str) -> AmpCCD:
        """Return the values for one amplifier.

        Parameters
        ----------
        letter : str
            ``"A"``, ``"B"``, ``"C"`` or ``"D"``.

        Returns
        -------
        AmpCCD

        Raises
        ------
        CalibError
            If the amplifier was not used by the exposure.
        """
        try:
            return self.amps[letter]
        except KeyError:
            raise CalibError(
                f"CCDTAB {self.path} row {self.row}: amp {letter!r} is not in the exposure's "
                f"CCDAMP ({''.join(sorted(self.amps))})"
            ) from None


@dataclass(frozen=True)
class CCDTable:
    """All rows of a CCDTAB, as read.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    pedigree, descrip : str
        PEDIGREE and DESCRIP of the primary header (empty when absent).
    rows : tuple of dict
        One mapping of column name to Python value per table row.
    """

    path: Path
    pedigree: str
    descrip: str
    rows: tuple[Mapping[str, Any], ...]

    def match(self, key: CCDKey) -> CCDParams:
        """Return the first row matching ``key`` (hstcal takes the first match too).

        Parameters
        ----------
        key : CCDKey
            Exposure values to match.

        Returns
        -------
        CCDParams

        Raises
        ------
        CalibError
            If no row matches; the message lists what was looked for.
        """
        for number, row in enumerate(self.rows, start=1):
            if _row_matches(row, key):
                amps = {
                    a: AmpCCD(
                        gain=float(row[f"ATODGN{a}"]),
                        readnoise=float(row[f"READNSE{a}"]),
                        bias=float(row[f"CCDBIAS{a}"]),
                    )
                    for a in AMPS
                    if a in key.ccdamp
                }
                return CCDParams(
                    path=self.path,
                    row=number,
                    amps=amps,
                    saturate=float(row["SATURATE"]),
                    pedigree=str(row.get("PEDIGREE", "")).strip(),
                    descrip=str(row.get("DESCRIP", "")).strip(),
                    overhead_flashed=float(row.get("OVRHFLS", 0.0)),
                    overhead_unflashed=float(row.get("OVRHUFLS", 0.0)),
                    atodsat=float(row["ATODSAT"]) if "ATODSAT" in row else None,
                )
        raise CalibError(
            f"CCDTAB {self.path}: no row matches CCDAMP={key.ccdamp!r} CCDCHIP={key.chip} "
            f"CCDGAIN={key.gain} BINAXIS={key.binaxis} CCDOFSTA-D={key.offsets}; "
            "check the exposure keywords or use a CCDTAB that covers this configuration"
        )


def _row_matches(row: Mapping[str, Any], key: CCDKey) -> bool:
    gain = float(row["CCDGAIN"])
    return (
        str(row["CCDAMP"]).strip() == key.ccdamp
        and int(row["CCDCHIP"]) == key.chip
        and abs(gain - key.gain) <= _GAIN_RTOL * max(abs(gain), abs(key.gain))
        and (int(row["BINAXIS1"]), int(row["BINAXIS2"])) == key.binaxis
        and tuple(int(row[f"CCDOFST{a}"]) for a in AMPS) == key.offsets
    )


def read_ccdtab(path: str | Path) -> CCDTable:
    """Read every row of a CCDTAB (plain or gzip-compressed FITS).

    Parameters
    ----------
    path : str or pathlib.Path
        The table file.

    Returns
    -------
    CCDTable

    Raises
    ------
    CalibError
        If the file cannot be read, has no table in extension 1, or lacks a needed column.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                raise CalibError(f"CCDTAB {path}: extension 1 is not a binary table")
            primary = hdul[0].header
            columns = table_columns(hdul, 1, str(path))
            names = {n.upper() for n in columns}
            missing = [c for c in _MATCH_COLUMNS + _VALUE_COLUMNS if c not in names]
            if missing:
                raise CalibError(f"CCDTAB {path}: missing column(s) {', '.join(missing)}")
            rows = tuple(
                {name: _plain(col[i]) for name, col in columns.items()}
                for i in range(int(hdul[1].header["NAXIS2"]))
            )
    except OSError as exc:
        raise CalibError(f"CCDTAB {path}: cannot read ({exc})") from exc
    return CCDTable(
        path=path,
        pedigree=str(primary.get("PEDIGREE", "")).strip(),
        descrip=str(primary.get("DESCRIP", "")).strip(),
        rows=rows,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def lookup_ccd(path: str | Path, key: CCDKey) -> CCDParams:
    """Read a CCDTAB and return the row matching ``key``.

    Parameters
    ----------
    path : str or pathlib.Path
        The table file.
    key : CCDKey
        Exposure values to match.

    Returns
    -------
    CCDParams

    Raises
    ------
    CalibError
        If the table is unreadable or no row matches.
    """
    return read_ccdtab(path).match(key)
