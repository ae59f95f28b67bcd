"""File-level PCTECORR: ``_blv_tmp`` in, ``_blc_tmp`` (or ``_ctefmod``) out.

The PCTETAB and CCDTAB come from the input's primary header (``jref$name``, resolved by
:func:`owl.calib.refpath.resolve_ref`). The read noise of each amp comes from the CCDTAB row
matching the exposure; PCTERNOI in the PCTETAB is ignored, as in hstcal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

import owl
from owl.calib.ccdtab import CCDKey, CCDParams, read_ccdtab
from owl.calib.cte.amps import AMP_SIZE, AMPS_OF_CHIP, CHIP_OF_AMP
from owl.calib.cte.correct import correct_chip
from owl.calib.cte.forward import forward_chip
from owl.calib.cte.frame import Frame, read_frame, write_frame
from owl.calib.cte.params import CTEConfig, PassParams, resolve
from owl.calib.cte.pctetab import PCTETab, read_pctetab
from owl.calib.pedigree import check_cte_pedigrees
from owl.calib.refpath import resolve_ref
from owl.errors import CalibError

AMPS = "ABCD"


def _check_input(frame: Frame, source: str) -> str:
    """Refuse what hstcal's acscte refuses or owl cannot do; return CCDAMP."""
    primary = frame.primary
    switch = str(primary.get("PCTECORR", "")).strip().upper()
    if switch != "PERFORM":
        raise CalibError(f"{source}: PCTECORR={switch or 'missing'}; expected PERFORM")
    if str(primary.get("BLEVCORR", "")).strip().upper() != "COMPLETE":
        raise CalibError(f"{source}: BLEVCORR is not COMPLETE; run ACSCCD (overscan trim) first")
    ccdamp = str(primary.get("CCDAMP", "")).strip().upper()
    chips = sorted(imset.chip for imset in frame.imsets)
    if bool(primary.get("SUBARRAY", False)):
        # A corner subarray read through one amp: the whole array is that amp's region.
        if len(ccdamp) != 1 or ccdamp not in AMPS:
            raise CalibError(f"{source}: subarray with CCDAMP={primary.get('CCDAMP')!r}; "
                             "expected one amplifier (A, B, C or D)")
        if chips != [CHIP_OF_AMP[ccdamp]]:
            raise CalibError(f"{source}: subarray read by amp {ccdamp} should hold one imset "
                             f"of chip {CHIP_OF_AMP[ccdamp]}, found CCDCHIP {chips}")
    else:
        if ccdamp != AMPS:
            raise CalibError(f"{source}: CCDAMP={primary.get('CCDAMP')!r}; only ABCD readout "
                             "is supported for full frames")
        if chips != [1, 2]:
            raise CalibError(f"{source}: expected one imset per WFC chip, found CCDCHIP {chips}")
    for imset in frame.imsets:
        header = imset.headers["SCI"]
        if float(header.get("LTV1", 0.0)) > 0.0 or float(header.get("LTV2", 0.0)) > 0.0:
            raise CalibError(f"{source}: chip {imset.chip} still has overscan (LTV1/LTV2 > 0)")
        if ccdamp == AMPS and imset.sci.shape != (AMP_SIZE, 2 * AMP_SIZE):
            raise CalibError(f"{source}: chip {imset.chip} SCI has shape {imset.sci.shape}, "
                             f"expected ({AMP_SIZE}, {2 * AMP_SIZE})")
    return ccdamp


def _history_pass(header: fits.Header, label: str, params: PassParams, tab: PCTETab) -> None:
    header.add_history(f"CORRTYPE {label} CTE correction type")
    if params.kind == "parallel":
        header.add_history(f"PCTETRSH {params.thresh:20.12E} CTE over subtraction threshold")
        header.add_history(f"PCTEFRAC {params.frac:20.12E} CTE scaling factor")
    else:
        header.add_history(f"PCTEFRAC {params.frac:20.12E} CTE scaling factor")
    header.add_history(f"CTEDATE0 {params.traps.ctedate0:20.12E} Date of instrument installation")
    header.add_history(f"CTEDATE1 {params.traps.ctedate1:20.12E} Date of CTE model pinning")
    header.add_history(f"PCTETLEN {params.tlen:12d} max length of CTE trail")
    header.add_history(f"PCTENFOR {params.nfor:12d} Number of iter in forward model")
    header.add_history(f"PCTENPAR {params.npar:12d} Number of iter in parallel transfer")


