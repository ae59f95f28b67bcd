"""Calibration commands: owl bestrefs, owl preview (``owl calib`` is loaded lazily)."""

from __future__ import annotations

from pathlib import Path

import click

from owl.cli.main import emit_json
from owl.errors import CalibError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--rules", type=click.Path(path_type=Path, exists=True),
              help="Rules file (default: the ACS rules shipped in pipelines/refs/).")
@click.option("--output-dir", "-o", type=click.Path(path_type=Path, file_okay=False),
              help="Write a copy of each file, with the chosen files in its primary header, "
                   "into this directory (the input files are never modified).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bestrefs(files: tuple[Path, ...], rules: Path | None, output_dir: Path | None,
             as_json: bool) -> None:
    """Choose reference files for exposures by the selection rules."""
    from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

    from owl.calib.bestrefs import best_refs, load_rules

    chosen: dict[str, dict[str, str]] = {}
    for path in files:
        try:
            header = fits.getheader(path)
        except (OSError, ValueError) as exc:
            raise CalibError(f"{path}: cannot read a FITS header: {exc}") from exc
        refs = best_refs(header, load_rules(rules))
        chosen[str(path)] = refs
        if output_dir is not None:
            target = output_dir / path.name
            if target.resolve() == path.resolve():
                raise CalibError(f"{path}: --output-dir would overwrite the input; "
                                 "choose another directory")
            output_dir.mkdir(parents=True, exist_ok=True)
            with fits.open(path) as hdul:
                for key, value in refs.items():
                    hdul[0].header[key] = value
                hdul[0].header.add_history("owl bestrefs: reference files chosen by rules")
                hdul.writeto(target, overwrite=True)
    if as_json:
        emit_json(chosen)
        return
    for path_text, refs in chosen.items():
        click.echo(path_text)
        for key, value in sorted(refs.items()):
            click.echo(f"  {key:<10} {value}")


@click.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="PNG to write (default: FILE with .png).")
@click.option("--width", default=1024, show_default=True, help="Width of the PNG in pixels.")
def preview(file: Path, output: Path | None, width: int) -> None:
    """Render a frame's SCI arrays (both chips, zscale) as a PNG."""
    from owl.calib.preview import render_preview

    out = output or file.with_suffix(".png")
    w, h = render_preview(file, out, width=width)
    click.echo(f"wrote {out} ({w}x{h})")


COMMANDS = [bestrefs, preview]
