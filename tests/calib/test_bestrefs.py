"""Reference selection by rules: matching, USEAFTER order, errors, affected datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from owl.calib.bestrefs import affected, best_refs, exposure_start, load_rules
from owl.calib.simulate_header import Exposure, raw_primary
from owl.calib.simulate_refs import REF_NAMES, flat_name
from owl.calib.simulate_tables import DetectorModel
from owl.errors import CalibError

RULES = """
rules:
  - reftype: BIASFILE
    match: {DETECTOR: WFC, CCDGAIN: 2.0}
    useafter: "2002-03-01 00:00:00"
    file: jref$old_bia.fits
  - reftype: BIASFILE
    match: {DETECTOR: WFC, CCDGAIN: 2}
    useafter: "2009-05-14 00:00:00"
    file: jref$new_bia.fits
  - reftype: BIASFILE
    match: {DETECTOR: WFC, CCDGAIN: 1.0}
    useafter: "2002-03-01 00:00:00"
    file: jref$gain1_bia.fits
  - reftype: PFLTFILE
    match: {DETECTOR: wfc, FILTER1: F606W, FILTER2: [CLEAR2L, CLEAR2S]}
    useafter: "Mar 01 2002 00:00:00"
    file: jref$f606w_pfl.fits
  - reftype: PFLTFILE
    match: {DETECTOR: WFC, FILTER1: F814W, FILTER2: "*"}
    useafter: "2002-03-01"
    file: jref$f814w_pfl.fits
"""


def _rules(tmp_path: Path, text: str = RULES, name: str = "rules.yaml") -> Any:
    path = tmp_path / name
    path.write_text(text)
    return load_rules(path)


def _header(**over: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"DETECTOR": "WFC", "CCDGAIN": 2.0, "FILTER1": "F606W",
                              "FILTER2": "CLEAR2L", "DATE-OBS": "2020-01-06",
                              "TIME-OBS": "04:58:33"}
    header.update(over)
    return header


def test_matching_and_latest_useafter(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    assert best_refs(_header(), rules) == {"BIASFILE": "jref$new_bia.fits",
                                           "PFLTFILE": "jref$f606w_pfl.fits"}
    early = best_refs(_header(**{"DATE-OBS": "2005-03-07"}), rules)
    assert early["BIASFILE"] == "jref$old_bia.fits"
    assert best_refs(_header(CCDGAIN=1), rules)["BIASFILE"] == "jref$gain1_bia.fits"
    assert best_refs(_header(FILTER1="F814W", FILTER2="POL0V"), rules)["PFLTFILE"] == (
        "jref$f814w_pfl.fits"
    )


def test_useafter_boundary_is_inclusive(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    at = _header(**{"DATE-OBS": "2009-05-14", "TIME-OBS": "00:00:00"})
    before = _header(**{"DATE-OBS": "2009-05-13", "TIME-OBS": "23:59:59"})
    assert best_refs(at, rules)["BIASFILE"] == "jref$new_bia.fits"
    assert best_refs(before, rules)["BIASFILE"] == "jref$old_bia.fits"


def test_expstart_when_no_date_obs(tmp_path: Path) -> None:
    header = _header()
    del header["DATE-OBS"], header["TIME-OBS"]
    header["EXPSTART"] = 53436.28571938  # 2005-03-07 06:51:26
    assert exposure_start(header).strftime("%Y-%m-%d %H:%M") == "2005-03-07 06:51"
    assert best_refs(header, _rules(tmp_path))["BIASFILE"] == "jref$old_bia.fits"
    del header["EXPSTART"]
    with pytest.raises(CalibError, match="EXPSTART"):
        best_refs(header, _rules(tmp_path))


def test_no_match_names_reftype_and_values(tmp_path: Path) -> None:
    with pytest.raises(CalibError, match=r"PFLTFILE: no rule matches .*FILTER1='F435W'"):
        best_refs(_header(FILTER1="F435W"), _rules(tmp_path))
    with pytest.raises(CalibError, match=r"BIASFILE: no rule .*CCDGAIN='<missing>'"):
        header = _header()
        del header["CCDGAIN"]
        best_refs(header, _rules(tmp_path))


def test_exposure_before_every_useafter(tmp_path: Path) -> None:
    with pytest.raises(CalibError, match=r"BIASFILE: exposure start 2001.* rules\.yaml rule 1"):
        best_refs(_header(**{"DATE-OBS": "2001-01-01"}), _rules(tmp_path))


def test_ambiguous_rules(tmp_path: Path) -> None:
    text = RULES + """  - reftype: BIASFILE
    match: {DETECTOR: WFC}
    useafter: "2009-05-14 00:00:00"
    file: jref$other_bia.fits