def _update_header(
    frame: Frame, tab: PCTETab, ccd: CCDParams, ccd_ref: str, config: CTEConfig, tab_ref: str
) -> None:
    header = frame.primary
    # hstcal writes 0 for the amps CCDAMP does not name.
    used = {a: a in ccd.amps for a in AMPS}
    for amp in AMPS:
        header[f"ATODGN{amp}"] = ccd.amp(amp).gain if used[amp] else 0.0
    for amp in AMPS:
        header[f"READNSE{amp}"] = ccd.amp(amp).readnoise if used[amp] else 0.0
    header.add_history("CCD parameters table:")
    header.add_history(f"  reference table {ccd_ref}")
    for line in (ccd.pedigree, ccd.descrip):
        if line:
            header.add_history(f"    {line}")
    header.add_history(f"CTE_NAME {tab.cte_name} CTE algorithm name")
    header.add_history(f"CTE_VER {tab.cte_ver} CTE algorithm version")
    _history_pass(header, "parallel", config.parallel, tab)
    for imset in frame.imsets:
        for amp in AMPS_OF_CHIP[imset.chip]:
            if amp in config.serial and used[amp]:
                _history_pass(header, f"serial - Amp {amp}", config.serial[amp], tab)
    header["PCTECORR"] = "COMPLETE"
    header.add_history("PCTECORR complete ...")
    for amp in AMPS:
        header.add_history(
            f"PCTERNOI {ccd.amp(amp).readnoise if used[amp] else 0.0:14.7E} Amp '{amp}' "
            "read noise clip limit "
            "(from CCDTAB)."
        )
    header.add_history("CTE parameters table:")
    header.add_history(f"  reference table {tab_ref}")
    for line in (tab.pedigree, tab.descrip):
        if line:
            header.add_history(f"    {line}")
    header["CTE_NAME"] = (tab.cte_name, "name of CTE algorithm")
    header["CTE_VER"] = (tab.cte_ver, "version of CTE algorithm")
    header["CAL_VER"] = (f"owl {owl.__version__}", "version of the calibration software")


def _run(input_path: str | Path, output_path: str | Path, overwrite: bool,
         forward: bool, keywords: Mapping[str, str] | None = None) -> None:
    source = str(input_path)
    output = Path(output_path)
    if output.exists() and not overwrite:
        raise CalibError(f"{output}: output exists; remove it or pass overwrite=True")
    frame = read_frame(input_path)
    ccdamp = _check_input(frame, source)
    primary = frame.primary
    for name, value in (keywords or {}).items():
        primary[name] = value
    # hstcal's GetCTEFlags: a DUMMY CCDTAB or PCTETAB means no output
    check_cte_pedigrees(primary, source)
    tab_ref = str(primary.get("PCTETAB", ""))
    ccd_ref = str(primary.get("CCDTAB", ""))
    tab = read_pctetab(resolve_ref(tab_ref, keyword="PCTETAB", source=source))
    ccdtab = read_ccdtab(resolve_ref(ccd_ref, keyword="CCDTAB", source=source))
    config = resolve(tab, primary, AMPS)
    matches = {imset.chip: ccdtab.match(CCDKey.from_header(primary, imset.chip))
               for imset in frame.imsets}
    for imset in frame.imsets:
        if forward:
            forward_chip(imset.sci, imset.err, imset.chip, config, ccdamp)
        else:
            readnoise = {amp: matches[imset.chip].amp(amp).readnoise
                         for amp in AMPS_OF_CHIP[imset.chip] if amp in ccdamp}
            correct_chip(imset.sci, imset.err, imset.chip, config, readnoise, ccdamp)
    # hstcal reports the CCDTAB values of the first imset in the primary header.
    _update_header(frame, tab, matches[frame.imsets[0].chip], ccd_ref, config, tab_ref)
    frame.primary["FILENAME"] = output.name
    write_frame(frame, output, overwrite=overwrite)


def run_acscte(input_path: str | Path, output_path: str | Path, *,
               overwrite: bool = False, keywords: Mapping[str, str] | None = None) -> None:
    """Apply PCTECORR to a ``_blv_tmp`` file and write the ``_blc_tmp`` file.

    Parameters
    ----------
    input_path : str or pathlib.Path
        Overscan-trimmed, bias-subtracted WFC frame in electrons with PCTECORR=PERFORM.
    output_path : str or pathlib.Path
        Output file (plain FITS).
    overwrite : bool, optional
        Replace an existing output.
    keywords : mapping, optional
        Header keywords (reference files such as ``PCTETAB``) that replace the input
        header's; the output header records them.

    Raises
    ------
    CalibError
        On unusable input, reference files or an existing output.
    """
    _run(input_path, output_path, overwrite, forward=False, keywords=keywords)


def run_forward_model(input_path: str | Path, output_path: str | Path, *,
                      overwrite: bool = False) -> None:
    """Add CTE trails to a ``_blv_tmp`` file (hstcal's acscteforwardmodel) and write it.

    Parameters
    ----------
    input_path : str or pathlib.Path
        Overscan-trimmed WFC frame in electrons with PCTECORR=PERFORM.
    output_path : str or pathlib.Path
        Output file (plain FITS, conventionally ``_ctefmod.fits``).
    overwrite : bool, optional
        Replace an existing output.

    Raises
    ------
    CalibError
        On unusable input, reference files or an existing output.
    """
    _run(input_path, output_path, overwrite, forward=True)
