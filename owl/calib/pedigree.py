"""DUMMY reference files, handled as hstcal handles them (``GetACSFlags``, ``Get2dFlags``).

hstcal reads PEDIGREE (and DESCRIP) from the primary header of every reference image and
table a step would use (``ImgPedigree``, ``TabPedigree``). A PEDIGREE whose first five
letters are ``DUMMY`` (case-sensitive, ``strncmp``) turns the step's switch to DUMMY: the
step is not performed, the output switch says ``SKIPPED`` and the primary header gets
``<SWITCH> skipped due to dummy reference file ...`` followed by the file's history lines
(``  reference image|table <name>``, ``    <PEDIGREE>``, ``    <DESCRIP>``); the trailer says
``<SWITCH> SKIPPED`` and ``<KEYWORD> PEDIGREE=<pedigree>``. Step by step (hstcal 10.5):

- DQICORR (BPIXTAB): the table is not applied; the A-to-D saturation check still runs.
- BIASCORR (BIASFILE), SINKCORR (SNKCFILE), DARKCORR (DARKFILE, or DRKCFILE for CTE-corrected
  data), FLSHCORR (FLSHFILE; its LTV is still checked), SHADCORR (SHADFILE), PHOTCORR
  (IMPHTTAB; PHOTMODE is still written): skipped.
- FLATCORR: a DUMMY PFLTFILE, DFLTFILE or LFLTFILE is not applied; the others are and
  FLATCORR is COMPLETE (the DUMMY file's PEDIGREE appears among the flats' history lines).
  Only when every named flat is DUMMY is FLATCORR SKIPPED.
- OSCNTAB: read whatever BLEVCORR says; when DUMMY the bias level is not subtracted and the
  overscan is not trimmed, yet BLEVCORR becomes COMPLETE (even from OMIT) with the history
  ``BLEVCORR complete, but default bias level was subtracted.``; the full-well flags are
  not applied, and ACS2D then refuses the untrimmed file.
- CCDTAB: a DUMMY table is an error (``CCDTAB `name' is a dummy table.``); a DUMMY matching
  row is only a warning (``Row N of CCDTAB is DUMMY.``), and so is a DUMMY IMPHTTAB row.
- PCTETAB: ACSCTE has nothing else to do, so it is an error and writes no output.
- When every step a switch asked for was dropped for a DUMMY file, ACSCCD and ACS2D write no
  output (hstcal's ``NOTHING_TO_DO``): an error here too.
- SATUFILE and CRREJTAB: hstcal never looks at their PEDIGREE. ACSREJ reads the SHADFILE's
  but compares it with the wrong constant, so a DUMMY SHADFILE is applied
  (:mod:`owl.calib.acsrej`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.fitsio import add_history, set_switch
from owl.calib.step import Report, ref_file, switch, wants
from owl.errors import CalibError

#: hstcal's test: the first five letters of PEDIGREE.
DUMMY = "DUMMY"
#: The flats of FLATCORR, in the order hstcal applies them.
FLATS = ("PFLTFILE", "DFLTFILE", "LFLTFILE")


def is_dummy(pedigree: object) -> bool:
    """True when a PEDIGREE value marks a dummy file (hstcal: ``strncmp(p, "DUMMY", 5)``)."""
    return str(pedigree if pedigree is not None else "").startswith(DUMMY)


def named(value: object) -> bool:
    """True when a reference keyword names a file (hstcal's ``GotFileName``)."""
    text = str(value if value is not None else "").strip().lower()
    return text not in ("", "n/a")


@dataclass(frozen=True)
class Ref:
    """A reference file named in a header, with the PEDIGREE and DESCRIP of its primary."""

    keyword: str
    name: str
    path: Path
    pedigree: str
    descrip: str
    table: bool = False

    @property
    def dummy(self) -> bool:
        """True when PEDIGREE starts with DUMMY."""
        return is_dummy(self.pedigree)

    def history(self) -> list[str]:
        """hstcal's ``ImgHistory``/``TabHistory`` lines for this file."""
        lines = [f"  reference {'table' if self.table else 'image'} {self.name}"]
        return lines + [f"    {text}" for text in (self.pedigree, self.descrip) if text]

    def trailer(self) -> str:
        """hstcal's ``PrRefInfo`` line for the PEDIGREE."""
        return f"{self.keyword} PEDIGREE={self.pedigree}"


def reference(header: fits.Header, keyword: str, source: str, *, table: bool = False) -> Ref:
    """The reference file of ``keyword`` and its PEDIGREE/DESCRIP (primary header, as
    hstcal reads them for images and, since 2024, for tables).

    Raises
    ------
    owl.errors.CalibError
        When the keyword is missing, names no existing file, or the file has no readable
        primary header.
    """
    path = ref_file(header, keyword, source)
    try:
        primary = fits.getheader(path, 0)
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise CalibError(f"{keyword} {path}: cannot read its primary header ({exc})") from exc
    return Ref(keyword=keyword, name=str(header[keyword]).strip(), path=path,
               pedigree=str(primary.get("PEDIGREE", "")).rstrip(),
               descrip=str(primary.get("DESCRIP", "")).rstrip(), table=table)


def record_skip(header: fits.Header, name: str, refs: Sequence[Ref], report: Report,
                extra: Sequence[str] = ()) -> None:
    """Write what hstcal writes for a step skipped for DUMMY ``refs``: the switch SKIPPED,
    ``<name> skipped due to dummy reference file ...``, ``extra`` lines and each file's
    history lines; report the switch and the PEDIGREEs as hstcal's trailer does."""
    set_switch(header, name, "SKIPPED")
    add_history(header, f"{name} skipped due to dummy reference file ...")
    for line in [*extra, *(line for r in refs for line in r.history())]:
        header.add_history(line)
    report(f"{name} SKIPPED")
    for r in refs:
        report(r.trailer())


def check_ccdtab_pedigree(pedigree: str, name: str, path: Path) -> None:
    """Refuse a DUMMY CCDTAB, as hstcal's ``checkCCD`` (a missing calibration file)."""
    if is_dummy(pedigree):
        raise CalibError(f"CCDTAB `{name}' is a dummy table ({path}: PEDIGREE={pedigree!r}); "
                         "hstcal refuses it (calibration file missing)")


def check_ccdtab(header: fits.Header, source: str) -> Ref:
    """The CCDTAB of ``header``; an error when its PEDIGREE is DUMMY."""
    ref = reference(header, "CCDTAB", source, table=True)
    check_ccdtab_pedigree(ref.pedigree, ref.name, ref.path)
    return ref


@dataclass
class Plan:
    """Which steps of one executable run and which are skipped for DUMMY references.

    Attributes
    ----------
    source : str
        The input, for messages.
    run : set of str
        Switches that are PERFORM and whose references are not DUMMY (hstcal's ``nsteps``).
    dummy : dict
        Switch to the DUMMY references that make it skipped.
    refs : dict
        Every reference checked, by keyword.
    """

    source: str
    run: set[str] = field(default_factory=set)
    dummy: dict[str, tuple[Ref, ...]] = field(default_factory=dict)
    refs: dict[str, Ref] = field(default_factory=dict)

    def runs(self, name: str) -> bool:
        """True when step ``name`` is to be performed."""
        return name in self.run

    def check(self, header: fits.Header, name: str, keyword: str, *,
              table: bool = False) -> None:
        """When switch ``name`` is PERFORM, look at the PEDIGREE of ``keyword``'s file."""
        if not wants(header, name):
            return
        ref = reference(header, keyword, self.source, table=table)
        self.refs[keyword] = ref
        if ref.dummy:
            self.dummy[name] = (ref,)
        else:
            self.run.add(name)

    def skip(self, header: fits.Header, name: str, report: Report,
             extra: Sequence[str] = ()) -> None:
        """Record step ``name`` as skipped for its DUMMY references (:func:`record_skip`)."""
        record_skip(header, name, self.dummy[name], report, extra)

    def skip_dummy(self, header: fits.Header, name: str, report: Report) -> None:
        """:meth:`skip` when step ``name`` is not performed because of DUMMY references."""
        if name in self.dummy and name not in self.run:
            self.skip(header, name, report)

    def require_work(self) -> None:
        """hstcal's ``NOTHING_TO_DO``: an error when DUMMY files left no step to perform."""
        if not self.run and self.dummy:
            files = ", ".join(f"{r.keyword}={r.name}" for refs in self.dummy.values()
                              for r in refs)
            raise CalibError(f"{self.source}: no output: no calibration switch was set to "
                             f"PERFORM, or all reference files had PEDIGREE = DUMMY ({files})")


def plan_ccd(header: fits.Header, source: str) -> Plan:
    """hstcal's ``GetACSFlags`` for ACSCCD: CCDTAB, BPIXTAB, OSCNTAB, BIASFILE, SNKCFILE."""
    plan = Plan(source)
    plan.refs["CCDTAB"] = check_ccdtab(header, source)
    plan.check(header, "DQICORR", "BPIXTAB", table=True)
    # checkCCD reads a named OSCNTAB whatever BLEVCORR says; a DUMMY one sets BLEVCORR.
    if named(header.get("OSCNTAB")):
        oscn = reference(header, "OSCNTAB", source, table=True)
        plan.refs["OSCNTAB"] = oscn
        if oscn.dummy:
            plan.dummy["BLEVCORR"] = (oscn,)
    if wants(header, "BLEVCORR") and "BLEVCORR" not in plan.dummy:
        plan.run.add("BLEVCORR")
    plan.check(header, "BIASCORR", "BIASFILE")
    plan.check(header, "SINKCORR", "SNKCFILE")
    return plan


def dummy_blev_history(header: fits.Header, oscn: Ref, report: Report) -> None:
    """What hstcal's ``blevHistory`` writes when a DUMMY OSCNTAB skipped BLEVCORR."""
    set_switch(header, "BLEVCORR", "COMPLETE")
    for line in ("BLEVCORR complete, but default bias level was subtracted.",
                 "BLEVCORR does not include correction for drift along lines.",
                 "  Overscan region table: ", *oscn.history()):
        header.add_history(line)
    report("BLEVCORR SKIPPED")
    report(oscn.trailer())


def plan_2d(header: fits.Header, source: str, cte: bool) -> Plan:
    """hstcal's ``Get2dFlags`` for ACS2D (``cte``: PCTECORR is COMPLETE, so DRKCFILE).

    FLATCORR runs when one named flat is not DUMMY; ``dummy["FLATCORR"]`` then lists the
    DUMMY ones (not applied), and FLATCORR is skipped only when every named flat is DUMMY.
    """
    plan = Plan(source)
    if named(header.get("CCDTAB")):
        plan.refs["CCDTAB"] = check_ccdtab(header, source)
    plan.check(header, "DQICORR", "BPIXTAB", table=True)
    plan.check(header, "DARKCORR", "DRKCFILE" if cte else "DARKFILE")
    plan.check(header, "FLSHCORR", "FLSHFILE")
    if "FLSHCORR" in plan.dummy:
        _check_flash_ltv(plan.refs["FLSHFILE"])
    if wants(header, "FLATCORR"):
        flats = [reference(header, k, source) for k in FLATS if named(header.get(k))]
        if not flats:
            raise CalibError(f"{source}: FLATCORR=PERFORM but PFLTFILE, DFLTFILE and LFLTFILE "
                             "are all blank")
        plan.refs.update({r.keyword: r for r in flats})
        if any(r.dummy for r in flats):
            plan.dummy["FLATCORR"] = tuple(r for r in flats if r.dummy)
        if not all(r.dummy for r in flats):
            plan.run.add("FLATCORR")
    plan.check(header, "SHADCORR", "SHADFILE")
    plan.check(header, "PHOTCORR", "IMPHTTAB", table=True)
    return plan


def _check_flash_ltv(ref: Ref) -> None:
    """hstcal's ``checkFlash`` refuses an untrimmed FLSHFILE even when it is DUMMY."""
    try:
        sci = fits.getheader(ref.path, ("SCI", 1))
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise CalibError(f"FLSHFILE {ref.path}: cannot read its first SCI header ({exc})") \
            from exc
    if float(sci.get("LTV1", 0)) != 0 or float(sci.get("LTV2", 0)) != 0:
        raise CalibError(f"{ref.path}: FLSHFILE has untrimmed overscans (LTV1/LTV2 not 0)")


def check_cte_pedigrees(header: fits.Header, source: str) -> None:
    """hstcal's ``GetCTEFlags``: a DUMMY CCDTAB is an error, and a DUMMY PCTETAB leaves
    ACSCTE nothing to do (no output)."""
    check_ccdtab(header, source)
    if switch(header, "PCTECORR") != "PERFORM":
        return
    tab = reference(header, "PCTETAB", source, table=True)
    if tab.dummy:
        raise CalibError(f"{source}: no output: PCTETAB `{tab.name}' ({tab.path}) has "
                         f"PEDIGREE={tab.pedigree!r}, and no other calibration switch of "
                         "ACSCTE was set to PERFORM")
