"""The CTE parameters of each pass, from the PCTETAB and the exposure header.

Each set of the PCTETAB carries its own PCTENFOR, PCTENPAR, PCTETLEN, CTEDATE0 and
CTEDATE1. Keywords of the same names in the exposure's primary header override the first
three for every set, but only when they are above 1. FIXROCR comes from the exposure when
present (it must be 0 or 1), otherwise from the PCTETAB; PCTETRSH always comes from the
PCTETAB. The time scaling PCTEFRAC = (EXPSTART - CTEDATE0) / (CTEDATE1 - CTEDATE0) uses the
dates of the set being applied. The serial passes run only for exposures that started on
or after SM4 (:data:`SM4_MJD`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from owl.calib.cte.pctetab import PCTETab, TrapSet
from owl.errors import CalibError

SM4_MJD = 54962.0
"""Servicing Mission 4: the serial CTE correction applies from this MJD on."""


@dataclass(frozen=True, eq=False)
class PassParams:
    """Everything one CTE pass (parallel, or serial of one amp) needs.

    Parameters
    ----------
    kind : str
        ``"parallel"`` or ``"serial"``.
    traps : TrapSet
        The PCTETAB set used.
    tlen, nfor, npar : int
        Trail length, inversion iterations and sub-transfers after header overrides.
    frac : float
        PCTEFRAC of this set.
    fixrocr : bool
        Apply the read-out cosmic-ray fix.
    thresh : float
        PCTETRSH.
    """

    kind: str
    traps: TrapSet
    tlen: int
    nfor: int
    npar: int
    frac: float
    fixrocr: bool
    thresh: float


@dataclass(frozen=True, eq=False)
class CTEConfig:
    """Parameters of every pass for one exposure.

    Parameters
    ----------
    parallel : PassParams
        The parallel pass (all amps).
    serial : dict
        Amp letter to its serial pass; empty before SM4.
    """

    parallel: PassParams
    serial: Mapping[str, PassParams]


def _override(primary: Mapping[str, Any], name: str, table_value: int) -> int:
    if name not in primary:
        return table_value
    try:
        value = int(primary[name])
    except (TypeError, ValueError) as exc:
        raise CalibError(f"primary header: {name}={primary[name]!r} is not an integer") from exc
    return value if value > 1 else table_value


def _pass(kind: str, tset: TrapSet, primary: Mapping[str, Any], expstart: float,
          fixrocr: bool, thresh: float, tab: PCTETab) -> PassParams:
    tlen = _override(primary, "PCTETLEN", tset.tlen)
    if tlen > tset.rprof.shape[1]:
        raise CalibError(
            f"PCTETAB {tab.path} set {tset.number}: PCTETLEN={tlen} exceeds the "
            f"{tset.rprof.shape[1]} transfers of RPROF/CPROF"
        )
    if tset.ctedate1 == tset.ctedate0:
        raise CalibError(f"PCTETAB {tab.path} set {tset.number}: CTEDATE0 equals CTEDATE1")
    return PassParams(
        kind=kind,
        traps=tset,
        tlen=tlen,
        nfor=_override(primary, "PCTENFOR", tset.nfor),
        npar=_override(primary, "PCTENPAR", tset.npar),
        frac=(expstart - tset.ctedate0) / (tset.ctedate1 - tset.ctedate0),
        fixrocr=fixrocr,
        thresh=thresh,
    )


def resolve(tab: PCTETab, primary: Mapping[str, Any], amps: str) -> CTEConfig:
    """Combine a PCTETAB with an exposure's primary header.

    Parameters
    ----------
    tab : PCTETab
        The table.
    primary : mapping
        Primary header of the exposure (EXPSTART and optional overrides).
    amps : str
        Amplifiers to prepare serial passes for, e.g. ``"ABCD"``.

    Returns
    -------
    CTEConfig

    Raises
    ------
    CalibError
        On a missing EXPSTART, an invalid FIXROCR, or a read-noise model other than 0.
    """
    try:
        expstart = float(primary["EXPSTART"])
    except KeyError:
        raise CalibError("primary header lacks EXPSTART, needed for the CTE time scaling") from None
    fixrocr = tab.fixrocr
    if "FIXROCR" in primary:
        fixrocr = int(primary["FIXROCR"])
        if fixrocr not in (0, 1):
            raise CalibError(f"primary header: FIXROCR={fixrocr}; only 0 or 1 is accepted")
    noise_model = int(primary.get("PCTENSMD", tab.pctensmd))
    if noise_model != 0:
        raise CalibError(f"PCTENSMD={noise_model}: only read-noise model 0 exists")
    parallel = _pass("parallel", tab.parallel, primary, expstart, bool(fixrocr),
                     tab.pctetrsh, tab)
    serial = {}
    if expstart >= SM4_MJD:
        serial = {
            amp: _pass("serial", tab.serial(amp), primary, expstart, bool(fixrocr),
                       tab.pctetrsh, tab)
            for amp in amps
        }
    return CTEConfig(parallel=parallel, serial=serial)
