"""CALACS: the whole chain for one exposure or one association, with hstcal's file names.

For each exposure (``<root>_raw.fits``): ACSCCD → ``<root>_blv_tmp.fits``; when PCTECORR is
PERFORM, ACSCTE → ``<root>_blc_tmp.fits``. For a CR-split association (an ``_asn`` table
with CRCORR=PERFORM and two or more members): ACSREJ → ``<product>_crj_tmp.fits`` (and
``_crc_tmp`` from the CTE-corrected set). Then ACS2D turns each ``_blv_tmp`` into ``_flt``,
``_blc_tmp`` into ``_flc``, ``_crj_tmp`` into ``_crj`` and ``_crc_tmp`` into ``_crc``. The
temporary files are removed at the end unless ``save_tmp`` (hstcal's ``-s``). Every step's
report goes into the trailer ``<rootname>.tra`` of its exposure or product
(:mod:`owl.calib.trailer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.acsrej import acsrej
from owl.calib.fitsio import output_name
from owl.calib.step import Report, quiet, switch
from owl.calib.trailer import trailer
from owl.errors import CalibError


@dataclass(frozen=True)
class Association:
    """The exposures of an association and the name of its CR-combined product."""

    members: tuple[Path, ...]
    product: str | None


def read_association(path: Path) -> Association:
    """Members (``EXP-*`` rows present on disk as ``<memname>_raw.fits``) and product."""
    try:
        with fits.open(path, memmap=False) as hdul:
            t = hdul[1].data
            rows = [(str(t["MEMNAME"][i]).strip().lower(), str(t["MEMTYPE"][i]).strip().upper(),
                     bool(t["MEMPRSNT"][i])) for i in range(len(t))]
    except (OSError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise CalibError(f"{path}: not a readable association table ({exc})") from exc
    members = tuple(path.with_name(f"{name}_raw.fits") for name, kind, present in rows
                    if kind.startswith("EXP") and present)
    products = [name for name, kind, _ in rows if kind.startswith("PROD")]
    if not members:
        raise CalibError(f"{path}: association lists no exposure present on disk")
    return Association(members, products[0] if products else None)


@dataclass
class Products:
    """Files CALACS made, by kind (``flt``, ``flc``, ``crj``, ``crc``, ``tra``, kept ``*_tmp``)."""

    files: dict[str, list[Path]] = field(default_factory=dict)

    def add(self, kind: str, path: Path) -> None:
        """Record one output."""
        self.files.setdefault(kind, []).append(path)


def _name(path: Path, suffix: str, output_dir: Path | None) -> Path:
    target = output_name(path, suffix)
    return (output_dir / target.name) if output_dir is not None else target


def calacs(input_path: str | Path, *, output_dir: str | Path | None = None,
           save_tmp: bool = False, overwrite: bool = False, report: Report = quiet) -> Products:
    """Calibrate a raw exposure or an association from raw to ``_flt``/``_flc``/``_crj``.

    Parameters
    ----------
    input_path : path
        ``<root>_raw.fits`` or ``<root>_asn.fits``.
    output_dir : path, optional
        Where to write (default: beside the input, as hstcal).
    save_tmp : bool
        Keep ``_blv_tmp``, ``_blc_tmp``, ``_crj_tmp``, ``_crc_tmp``.
    overwrite : bool
        Replace existing outputs (hstcal never does).
    report : callable
        Receives progress lines.

    Returns
    -------
    Products

    Raises
    ------
    owl.errors.CalibError
        On any unusable input, reference file, or an existing output.
    """
    src = Path(input_path)
    out_dir = Path(output_dir) if output_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    asn = read_association(src) if "_asn" in src.name.lower() else Association((src,), None)
    products = Products()
    tmp: list[Path] = []
    blv, blc = [], []
    for raw in asn.members:
        b = _name(raw, "blv_tmp", out_dir)
        tra = _trailer_name(b)
        with trailer(tra, "ACSCCD", report) as rep:
            acsccd(raw, b, overwrite=overwrite, report=rep)
        products.add("tra", tra)
        tmp.append(b)
        blv.append(b)
        if switch(fits.getheader(b), "PCTECORR") == "PERFORM":
            c = _name(raw, "blc_tmp", out_dir)
            with trailer(tra, "ACSCTE", report) as rep:
                _run_cte(b, c, overwrite, rep)
            tmp.append(c)
            blc.append(c)
    combined: list[tuple[Path, str]] = []
    crcorr = switch(fits.getheader(blv[0]), "CRCORR") == "PERFORM"
    if crcorr and len(blv) > 1:
        root = asn.product or blv[0].name.split("_")[0]
        for inputs, suffix, final in ((blv, "crj_tmp", "crj"), (blc, "crc_tmp", "crc")):
            if not inputs:
                continue
            target = (out_dir or blv[0].parent) / f"{root}_{suffix}.fits"
            tra = _trailer_name(target)
            with trailer(tra, "ACSREJ", report) as rep:
                acsrej(inputs, target, overwrite=overwrite, report=rep)
            if tra not in products.files.get("tra", []):
                products.add("tra", tra)
            tmp.append(target)
            combined.append((target, final))
    for path, kind in [(p, "flt") for p in blv] + [(p, "flc") for p in blc] + combined:
        out = _name(path, kind, out_dir)
        with trailer(_trailer_name(path), "ACS2D", report) as rep:
            acs2d(path, out, overwrite=overwrite, report=rep, in_calacs=True)
        products.add(kind, out)
    for path in tmp:
        if save_tmp:
            products.add(path.name.rsplit("_", 2)[-2] + "_tmp", path)
        else:
            path.unlink(missing_ok=True)
    return products


def _trailer_name(path: Path) -> Path:
    """``<rootname>.tra`` beside ``path`` (hstcal's trailer of that exposure or product)."""
    return path.with_name(path.name.split("_")[0] + ".tra")


def _run_cte(blv: Path, blc: Path, overwrite: bool, report: Report) -> None:
    """ACSCTE through :mod:`owl.calib.cte` (imported only for exposures that need it)."""
    from owl.calib.cte import run_acscte

    report(f"ACSCTE: {blv} -> {blc}")
    run_acscte(blv, blc, overwrite=overwrite)
