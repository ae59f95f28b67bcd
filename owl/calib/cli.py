"""``calib``: command-line twins of hstcal's ``calacs.e``, ``acsccd``, ``acscte``,
``acscteforwardmodel``, ``acsrej`` and ``acs2d`` (mounted as ``owl calib ...``).

Inputs and outputs follow hstcal: reference files come from the header (``jref$`` needs
the ``jref`` environment variable), outputs are named from the input (``_raw`` →
``_blv_tmp`` → ``_flt`` ...) and are never replaced unless ``--overwrite`` is given. Any
calibration error ends the command with one line on stderr and exit status 1 (2 for a
command-line mistake, as click does). hstcal's single-dash options (``-dqi``, ``-crmask``,
``-table`` ...) are accepted as written.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click
import numba

from owl.calib.acs2d import acs2d
from owl.calib.acsccd import acsccd
from owl.calib.acsrej import acsrej, parse_sigmas
from owl.calib.calacs import calacs
from owl.calib.fitsio import output_name
from owl.calib.step import Report
from owl.errors import OwlError

_F = Callable[..., Any]

#: Suffix ACS2D gives each kind of input (hstcal's naming).
_2D_SUFFIX = {"blv_tmp": "flt", "blc_tmp": "flc", "crj_tmp": "crj", "crc_tmp": "crc"}


class CalibGroup(click.Group):
    """Turns owl's errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OwlError as exc:
            name = ctx.invoked_subcommand or "calib"
            click.echo(f"{name}: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=CalibGroup)
def calib() -> None:
    """CALACS-like calibration of ACS/WFC frames (hstcal's executables)."""


def _common(func: _F) -> _F:
    """Options every command shares: -t, -v, -q, --nthreads/-1, --overwrite."""
    for deco in reversed([
        click.option("-t", "timing", is_flag=True, help="Print the time each file took."),
        click.option("-v", "verbose", is_flag=True, help="Print what each step does."),
        click.option("-q", "quiet", is_flag=True, help="Print nothing but errors."),
        click.option("--nthreads", type=click.IntRange(min=1), default=None,
                     help="Threads for the numba kernels (default: all CPUs)."),
        click.option("-1", "single", is_flag=True, help="Use one thread (same as --nthreads 1)."),
        click.option("--overwrite", is_flag=True,
                     help="Replace existing outputs (hstcal never does)."),
    ]):
        func = deco(func)
    return func


def _setup(verbose: bool, quiet: bool, nthreads: int | None, single: bool) -> Report:
    """Set the thread count and return the progress reporter."""
    threads = 1 if single else nthreads
    if threads is not None:
        try:
            numba.set_num_threads(threads)
        except ValueError:
            raise click.BadParameter(f"{threads} threads is more than this machine's numba "
                                     "allows (NUMBA_NUM_THREADS)", param_hint="--nthreads") \
                from None
    if verbose and not quiet:
        return click.echo
    return lambda _line: None


def _files(items: tuple[str, ...]) -> list[Path]:
    """Expand hstcal's comma-separated lists; every file must exist."""
    paths = [Path(p) for item in items for p in item.split(",") if p]
    for p in paths:
        if not p.exists():
            raise click.BadParameter(f"{p}: no such file", param_hint="FILE")
    return paths


def _timed(timing: bool, quiet: bool, label: str, run: Callable[[], object]) -> None:
    start = time.perf_counter()
    run()
    if timing and not quiet:
        click.echo(f"{label}: {time.perf_counter() - start:.2f} s")


def _switches(names: dict[str, bool], all_names: tuple[str, ...]) -> dict[str, str] | None:
    """hstcal's rule: naming any switch runs only the named ones."""
    if not any(names.values()):
        return None
    return {n: "PERFORM" if names.get(n) else "OMIT" for n in all_names}


@calib.command("calacs")
@click.argument("files", nargs=-1, required=True)
@click.option("-s", "save_tmp", is_flag=True, help="Keep the temporary files (_blv_tmp ...).")
@click.option("--output-dir", type=click.Path(path_type=Path), default=None,
              help="Write products here instead of beside the input.")
@_common
def calacs_cmd(files: tuple[str, ...], save_tmp: bool, output_dir: Path | None, timing: bool,
               verbose: bool, quiet: bool, nthreads: int | None, single: bool,
               overwrite: bool) -> None:
    """Calibrate raw frames or associations (FILE is *_raw.fits or *_asn.fits)."""
    report = _setup(verbose, quiet, nthreads, single)
    for path in _files(files):
        def run(path: Path = path) -> None:
            products = calacs(path, output_dir=output_dir, save_tmp=save_tmp,
                              overwrite=overwrite, report=report)
            if not quiet:
                for kind, made in sorted(products.files.items()):
                    for p in made:
                        click.echo(f"{kind}: {p}")
        _timed(timing, quiet, str(path), run)


@calib.command("acsccd")
@click.argument("files", nargs=-1, required=True)
@click.option("-dqi", "dqi", is_flag=True,
              help="Perform DQICORR (naming switches runs only those).")
@click.option("-atod", "atod", is_flag=True, help="Accepted for hstcal compatibility (no-op).")
@click.option("-blev", "blev", is_flag=True, help="Perform BLEVCORR.")
@click.option("-bias", "bias", is_flag=True, help="Perform BIASCORR.")
@_common
def acsccd_cmd(files: tuple[str, ...], dqi: bool, atod: bool, blev: bool, bias: bool,
               timing: bool, verbose: bool, quiet: bool, nthreads: int | None, single: bool,
               overwrite: bool) -> None:
    """Bias, overscan, gain, saturation and ERR: *_raw.fits -> *_blv_tmp.fits."""
    report = _setup(verbose, quiet, nthreads, single)
    sw = _switches({"DQICORR": dqi, "ATODCORR": atod, "BLEVCORR": blev, "BIASCORR": bias},
                   ("DQICORR", "ATODCORR", "BLEVCORR", "BIASCORR"))
    for path in _files(files):
        out = output_name(path, "blv_tmp")
        _timed(timing, quiet, str(path),
               partial(acsccd, path, out, overwrite=overwrite, switches=sw, report=report))


@calib.command("acscte")
@click.argument("files", nargs=-1, required=True)
@_common
def acscte_cmd(files: tuple[str, ...], timing: bool, verbose: bool, quiet: bool,
               nthreads: int | None, single: bool, overwrite: bool) -> None:
    """Pixel-based CTE correction: *_blv_tmp.fits -> *_blc_tmp.fits."""
    from owl.calib.cte import run_acscte

    report = _setup(verbose, quiet, nthreads, single)
    for path in _files(files):
        out = output_name(path, "blc_tmp")
        report(f"ACSCTE: {path} -> {out}")
        _timed(timing, quiet, str(path), partial(run_acscte, path, out, overwrite=overwrite))


@calib.command("acscteforwardmodel")
@click.argument("files", nargs=-1, required=True)
@_common
def acscteforwardmodel_cmd(files: tuple[str, ...], timing: bool, verbose: bool, quiet: bool,
                           nthreads: int | None, single: bool, overwrite: bool) -> None:
    """Add CTE trails to a model (CTE forward model): *_blv_tmp.fits -> *_ctefmod.fits."""
    from owl.calib.cte import run_forward_model

    report = _setup(verbose, quiet, nthreads, single)
    for path in _files(files):
        out = output_name(path, "ctefmod")
        report(f"ACSCTE forward model: {path} -> {out}")
        _timed(timing, quiet, str(path),
               partial(run_forward_model, path, out, overwrite=overwrite))


@calib.command("acsrej")
@click.argument("inputs", nargs=-1, required=True)
@click.argument("output")
@click.option("-crmask", "crmask", is_flag=True, default=None,
              help="Flag rejected pixels in the inputs' DQ.")
@click.option("-table", "table", type=click.Path(exists=True, path_type=Path),
              help="CRREJTAB to use instead of the header's.")
@click.option("-scale", "scalense", type=float, help="Multiplicative noise, percent.")
@click.option("-init", "initgues", type=click.Choice(["med", "min", "median", "minimum"]),
              help="Initial guess: median or minimum.")
@click.option("-sky", "skysub", type=click.Choice(["none", "mode"]), help="Sky subtraction.")
@click.option("-sigmas", "crsigmas", help="Rejection thresholds, e.g. 6.5,5.5,4.5.")
@click.option("-radius", "crradius", type=float, help="CR propagation radius (pixels).")
@click.option("-thresh", "crthresh", type=float, help="CR propagation threshold factor.")
@click.option("-pdq", "badinpdq", type=int, help="DQ bits that exclude an input pixel.")
@click.option("-shadcorr", "shadcorr", is_flag=True,
              help="Apply the SHADFILE whatever SHADCORR says (as hstcal's -shadcorr).")
@click.option("--symmetric-spill", is_flag=True,
              help="owl fix: grow SPILL below hits too (hstcal: rows above and same row).")
@click.option("--good-minimum", is_flag=True,
              help="owl fix: minimum guess over good pixels only (hstcal's rule by default).")
@_common
def acsrej_cmd(inputs: tuple[str, ...], output: str, crmask: bool | None, table: Path | None,
               scalense: float | None, initgues: str | None, skysub: str | None,
               crsigmas: str | None, crradius: float | None, crthresh: float | None,
               badinpdq: int | None, shadcorr: bool, symmetric_spill: bool, good_minimum: bool,
               timing: bool, verbose: bool, quiet: bool, nthreads: int | None, single: bool,
               overwrite: bool) -> None:
    """Combine a CR-split set: INPUTS... (or a comma list) -> OUTPUT (*_crj.fits)."""
    report = _setup(verbose, quiet, nthreads, single)
    given: dict[str, Any] = {
        "crmask": True if crmask else None, "scalense": scalense, "initgues": initgues,
        "skysub": skysub,
        "crsigmas": parse_sigmas(crsigmas) if crsigmas else None, "crradius": crradius,
        "crthresh": crthresh, "badinpdq": badinpdq,
        "symmetric_spill": True if symmetric_spill else None,
        "good_minimum": True if good_minimum else None,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    paths = _files(inputs)

    def run() -> None:
        summary = acsrej(paths, output, table=table, overrides=overrides, overwrite=overwrite,
                         report=report, shadcorr=shadcorr)
        if not quiet:
            click.echo(f"{summary.output}: {summary.nimgs} images, REJ_RATE "
                       f"{summary.rej_rate:.4g} pixels/s")
    _timed(timing, quiet, output, run)


@calib.command("acs2d")
@click.argument("files", nargs=-1, required=True)
@click.option("-dqi", "dqi", is_flag=True,
              help="Perform DQICORR (naming switches runs only those).")
@click.option("-dark", "dark", is_flag=True, help="Perform DARKCORR.")
@click.option("-flash", "flash", is_flag=True, help="Perform FLSHCORR.")
@click.option("-flat", "flat", is_flag=True, help="Perform FLATCORR.")
@click.option("-phot", "phot", is_flag=True, help="Perform PHOTCORR.")
@_common
def acs2d_cmd(files: tuple[str, ...], dqi: bool, dark: bool, flash: bool, flat: bool,
              phot: bool, timing: bool, verbose: bool, quiet: bool, nthreads: int | None,
              single: bool, overwrite: bool) -> None:
    """Dark, flash, flat and photometry: *_blv_tmp/_blc_tmp/_crj_tmp -> *_flt/_flc/_crj."""
    report = _setup(verbose, quiet, nthreads, single)
    sw = _switches({"DQICORR": dqi, "DARKCORR": dark, "FLSHCORR": flash, "FLATCORR": flat,
                    "PHOTCORR": phot},
                   ("DQICORR", "DARKCORR", "FLSHCORR", "FLATCORR", "PHOTCORR"))
    for path in _files(files):
        out = output_name(path, _suffix_2d(path))
        _timed(timing, quiet, str(path),
               partial(acs2d, path, out, overwrite=overwrite, switches=sw, report=report))


def _suffix_2d(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz").removesuffix(".fits")
    for known, suffix in _2D_SUFFIX.items():
        if name.endswith("_" + known):
            return suffix
    return "flt"