"""
    with pytest.raises(CalibError, match=r"ambiguous.*rule 2 .*rule 6"):
        best_refs(_header(), _rules(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n", "a mapping with a list 'rules'"),
        ("rules:\n  - 3\n", r"rule 1: a rule must be a mapping"),
        ("rules:\n  - {reftype: X, match: {}, useafter: '2002-01-01'}\n",
         r"rule 1 \(X\): missing field\(s\) file"),
        ("rules:\n  - {reftype: X, match: {}, useafter: '2002-01-01', file: f, when: 1}\n",
         r"rule 1 \(X\): unknown field\(s\) when"),
        ("rules:\n  - {reftype: X, match: {}, useafter: 'soon', file: f}\n",
         r"rule 1 \(X\): field 'useafter': cannot read date 'soon'"),
        ("rules:\n  - {reftype: X, match: [1], useafter: '2002-01-01', file: f}\n",
         r"rule 1 \(X\): field 'match' must map"),
        ("rules:\n  - {reftype: X, match: {A: {b: 1}}, useafter: '2002-01-01', file: f}\n",
         r"rule 1 \(X\): field 'match.A'"),
        ("rules:\n  - {reftype: '', match: {}, useafter: '2002-01-01', file: f}\n",
         r"field 'reftype'"),
        ("rules:\n  - {reftype: X, match: {}, useafter: '2002-01-01', file: ''}\n",
         r"field 'file'"),
        ("rules: [\n", "cannot read reference rules"),
    ],
)
def test_malformed_rules(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CalibError, match=message):
        _rules(tmp_path, text)


def test_affected_lists_only_changed_choices(tmp_path: Path) -> None:
    old = _rules(tmp_path)
    new = _rules(tmp_path, RULES + """  - reftype: BIASFILE
    match: {DETECTOR: WFC, CCDGAIN: 2.0}
    useafter: "2015-01-01 00:00:00"
    file: jref$newer_bia.fits
  - reftype: DARKFILE
    match: {DETECTOR: WFC, FILTER1: F814W}
    useafter: "2002-03-01 00:00:00"
    file: jref$drk.fits
""", "new.yaml")
    datasets = {
        "j2005": _header(**{"DATE-OBS": "2005-03-07"}),
        "j2020": _header(),
        "j2020gain1": _header(CCDGAIN=1.0),
        "j2020f814w": _header(FILTER1="F814W"),
    }
    changes = affected(datasets, old, new)
    assert changes == {
        "j2020": {"BIASFILE": ("jref$new_bia.fits", "jref$newer_bia.fits")},
        "j2020f814w": {"BIASFILE": ("jref$new_bia.fits", "jref$newer_bia.fits"),
                       "DARKFILE": (None, "jref$drk.fits")},
    }
    assert affected(datasets, old, old) == {}


def test_shipped_rules_pick_the_simulated_files() -> None:
    rules = load_rules()
    for filt in ("F435W", "F606W", "F814W"):
        exp = Exposure(rootname="jsim0101q", asn_id="NONE", crsplit=1, exptime=500.0,
                       darktime=510.0, expstart=58853.20733, filt=filt)
        refs = {key: f"jref${name}" for key, name in REF_NAMES.items()}
        refs["PFLTFILE"] = f"jref${flat_name(filt)}"
        header = raw_primary(exp, refs, DetectorModel())
        chosen = best_refs(header, rules)
        assert chosen == {key: header[key] for key in chosen}
        assert set(chosen) == set(refs)
