"""hstcal's rules that owl follows, checked without hstcal: DARKTIME, SM4 date, references.

The constants are hstcal's (``pkg/acs/include/acs.h``: SM4MJD 54962, CYCLE24 57662;
``acsccd/dodarktime.c`` for the overhead rule; ``lib/getphttab.c`` reads PARNUM).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.ccdtab import AmpCCD, CCDParams
from owl.calib.darktime import darktime
from owl.calib.simulate_header import Exposure, raw_primary
from owl.calib.simulate_tables import DetectorModel, write_imphttab, write_oscntab

CCD = CCDParams(path=Path("ccd.fits"), row=1, amps={"A": AmpCCD(2.0, 4.0, 2000.0)},
                saturate=80000.0, pedigree="", descrip="", overhead_flashed=22.0,
                overhead_unflashed=10.0)


def _header(**values: object) -> fits.Header:
    h = fits.Header()
    h.update({"DARKTIME": 510.3, "EXPTIME": 500.0, "EXPSTART": 58853.2, "SUBARRAY": False,
              "FLASHDUR": 0.0, "FLASHSTA": "NOT PERFORMED", "APERTURE": "WFC"})
    h.update(values)
    return h


@pytest.mark.parametrize(("values", "offset"), [
    ({}, 10.0),                                                   # post-SM4: + OVRHUFLS
    ({"FLASHDUR": 2.5, "FLASHSTA": "SUCCESSFUL"}, 22.0),          # post-flashed: + OVRHFLS
    ({"FLASHDUR": 2.5, "FLASHSTA": "ABORTED"}, 10.0),             # flash failed: unflashed
    ({"EXPSTART": 54961.99}, 0.0),                                # pre-SM4: header value
    ({"EXPSTART": 54962.0}, 10.0),                                # SM4 day itself counts
    ({"SUBARRAY": True, "APERTURE": "WFC1A-2K"}, 10.0),           # supported subarray
    ({"SUBARRAY": True, "APERTURE": "WFC1A-2K", "EXPSTART": 57000.0}, 0.0),  # pre-Cycle 24
    ({"SUBARRAY": True, "APERTURE": "WFC1-CUSTOM"}, 0.0),         # other subarray
])
def test_darktime_overhead(values: dict[str, object], offset: float) -> None:
    # hstcal adds in float32 and writes the float32 sum.
    expected = float(np.float32(510.3) + np.float32(offset))
    assert darktime(_header(**values), "test", CCD) == expected


def test_darktime_without_ccdtab_is_the_header_value() -> None:
    assert darktime(_header(), "test") == float(np.float32(510.3))


def test_raw_headers_name_the_readout_type() -> None:
    post = Exposure("jsim0101q", "NONE", 1, 500.0, 510.0, 58853.2, "F606W")
    pre = Exposure("jsim0101q", "NONE", 1, 500.0, 510.0, 54000.0, "F606W")
    assert raw_primary(post, {}, DetectorModel())["JWROTYPE"] == "DS_INT"
    assert raw_primary(pre, {}, DetectorModel())["JWROTYPE"] == "CLAMP"


def test_imphttab_declares_parnum(tmp_path: Path) -> None:
    write_imphttab(tmp_path / "imp.fits")
    h = fits.getheader(tmp_path / "imp.fits")
    assert h["PARNUM"] == 1 and h["NEXTEND"] == 3


def test_oscntab_virtual_overscan_lies_under_one_amp(tmp_path: Path) -> None:
    write_oscntab(tmp_path / "osc.fits")
    t = fits.getdata(tmp_path / "osc.fits", 1)
    for row in t:
        # 1-based raw columns: the left amp's image area is 25..2072.
        assert 25 <= row["VX1"] < row["VX2"] <= 2072
        assert row["VY2"] - row["VY1"] + 1 == 20
