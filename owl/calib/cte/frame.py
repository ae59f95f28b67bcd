"""Read and write the ACS/WFC frames the CTE step works on (``_blv_tmp`` in, ``_blc_tmp`` out).

A frame is a primary header and one imset (SCI, ERR, DQ) per chip. Constant ERR or DQ
extensions (no data, NPIX1/NPIX2/PIXVALUE keywords) are expanded to full arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl.calib.fitsdata import write_hdus
from owl.errors import CalibError


@dataclass
class Imset:
    """One chip: headers and arrays of SCI, ERR and DQ.

    Parameters
    ----------
    chip : int
        CCDCHIP.
    headers : dict
        ``"SCI"``, ``"ERR"``, ``"DQ"`` to the extension header.
    sci, err : ndarray of float32
        Science and error arrays (electrons).
    dq : ndarray of int16
        Data quality flags.
    """

    chip: int
    headers: dict[str, fits.Header]
    sci: npt.NDArray[np.float32]
    err: npt.NDArray[np.float32]
    dq: npt.NDArray[np.int16]


@dataclass
class Frame:
    """A whole exposure.

    Parameters
    ----------
    primary : astropy.io.fits.Header
        Primary header.
    imsets : list of Imset
        In file order (EXTVER 1, 2, ...).
    """

    primary: fits.Header
    imsets: list[Imset]


def _array(hdu: Any, dtype: type, shape: tuple[int, ...], where: str) -> npt.NDArray[Any]:
    if hdu.data is not None:
        data = np.asarray(hdu.data)
        if data.shape != shape:
            raise CalibError(f"{where}: shape {data.shape} differs from SCI {shape}")
        return data.astype(dtype)
    header = hdu.header
    if "PIXVALUE" not in header:
        raise CalibError(f"{where}: no data and no PIXVALUE keyword")
    ny, nx = int(header.get("NPIX2", shape[0])), int(header.get("NPIX1", shape[1]))
    if (ny, nx) != shape:
        raise CalibError(f"{where}: NPIX1/NPIX2 = {nx}/{ny} differ from SCI {shape}")
    return np.full(shape, header["PIXVALUE"], dtype=dtype)


def read_frame(path: str | Path) -> Frame:
    """Read a frame (plain or gzip-compressed FITS).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    Frame

    Raises
    ------
    CalibError
        If the file is unreadable or an imset is incomplete.
    """
    path = Path(path)
    try:
        # Memory-mapped reading lets astype() convert from big-endian straight off the
        # page cache, which is several times faster than reading then converting.
        with fits.open(path, memmap=True) as hdul:
            primary = hdul[0].header.copy()
            imsets = []
            extver = 1
            while ("SCI", extver) in hdul:
                sci_hdu = hdul["SCI", extver]
                where = f"{path} imset {extver}"
                if sci_hdu.data is None or sci_hdu.data.ndim != 2:
                    raise CalibError(f"{where}: SCI has no 2-D data")
                sci = np.asarray(sci_hdu.data).astype(np.float32)
                headers = {"SCI": sci_hdu.header.copy()}
                arrays = {}
                for name, dtype in (("ERR", np.float32), ("DQ", np.int16)):
                    if (name, extver) not in hdul:
                        raise CalibError(f"{where}: extension {name},{extver} is missing")
                    hdu = hdul[name, extver]
                    headers[name] = hdu.header.copy()
                    arrays[name] = _array(hdu, dtype, sci.shape, f"{where} {name}")
                if "CCDCHIP" not in sci_hdu.header:
                    raise CalibError(f"{where}: SCI header lacks CCDCHIP")
                imsets.append(
                    Imset(int(sci_hdu.header["CCDCHIP"]), headers, sci,
                          arrays["ERR"], arrays["DQ"])
                )
                extver += 1
    except OSError as exc:
        raise CalibError(f"{path}: cannot read ({exc})") from exc
    if not imsets:
        raise CalibError(f"{path}: no SCI extension")
    return Frame(primary, imsets)


def write_frame(frame: Frame, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a frame as plain FITS (SCI/ERR/DQ per imset, in order).

    Parameters
    ----------
    frame : Frame
        What to write.
    path : str or pathlib.Path
        Output file.
    overwrite : bool, optional
        Replace an existing file; otherwise an existing file is an error.

    Raises
    ------
    CalibError
        If the file exists and ``overwrite`` is false, or it cannot be written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise CalibError(f"{path}: output exists; remove it or pass overwrite=True")
    hdus: list[Any] = [fits.PrimaryHDU(header=frame.primary)]
    for imset in frame.imsets:
        for name, data in (("SCI", imset.sci), ("ERR", imset.err), ("DQ", imset.dq)):
            hdus.append(fits.ImageHDU(data=data, header=imset.headers[name], name=name))
    try:
        if path.name.endswith(".gz"):
            fits.HDUList(hdus).writeto(path, overwrite=overwrite)
        else:
            # the same bytes as writeto, without its whole-array byte swaps
            with open(path, "wb") as f:
                write_hdus(fits.HDUList(hdus), f)
    except OSError as exc:
        raise CalibError(f"{path}: cannot write ({exc})") from exc
