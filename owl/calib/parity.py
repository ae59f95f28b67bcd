"""Compare owl's CALACS steps with hstcal's executables on the same inputs.

hstcal is not part of owl: point ``HSTCAL_BIN`` at a directory holding hstcal's
``acsccd.e``, ``acscte.e``, ``acsrej.e``, ``acs2d.e`` and ``calacs.e`` (built from
``spacetelescope/hstcal``). :func:`run_hstcal` runs one of them in a directory;
:func:`compare` measures how two outputs differ, extension by extension (maximum absolute and
relative SCI/ERR difference, differing DQ pixels) and keyword by keyword.

Each step is compared on hstcal's own input to that step, so differences do not accumulate
along the chain (``tools/compare_hstcal.py`` prints the whole table).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.fitsio import read_frame
from owl.errors import CalibError

#: Keywords compared in the primary header (those hstcal computes, not copies).
PRIMARY_KEYS = ("DARKTIME", "EXPTIME", "TEXPTIME", "EXPSTART", "EXPEND", "ROOTNAME", "NCOMBINE",
                "ATODGNA", "ATODGNB", "ATODGNC", "ATODGND", "READNSEA", "READNSEB", "READNSEC",
                "READNSED", "DQICORR", "BIASCORR", "BLEVCORR", "DARKCORR", "FLATCORR",
                "PHOTCORR", "CRCORR", "EXPSCORR", "PCTECORR", "FLSHCORR", "SINKCORR",
                "SHADCORR", "CRSIGMAS", "CRRADIUS", "CRTHRESH", "BADINPDQ", "CRMASK",
                "SCALENSE", "INITGUES", "SKYSUB", "MEANEXP", "PHOTMODE", "PHOTFLAM", "SKYSUM",
                "REJ_RATE", "FLASHDUR")
#: Keywords compared in every SCI extension header.
SCI_KEYS = ("BUNIT", "MEANBLEV", "MEANDARK", "MEANFLSH", "PHOTMODE", "PHOTFLAM", "PHOTZPT",
            "PHOTPLAM", "PHOTBW", "GOODMIN", "GOODMAX", "GOODMEAN", "SNRMIN", "SNRMAX",
            "SNRMEAN", "NGOODPIX", "SKYSUM", "REJ_RATE", "EXPNAME", "LTV1", "LTV2",
            "SIZAXIS1", "SIZAXIS2", "NCOMBINE")


def hstcal_bin() -> Path | None:
    """The ``HSTCAL_BIN`` directory when it is set and holds ``acsccd.e``, else None."""
    value = os.environ.get("HSTCAL_BIN", "").strip()
    if not value:
        return None
    path = Path(value)
    return path if (path / "acsccd.e").is_file() else None


def run_hstcal(exe: str, args: Sequence[str], cwd: Path, jref: Path,
               bin_dir: Path | None = None, threads: int = 1) -> str:
    """Run hstcal's ``exe`` (``acsccd.e``…) with ``args`` in ``cwd``; return its log.

    hstcal exits 0 on many errors, so a run counts as failed when it exits non-zero, or when
    its log has an ``ERROR`` line.

    Raises
    ------
    owl.errors.CalibError
        When HSTCAL_BIN is unset or the executable fails.
    """
    where = bin_dir or hstcal_bin()
    if where is None:
        raise CalibError("HSTCAL_BIN is not set to a directory with hstcal's acsccd.e")
    env = dict(os.environ, jref=f"{jref}/", OMP_NUM_THREADS=str(threads))
    done = subprocess.run([str(where / exe), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    log = done.stdout + done.stderr
    # Harmless ERROR lines: a missing trailer of an input (``.tra``), and acscte's CTE
    # keywords absent from the image header ("not a fatal error": the PCTETAB's are used).
    bad = [line for line in log.splitlines() if line.lstrip().upper().startswith("ERROR")
           and ".tra" not in line and "Keyword = `PCTE" not in line
           and "Keyword = `FIXROCR" not in line]
    if done.returncode != 0 or bad:
        raise CalibError(f"{exe} {' '.join(args)} in {cwd}: exit {done.returncode}; "
                         f"{(bad or log.splitlines()[-3:])}")
    return log


def stage(files: Sequence[Path], directory: Path) -> list[Path]:
    """Copy ``files`` into a fresh ``directory`` (hstcal writes beside its inputs)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return [Path(shutil.copy2(f, directory / f.name)) for f in files]


