"""Read a "Par/Serial PixelCTE 2023" PCTETAB into frozen values.

Layout (hstcal's ``loadPCTETAB``): a primary header with CTE_NAME, CTE_VER, PCTERNOI,
PCTENSMD, PCTETRSH and FIXROCR, then five sets of four extensions (QPROF, SCLBYCOL, RPROF,
CPROF). Set 1 (extensions 1-4) is the parallel model, sets 2-5 (extensions 5-20) the serial
models of amps A, B, C and D. Each QPROF header carries the set's CTEDATE0, CTEDATE1,
PCTETLEN, PCTENFOR and PCTENPAR.

The QPROF rows with QLEV_Q < 999999 are the traps; they must come first and be
non-decreasing in QLEV_Q. RPROF and CPROF are images of NAXIS1 >= number of traps by
NAXIS2 >= PCTETLEN transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.errors import CalibError

CTE_NAME = "Par/Serial PixelCTE 2023"
"""The only PCTETAB generation hstcal (and owl) accepts."""

NOT_A_TRAP = 999999.0
"""QPROF rows at or above this QLEV_Q are padding, not traps."""

SERIAL_SET = {"A": 2, "B": 3, "C": 4, "D": 5}
"""Amp letter to the set number (EXTVER) of its serial model."""

N_SCALE_ROWS = 8192
"""SCLBYCOL rows: 4 amps x 2048 columns, CDAB order."""

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class TrapSet:
    """One set of the PCTETAB (parallel, or the serial model of one amp).

    Parameters
    ----------
    number : int
        Set number, 1 (parallel) to 5; equals the EXTVER of its extensions.
    ctedate0, ctedate1 : float
        MJDs between which the trap density grows from 0 to 1 (PCTEFRAC).
    tlen : int
        PCTETLEN, trail length in pixels.
    nfor : int
        PCTENFOR, iterations of the inversion.
    npar : int
        PCTENPAR, sub-transfers per readout simulation.
    qlev : ndarray of float64, shape (ntraps,)
        Charge level (electrons) at which each trap fills.
    dpde : ndarray of float64, shape (ntraps,)
        Trap size DPDE_W.
    rprof, cprof : ndarray of float64, shape (ntraps, NAXIS2)
        Release profile and cumulative profile per trap, indexed [trap, transfer - 1];
        NAXIS2 >= ``tlen``.
    iz : ndarray of int64, shape (8192,)
        SCLBYCOL column numbers (0-based, CDAB order).
    sens : ndarray of float64, shape (8192, 4)
        SCLBYCOL scalings at rows 512, 1024, 1536 and 2048.
    """

    number: int
    ctedate0: float
    ctedate1: float
    tlen: int
    nfor: int
    npar: int
    qlev: F64
    dpde: F64
    rprof: F64
    cprof: F64
    iz: I64
    sens: F64

    @property
    def ntraps(self) -> int:
        """Number of traps in this set."""
        return int(self.qlev.shape[0])


@dataclass(frozen=True, eq=False)
class PCTETab:
    """A whole PCTETAB.

    Parameters
    ----------
    path : pathlib.Path
        The file read.
    cte_name, cte_ver : str
        Algorithm name and version (primary header).
    pcternoi : float
        Read noise in the table; hstcal ignores it in favour of CCDTAB values.
    pctensmd : int
        Read-noise mitigation model; only 0 exists.
    pctetrsh : float
        Over-subtraction threshold used by the read-out cosmic-ray fix.
    fixrocr : int
        Default of the read-out cosmic-ray fix (0 or 1).
    pedigree, descrip : str
        Primary header PEDIGREE and DESCRIP (empty when absent).
    sets : tuple of TrapSet
        The five sets, ``sets[0]`` parallel, ``sets[1:]`` serial A, B, C, D.
    """

    path: Path
    cte_name: str
    cte_ver: str
    pcternoi: float
    pctensmd: int
    pctetrsh: float
    fixrocr: int
    pedigree: str
    descrip: str
    sets: tuple[TrapSet, ...]

    @property
    def parallel(self) -> TrapSet:
        """The parallel trap model (set 1)."""
        return self.sets[0]

    def serial(self, amp: str) -> TrapSet:
        """The serial trap model of one amplifier.

        Parameters
        ----------
        amp : str
            ``"A"``, ``"B"``, ``"C"`` or ``"D"``.

        Returns
        -------
        TrapSet
        """
        return self.sets[SERIAL_SET[amp] - 1]


def _key(header: fits.Header, name: str, kind: type, where: str) -> Any:
    if name not in header:
        raise CalibError(f"{where}: keyword {name} is missing")
    try:
        return kind(header[name])
    except (TypeError, ValueError) as exc:
        raise CalibError(
            f"{where}: keyword {name}={header[name]!r} is not {kind.__name__}"
        ) from exc


def _find(hdul: fits.HDUList, extname: str, extver: int, path: Path) -> Any:
    try:
        return hdul[extname, extver]
    except KeyError:
        raise CalibError(
            f"PCTETAB {path}: extension {extname},{extver} is missing; a Par/Serial PCTETAB "
            "has 5 sets of QPROF, SCLBYCOL, RPROF, CPROF"
        ) from None


def _column(hdu: Any, name: str, where: str) -> npt.NDArray[Any]:
    names = [n.upper() for n in hdu.columns.names]
    if name not in names:
        raise CalibError(f"{where}: column {name} is missing")
    return np.asarray(hdu.data[name])


def _read_set(hdul: fits.HDUList, number: int, path: Path) -> TrapSet:
    qprof = _find(hdul, "QPROF", number, path)
    where = f"PCTETAB {path} QPROF,{number}"
    header = qprof.header
    tlen = _key(header, "PCTETLEN", int, where)
    nfor = _key(header, "PCTENFOR", int, where)
    npar = _key(header, "PCTENPAR", int, where)
    if tlen < 1 or nfor < 1 or npar < 1:
        raise CalibError(f"{where}: PCTETLEN, PCTENFOR and PCTENPAR must be >= 1")
    qlev_all = _column(qprof, "QLEV_Q", where).astype(np.float64)
    dpde_all = _column(qprof, "DPDE_W", where).astype(np.float64)
    is_trap = qlev_all < NOT_A_TRAP
    ntraps = int(is_trap.sum())
    if ntraps == 0:
        raise CalibError(f"{where}: no traps (every QLEV_Q >= {NOT_A_TRAP:.0f})")
    if not is_trap[:ntraps].all():
        raise CalibError(f"{where}: trap rows (QLEV_Q < {NOT_A_TRAP:.0f}) must come first")
    qlev = np.ascontiguousarray(qlev_all[:ntraps])
    if np.any(np.diff(qlev) < 0):
        raise CalibError(f"{where}: QLEV_Q of the traps must be non-decreasing")

    sclbycol = _find(hdul, "SCLBYCOL", number, path)
    swhere = f"PCTETAB {path} SCLBYCOL,{number}"
    iz = _column(sclbycol, "IZ", swhere).astype(np.int64)
    if iz.shape[0] != N_SCALE_ROWS:
        raise CalibError(f"{swhere}: {iz.shape[0]} rows, expected {N_SCALE_ROWS}")
    sens = np.stack(
        [
            _column(sclbycol, name, swhere).astype(np.float64)
            for name in ("SENS_0512", "SENS_1024", "SENS_1536", "SENS_2048")
        ],
        axis=1,
    )

    profiles = []
    for extname in ("RPROF", "CPROF"):
        image = _find(hdul, extname, number, path).data
        pwhere = f"PCTETAB {path} {extname},{number}"
        if image is None or image.ndim != 2:
            raise CalibError(f"{pwhere}: expected a 2-D image")
        if image.shape[1] < ntraps or image.shape[0] < tlen:
            raise CalibError(
                f"{pwhere}: shape (NAXIS1={image.shape[1]}, NAXIS2={image.shape[0]}) is too small "
                f"for {ntraps} traps and PCTETLEN={tlen}"
            )
        profiles.append(np.ascontiguousarray(image[:, :ntraps].T.astype(np.float64)))

    return TrapSet(
        number=number,
        ctedate0=_key(header, "CTEDATE0", float, where),
        ctedate1=_key(header, "CTEDATE1", float, where),
        tlen=tlen,
        nfor=nfor,
        npar=npar,
        qlev=qlev,
        dpde=np.ascontiguousarray(dpde_all[:ntraps]),
        rprof=profiles[0],
        cprof=profiles[1],
        iz=np.ascontiguousarray(iz),
        sens=np.ascontiguousarray(sens),
    )


def read_pctetab(path: str | Path) -> PCTETab:
    """Read a Par/Serial PCTETAB (plain or gzip-compressed FITS).

    Parameters
    ----------
    path : str or pathlib.Path
        The table file.

    Returns
    -------
    PCTETab

    Raises
    ------
    CalibError
        If the file is unreadable, is an older table generation, or any set is malformed;
        the message names the file, the extension and what is wrong.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            primary = hdul[0].header
            where = f"PCTETAB {path} primary header"
            cte_name = str(primary.get("CTE_NAME", "")).strip()
            if cte_name != CTE_NAME:
                raise CalibError(
                    f"{where}: CTE_NAME={cte_name!r}; only {CTE_NAME!r} tables are supported "
                    "(older generations are obsolete)"
                )
            sets = tuple(_read_set(hdul, number, path) for number in range(1, 6))
            return PCTETab(
                path=path,
                cte_name=cte_name,
                cte_ver=str(_key(primary, "CTE_VER", str, where)).strip(),
                pcternoi=_key(primary, "PCTERNOI", float, where),
                pctensmd=_key(primary, "PCTENSMD", int, where),
                pctetrsh=_key(primary, "PCTETRSH", float, where),
                fixrocr=_key(primary, "FIXROCR", int, where),
                pedigree=str(primary.get("PEDIGREE", "")).strip(),
                descrip=str(primary.get("DESCRIP", "")).strip(),
                sets=sets,
            )
    except OSError as exc:
        raise CalibError(f"PCTETAB {path}: cannot read ({exc})") from exc
