"""Tasks of the demo pipeline (``pipelines/demo.yaml``) and the no-op benchmark pipeline.

They do real, small work on small FITS frames: check the header, subtract the overscan
level and scale to a rate, measure the background and count sources, combine the two
measurements. ``calibrate`` fails on the first attempt of every ``fail_once_every``-th
dataset, to show a retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.errors import TaskError
from owl.task import TaskContext

OVERSCAN_COLUMNS = 8


def _input(ctx: TaskContext) -> Path:
    if ctx.input_path is None or not ctx.input_path.exists():
        raise TaskError(f"dataset {ctx.dataset}: input file {ctx.input_path} is missing")
    return ctx.input_path


def ingest_check(ctx: TaskContext) -> Mapping[str, Any]:
    """Check the raw frame is a readable DEMO image with an overscan strip."""
    with fits.open(_input(ctx)) as hdul:
        header = hdul[0].header
        data = hdul[0].data
        if header.get("INSTRUME") != "DEMO":
            raise TaskError(f"{ctx.input_path}: INSTRUME is {header.get('INSTRUME')!r}")
        if data is None or data.ndim != 2 or data.shape[1] <= OVERSCAN_COLUMNS:
            raise TaskError(f"{ctx.input_path}: expected a 2-D image wider than the overscan")
        return {"shape": list(data.shape), "exptime": float(header.get("EXPTIME", 1.0))}


def calibrate(ctx: TaskContext) -> Mapping[str, Any]:
    """Subtract the overscan level, trim it, and divide by the exposure time."""
    every = int(ctx.params.get("fail_once_every", 0))
    index = int("".join(ch for ch in ctx.dataset if ch.isdigit()) or "0")
    if every and index % every == 0 and ctx.attempt == 1:
        raise TaskError(f"dataset {ctx.dataset}: simulated transient failure "
                        "(the demo fails this one once; the retry succeeds)")
    with fits.open(_input(ctx)) as hdul:
        raw = hdul[0].data.astype(np.float32)
        header = hdul[0].header.copy()
    level = float(np.median(raw[:, :OVERSCAN_COLUMNS]))
    exptime = float(header.get("EXPTIME", 1.0)) or 1.0
    rate = (raw[:, OVERSCAN_COLUMNS:] - level) / exptime
    header["BUNIT"] = "ELECTRONS/S"
    header["HISTORY"] = f"owl demo calibrate: overscan level {level:.2f} subtracted"
    out = ctx.output_dir / f"{ctx.dataset}_cal.fits"
    fits.PrimaryHDU(rate, header).writeto(out, overwrite=True)
    ctx.log.info("demo.calibrated", level=level)
    return {"file": str(out), "overscan": level}


def _calibrated(ctx: TaskContext) -> np.ndarray:
    path = Path(ctx.inputs["calibrate"]["file"])
    return np.asarray(fits.getdata(path), dtype=np.float32)


def measure_a(ctx: TaskContext) -> Mapping[str, Any]:
    """Background level and noise (median and MAD-based sigma)."""
    data = _calibrated(ctx)
    median = float(np.median(data))
    sigma = float(1.4826 * np.median(np.abs(data - median)))
    return {"background": median, "noise": sigma}


def measure_b(ctx: TaskContext) -> Mapping[str, Any]:
    """Number of pixels more than 5 sigma above the background."""
    data = _calibrated(ctx)
    median = float(np.median(data))
    sigma = float(1.4826 * np.median(np.abs(data - median))) or 1.0
    return {"bright_pixels": int(np.count_nonzero(data > median + 5 * sigma))}


def combine(ctx: TaskContext) -> Mapping[str, Any]:
    """Fan-in: write one summary from both measurements."""
    summary = {"dataset": ctx.dataset, **ctx.inputs["measure_a"], **ctx.inputs["measure_b"]}
    out = ctx.output_dir / f"{ctx.dataset}_summary.json"
    out.write_text(json.dumps(summary, indent=2))
    return {"file": str(out), **summary}


def noop(ctx: TaskContext) -> None:
    """Does nothing: the benchmark pipeline measures the engine alone."""
    return None


def make_demo_frames(directory: Path, count: int, *, seed: int = 1) -> list[Path]:
    """Write ``count`` small DEMO raw frames (``demoNNNN_demo.fits``) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:(96 + OVERSCAN_COLUMNS)]
    paths = []
    for i in range(1, count + 1):
        image = rng.normal(1000.0, 5.0, size=yy.shape)
        for _ in range(int(rng.integers(3, 12))):
            y0, x0 = rng.uniform(5, 90), rng.uniform(OVERSCAN_COLUMNS + 5, 100)
            flux = rng.uniform(2e3, 5e4)
            image += flux / (2 * np.pi * 2.0**2) * np.exp(
                -((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * 2.0**2))
        image[:, :OVERSCAN_COLUMNS] = rng.normal(1000.0, 5.0, size=(96, OVERSCAN_COLUMNS))
        header = fits.Header()
        header["INSTRUME"] = "DEMO"
        header["ROOTNAME"] = f"demo{i:04d}"
        header["EXPTIME"] = 100.0
        path = directory / f"demo{i:04d}_demo.fits"
        fits.PrimaryHDU(image.astype(np.float32), header).writeto(path, overwrite=True)
        paths.append(path)
    return paths