@dataclass(frozen=True)
class ArrayDiff:
    """How one extension differs: maximum |a-b|, maximum |a-b|/|b|, pixels that differ."""

    name: str
    max_abs: float
    max_rel: float
    ndiff: int
    npix: int

    def within(self, rtol: float, atol: float = 0.0) -> bool:
        """True when every pixel satisfies ``|a-b| <= atol + rtol*|b|`` (FITSDiff's rule)."""
        return self.ndiff == 0 or (self.max_rel <= rtol or self.max_abs <= atol)


@dataclass(frozen=True)
class FileDiff:
    """All differences between an owl output and hstcal's."""

    arrays: tuple[ArrayDiff, ...]
    keywords: Mapping[str, tuple[object, object]] = field(default_factory=dict)

    def array(self, name: str) -> ArrayDiff:
        """The difference of extension ``name`` (``'SCI,1'``)."""
        for a in self.arrays:
            if a.name == name:
                return a
        raise KeyError(name)

    def lines(self) -> list[str]:
        """One printable line per extension and per differing keyword."""
        out = [f"  {a.name:6s} max|d| {a.max_abs:10.4g}  max rel {a.max_rel:9.3g}  "
               f"{a.ndiff:8d} of {a.npix} px differ" for a in self.arrays]
        out += [f"  {k:16s} owl {v[0]!r}  hstcal {v[1]!r}" for k, v in self.keywords.items()]
        return out


def _array_diff(name: str, a: np.ndarray, b: np.ndarray, rtol: float) -> ArrayDiff:
    if a.shape != b.shape:
        raise CalibError(f"{name}: owl shape {a.shape} differs from hstcal {b.shape}")
    if name.startswith("DQ"):
        nd = int(np.count_nonzero(a != b))
        return ArrayDiff(name, float(nd > 0), float(nd > 0), nd, a.size)
    x, y = a.astype(np.float64), b.astype(np.float64)
    d = np.abs(x - y)
    rel = d / np.maximum(np.abs(y), 1e-30)
    nd = int(np.count_nonzero(d > rtol * np.abs(y)))
    return ArrayDiff(name, float(d.max(initial=0.0)), float(rel.max(initial=0.0)), nd, a.size)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=0.0))
    return str(a).strip().upper() == str(b).strip().upper()


def compare(owl_file: Path, hstcal_file: Path, rtol: float = 1e-7,
            primary_keys: Sequence[str] = PRIMARY_KEYS,
            sci_keys: Sequence[str] = SCI_KEYS) -> FileDiff:
    """Compare SCI/ERR/DQ of every imset and the listed keywords of two CALACS files.

    A keyword missing from one side shows as ``None`` there.
    """
    mine, theirs = read_frame(owl_file), read_frame(hstcal_file)
    arrays = []
    keys: dict[str, tuple[object, object]] = {}
    for k in primary_keys:
        a, b = mine.primary.get(k), theirs.primary.get(k)
        if (a is None) != (b is None) or (a is not None and not _same(a, b)):
            keys[f"[0] {k}"] = (a, b)
    for imset in theirs.imsets:
        ours = mine.imset(imset.chip)
        for name in ("SCI", "ERR", "DQ"):
            arrays.append(_array_diff(f"{name},{imset.extver}", getattr(ours, name.lower()),
                                      getattr(imset, name.lower()), rtol))
        for k in sci_keys:
            a, b = ours.sci_header.get(k), imset.sci_header.get(k)
            if (a is None) != (b is None) or (a is not None and not _same(a, b)):
                keys[f"[SCI,{imset.extver}] {k}"] = (a, b)
    return FileDiff(tuple(arrays), keys)


def header_of(path: Path, ext: int | tuple[str, int] = 0) -> fits.Header:
    """One header of a FITS file."""
    with fits.open(path, memmap=False) as hdul:
        return hdul[ext].header.copy()
