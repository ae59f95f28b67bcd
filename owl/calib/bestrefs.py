"""Choose reference files by rules kept as data (CRDS-like), and tell what a rule change moves.

A rule file (YAML, e.g. ``pipelines/acs_refs.yaml``) holds a list ``rules``; each rule says
which reference file a header keyword (its *reftype*: BIASFILE, PFLTFILE, ...) takes for
exposures whose header matches, from a USEAFTER date on::

    rules:
      - reftype: PFLTFILE
        match: {DETECTOR: WFC, FILTER1: F606W, FILTER2: [CLEAR2L, CLEAR2S]}
        useafter: "2002-03-01 00:00:00"
        file: jref$owlsim_f606w_pfl.fits

A match value is a scalar or a list of allowed scalars; ``"*"`` allows anything. Strings
compare case-insensitively after stripping, numbers numerically. For each reftype the rule
chosen is, among the matching rules with USEAFTER at or before the exposure start
(DATE-OBS + TIME-OBS, else EXPSTART), the one with the latest USEAFTER.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from owl.errors import CalibError
from owl.resources import data_path

DEFAULT_RULES = "refs/acs_refs.yaml"
"""The shipped ACS/WFC rules, inside the pipelines data folder."""

Scalar = str | int | float
_RULE_KEYS = {"reftype", "match", "useafter", "file"}
_MJD_EPOCH = datetime(1858, 11, 17)
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%b %d %Y %H:%M:%S")


@dataclass(frozen=True)
class Rule:
    """One selection rule.

    Attributes
    ----------
    reftype : str
        Header keyword the rule fills (upper case), e.g. ``BIASFILE``.
    match : tuple of (str, tuple of scalars)
        Keyword -> allowed values; an empty value tuple allows anything.
    useafter : datetime.datetime
        First exposure start the rule applies to.
    file : str
        The reference file, as the header gives it (``jref$name``).
    name : str
        Where the rule comes from, for messages (``acs_refs.yaml rule 3``).
    """

    reftype: str
    match: tuple[tuple[str, tuple[Scalar, ...]], ...]
    useafter: datetime
    file: str
    name: str

    def matches(self, header: Mapping[str, Any]) -> bool:
        """True when every match keyword of the rule is in ``header`` with an allowed value."""
        for key, allowed in self.match:
            if not allowed:
                continue
            if key not in header:
                return False
            if not any(_same(header[key], value) for value in allowed):
                return False
        return True


def _same(actual: Any, wanted: Scalar) -> bool:
    if isinstance(wanted, str):
        return str(actual).strip().upper() == wanted.strip().upper()
    try:
        return math.isclose(float(actual), float(wanted), rel_tol=1e-6)
    except (TypeError, ValueError):
        return False


def load_rules(path: str | Path | None = None) -> tuple[Rule, ...]:
    """Read and check a rule file.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        YAML file with a top-level ``rules`` list; by default the shipped
        ``pipelines/refs/acs_refs.yaml``.

    Returns
    -------
    tuple of Rule

    Raises
    ------
    owl.errors.CalibError
        When the file is unreadable or a rule is malformed; the message names the rule
        (number and reftype) and the field.
    """
    p = Path(path) if path is not None else data_path("pipelines", DEFAULT_RULES)
    try:
        data = YAML(typ="safe").load(p.read_text())
    except (OSError, YAMLError) as exc:
        raise CalibError(f"{p}: cannot read reference rules ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise CalibError(f"{p}: expected a mapping with a list 'rules'")
    return tuple(_rule(p, i, raw) for i, raw in enumerate(data["rules"], start=1))


def _rule(path: Path, number: int, raw: Any) -> Rule:
    name = f"{path.name} rule {number}"
    if not isinstance(raw, dict):
        raise CalibError(f"{name}: a rule must be a mapping, not {type(raw).__name__}")
    reftype = raw.get("reftype")
    if isinstance(reftype, str):
        name += f" ({reftype})"
    unknown = set(raw) - _RULE_KEYS
    missing = _RULE_KEYS - set(raw)
    if unknown:
        raise CalibError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
    if missing:
        raise CalibError(f"{name}: missing field(s) {', '.join(sorted(missing))}")
    if not isinstance(reftype, str) or not reftype.strip():
        raise CalibError(f"{name}: field 'reftype' must be a header keyword")
    if not isinstance(raw["file"], str) or not raw["file"].strip():
        raise CalibError(f"{name}: field 'file' must be a file name")
    if not isinstance(raw["match"], dict):
        raise CalibError(f"{name}: field 'match' must map header keywords to values")
    match = []
    for key, value in raw["match"].items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str | int | float) for v in values):
            raise CalibError(f"{name}: field 'match.{key}' must be a scalar or list of scalars")
        allowed = () if any(v == "*" for v in values) else tuple(values)
        match.append((str(key).upper(), allowed))
    return Rule(reftype=reftype.strip().upper(), match=tuple(match),
                useafter=_parse_date(str(raw["useafter"]), f"{name}: field 'useafter'"),
                file=raw["file"].strip(), name=name)


def _parse_date(text: str, where: str) -> datetime:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise CalibError(f"{where}: cannot read date {text!r} (use 'YYYY-MM-DD HH:MM:SS')")


def exposure_start(header: Mapping[str, Any]) -> datetime:
    """Start of the exposure (UTC, naive): DATE-OBS + TIME-OBS, else EXPSTART (MJD).

    Raises
    ------
    owl.errors.CalibError
        When the header has neither.
    """
    if "DATE-OBS" in header:
        day = str(header["DATE-OBS"]).strip()
        time = str(header.get("TIME-OBS", "00:00:00")).strip()
        return _parse_date(f"{day} {time}", "header DATE-OBS/TIME-OBS")
    if "EXPSTART" in header:
        return _MJD_EPOCH + timedelta(days=float(header["EXPSTART"]))
    raise CalibError("header has no DATE-OBS/TIME-OBS or EXPSTART to compare USEAFTER with")


def best_refs(header: Mapping[str, Any], rules: Iterable[Rule]) -> dict[str, str]:
    """Pick, per reftype, the matching rule with the latest USEAFTER not after the exposure.

    Parameters
    ----------
    header : mapping
        Exposure header (an ``astropy.io.fits.Header`` or a dict).
    rules : iterable of Rule
        From :func:`load_rules`.

    Returns
    -------
    dict
        Reftype (header keyword) -> file, e.g. ``{"BIASFILE": "jref$x_bia.fits"}``.

    Raises
    ------
    owl.errors.CalibError
        When no rule of a reftype matches the header (the message lists the keywords the
        rules look at and the header's values), when every match is later than the
        exposure, or when two matching rules share the best USEAFTER.
    """
    start = exposure_start(header)
    by_type: dict[str, list[Rule]] = {}
    for rule in rules:
        by_type.setdefault(rule.reftype, []).append(rule)
    return {reftype: _choose(header, start, reftype, candidates)
            for reftype, candidates in by_type.items()}


def _choose(header: Mapping[str, Any], start: datetime, reftype: str,
            candidates: list[Rule]) -> str:
    matching = [r for r in candidates if r.matches(header)]
    if not matching:
        keys = sorted({key for r in candidates for key, _ in r.match})
        seen = ", ".join(f"{k}={header.get(k, '<missing>')!r}" for k in keys)
        raise CalibError(f"{reftype}: no rule matches the exposure ({seen})")
    usable = [r for r in matching if r.useafter <= start]
    if not usable:
        first = min(matching, key=lambda r: r.useafter)
        raise CalibError(f"{reftype}: exposure start {start:%Y-%m-%d %H:%M:%S} precedes "
                         f"USEAFTER {first.useafter:%Y-%m-%d %H:%M:%S} of {first.name}")
    latest = max(r.useafter for r in usable)
    best = [r for r in usable if r.useafter == latest]
    if len({r.file for r in best}) > 1:
        raise CalibError(f"{reftype}: ambiguous, {' and '.join(r.name for r in best)} "
                         f"match with the same USEAFTER")
    return best[0].file


def _choice(header: Mapping[str, Any], rules: tuple[Rule, ...], reftype: str) -> str | None:
    """The file a reftype gets, or None when the rules cannot choose one."""
    try:
        return _choose(header, exposure_start(header), reftype,
                       [r for r in rules if r.reftype == reftype])
    except CalibError:
        return None


def affected(
    datasets_headers: Mapping[str, Mapping[str, Any]],
    old_rules: Iterable[Rule],
    new_rules: Iterable[Rule],
) -> dict[str, dict[str, tuple[str | None, str | None]]]:
    """Which datasets' reference choice changes between two rule sets (for reprocessing).

    Parameters
    ----------
    datasets_headers : mapping
        Dataset name -> its header.
    old_rules, new_rules : iterable of Rule
        The rules before and after the change.

    Returns
    -------
    dict
        Dataset -> {reftype: (old file, new file)} for the datasets with at least one change;
        a side is None when those rules choose nothing for the dataset.
    """
    old, new = tuple(old_rules), tuple(new_rules)
    reftypes = sorted({r.reftype for r in old} | {r.reftype for r in new})
    changes: dict[str, dict[str, tuple[str | None, str | None]]] = {}
    for dataset, header in datasets_headers.items():
        diff = {}
        for reftype in reftypes:
            before, after = _choice(header, old, reftype), _choice(header, new, reftype)
            if before != after:
                diff[reftype] = (before, after)
        if diff:
            changes[dataset] = diff
    return changes
