"""ACS FITS I/O: read and write frames made of SCI/ERR/DQ image sets (imsets).

The layout follows CALACS: a primary header without data, then per chip an imset of three
image extensions named SCI, ERR and DQ that share one EXTVER. For ACS/WFC, EXTVER 1 is WFC2
(CCDCHIP=2) and EXTVER 2 is WFC1 (CCDCHIP=1).

Constant extensions (no data; NPIX1, NPIX2 and PIXVALUE keywords), as hstio writes them for
uniform ERR and DQ arrays, are expanded to full arrays on read (or, for reference files that
are only read, to read-only zero-stride views that cost no memory); uniform ERR and DQ arrays
are written back the same way, so a raw frame keeps its size on disk. Image data of plain
files are read and written by :mod:`owl.calib.fitsdata` (no intermediate copies).
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

import owl
from owl.calib.fitsdata import is_gzip, read_image, write_hdus
from owl.errors import CalibError

EXTNAMES = ("SCI", "ERR", "DQ")
SWITCH_VALUES = ("PERFORM", "OMIT", "COMPLETE", "SKIPPED")
REQUIRED_PRIMARY = ("INSTRUME", "DETECTOR")
REQUIRED_SCI = ("CCDCHIP",)

# File-name suffixes CALACS produces or reads; output_name replaces one of these.
KNOWN_SUFFIXES = (
    "blv_tmp", "blc_tmp", "crj_tmp", "crc_tmp", "flt_hc", "raw", "crj", "crc", "flt",
    "flc", "sfl", "asn", "ctefmod", "spt", "trl",
)

# Keywords astropy derives from the data; copying them from a read header would fight it.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|EXTEND|BZERO|BSCALE|NPIX\d|PIXVALUE)$"
)
_BITPIX_DTYPE: dict[int, np.dtype[Any]] = {
    b: np.dtype(t)
    for b, t in ((8, np.uint8), (16, np.int16), (32, np.int32), (64, np.int64),
                 (-32, np.float32), (-64, np.float64))
}
_DEFAULT_DTYPE: dict[str, np.dtype[Any]] = {
    "SCI": np.dtype(np.float32), "ERR": np.dtype(np.float32), "DQ": np.dtype(np.int16)
}


@dataclass
class Imset:
    """One chip of a frame: science, error and data-quality arrays with their headers.

    Attributes
    ----------
    sci, err, dq : numpy.ndarray
        2-D arrays of one shape. Raw SCI is 16-bit unsigned DN (stored as BITPIX=16 with
        BZERO=32768); calibrated SCI and ERR are float32; DQ is int16.
    sci_header, err_header, dq_header : astropy.io.fits.Header
        Extension headers without the structural keywords (BITPIX, NAXISn, ...).
    extver : int
        EXTVER of the three extensions: 1 is WFC2 (CCDCHIP=2), 2 is WFC1 (CCDCHIP=1).
    """

    sci: npt.NDArray[Any]
    err: npt.NDArray[Any]
    dq: npt.NDArray[Any]
    sci_header: fits.Header
    err_header: fits.Header
    dq_header: fits.Header
    extver: int

    @property
    def chip(self) -> int:
        """CCDCHIP of this imset, from the SCI header."""
        try:
            return int(self.sci_header["CCDCHIP"])
        except KeyError:
            raise CalibError(f"SCI,{self.extver}: keyword CCDCHIP is missing") from None


@dataclass
class Frame:
    """A whole ACS frame: the primary header and its imsets in EXTVER order.

    Attributes
    ----------
    primary : astropy.io.fits.Header
        Primary header (switches, reference-file keywords, exposure keywords).
    imsets : list of Imset
        The image sets, sorted by EXTVER.
    path : pathlib.Path or None
        The file the frame was read from, or None for a frame built in memory.
    """

    primary: fits.Header
    imsets: list[Imset]
    path: Path | None

    def imset(self, chip: int) -> Imset:
        """Return the imset whose SCI header has ``CCDCHIP == chip``.

        Raises
        ------
        owl.errors.CalibError
            When no imset has that chip.
        """
        for imset in self.imsets:
            if imset.chip == chip:
                return imset
        raise CalibError(f"{self.path or 'frame'}: no imset with CCDCHIP={chip}")


def read_frame(
    path: str | os.PathLike[str], *, sci_dtype: npt.DTypeLike | None = None,
    lazy_constants: bool = False,
) -> Frame:
    """Read an ACS frame (``.fits`` or ``.fits.gz``) into memory.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file.
    sci_dtype : numpy dtype, optional
        Convert SCI to this dtype (e.g. ``np.float32`` for raw DN); by default SCI keeps the
        file's type (uint16 for raw frames).
    lazy_constants : bool, optional
        Give constant extensions as read-only zero-stride views (``np.broadcast_to``) instead
        of full arrays: for frames that are only read (reference files).

    Returns
    -------
    Frame
        Primary header and imsets sorted by EXTVER; constant extensions are expanded.

    Raises
    ------
    owl.errors.CalibError
        When the file is missing, truncated or not FITS, when an imset lacks SCI, ERR or DQ,
        when a required keyword (INSTRUME, DETECTOR; CCDCHIP in SCI) is missing, or when the
        arrays of an imset are not 2-D arrays of one shape. The message names the file and
        the extension.
    """
    p = Path(path)
    if not p.is_file():
        raise CalibError(f"{p}: file does not exist")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(p, memmap=False, lazy_load_hdus=False) as hdul, \
                    open(p, "rb") as f:
                primary = hdul[0].header
                plain = None if is_gzip(str(p)) else f
                raw = [_read_hdu(p, hdu, plain, data_offset(hdu),
                                 lazy_constants)
                       for i, hdu in enumerate(hdul) if i > 0]
    except CalibError:
        raise
    except (OSError, ValueError, TypeError, EOFError, IndexError) as exc:
        raise CalibError(f"{p}: not a readable FITS file ({exc})") from exc
    for w in caught:
        if "truncated" in str(w.message).lower():
            raise CalibError(f"{p}: file is truncated ({w.message})")
    for key in REQUIRED_PRIMARY:
        if key not in primary:
            raise CalibError(f"{p}[0] (primary): required keyword {key} is missing")
    return Frame(primary=_strip(primary), imsets=_group(p, raw, sci_dtype), path=p)


def data_offset(hdu: Any) -> int:
    """Byte offset of the extension's data in its file (the HDU's own ``fileinfo``, not the
    HDUList's, which first serialises every header to check for resizing)."""
    return int(hdu.fileinfo()["datLoc"])


def _read_hdu(path: Path, hdu: Any, plain: Any, offset: int,
              lazy: bool) -> tuple[str, int, fits.Header, npt.NDArray[Any] | None]:
    """Return (EXTNAME, EXTVER, header, data) of one extension, expanding constant data.

    ``plain`` is the open file when it is not compressed: the image is then read directly
    at ``offset`` (:func:`owl.calib.fitsdata.read_image`), else through astropy.
    """
    header = hdu.header
    name = str(header.get("EXTNAME", "")).strip().upper()
    extver = int(header.get("EXTVER", 1))
    where = f"{path}[{name or '?'},{extver}]"
    if not isinstance(hdu, fits.ImageHDU):
        return name, extver, header, None
    try:
        data = None
        if plain is not None and int(header.get("NAXIS", 0)) > 0:
            data = read_image(plain, header, offset)
        if data is None:
            data = hdu.data
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise CalibError(f"{where}: data unreadable, file truncated or corrupt ({exc})") from exc
    if data is None:
        data = _expand_constant(where, header, name, lazy)
    elif data.ndim != 2:
        raise CalibError(f"{where}: expected a 2-D image, found shape {data.shape}")
    # Kernels (numba) want native byte order; FITS stores big-endian.
    return name, extver, header, data.astype(data.dtype.newbyteorder("="), copy=False)


def _expand_constant(where: str, header: fits.Header, name: str,
                     lazy: bool) -> npt.NDArray[Any]:
    """Build the full array a constant (NPIX1/NPIX2/PIXVALUE) extension stands for."""
    missing = [k for k in ("NPIX1", "NPIX2", "PIXVALUE") if k not in header]
    if missing:
        raise CalibError(
            f"{where}: extension has no data and is not a constant extension "
            f"(missing {', '.join(missing)})"
        )
    nx, ny = int(header["NPIX1"]), int(header["NPIX2"])
    if nx <= 0 or ny <= 0:
        raise CalibError(f"{where}: constant extension has bad size NPIX1={nx}, NPIX2={ny}")
    bitpix = int(header.get("BITPIX", 8))
    if name in _DEFAULT_DTYPE and bitpix == 8:
        dtype = _DEFAULT_DTYPE[name]
    else:
        dtype = _BITPIX_DTYPE.get(bitpix, np.dtype(np.float32))
    if lazy:
        return np.broadcast_to(np.array(header["PIXVALUE"], dtype=dtype), (ny, nx))
    if header["PIXVALUE"] == 0:
        return np.zeros((ny, nx), dtype=dtype)
    return np.full((ny, nx), header["PIXVALUE"], dtype=dtype)


def _group(
    path: Path,
    hdus: list[tuple[str, int, fits.Header, npt.NDArray[Any] | None]],
    sci_dtype: npt.DTypeLike | None,
) -> list[Imset]:
    """Group SCI/ERR/DQ extensions by EXTVER and check each imset."""
    parts: dict[int, dict[str, tuple[fits.Header, npt.NDArray[Any]]]] = {}
    for name, extver, header, data in hdus:
        if name in EXTNAMES and data is not None:
            parts.setdefault(extver, {})[name] = (header, data)
    if not parts:
        raise CalibError(f"{path}: no SCI/ERR/DQ image extensions found")
    imsets = []
    for extver in sorted(parts):
        found = parts[extver]
        for name in EXTNAMES:
            if name not in found:
                raise CalibError(f"{path}[{name},{extver}]: extension is missing from imset")
        (sh, sci), (eh, err), (dh, dq) = found["SCI"], found["ERR"], found["DQ"]
        for key in REQUIRED_SCI:
            if key not in sh:
                raise CalibError(f"{path}[SCI,{extver}]: required keyword {key} is missing")
        for name, arr in (("ERR", err), ("DQ", dq)):
            if arr.shape != sci.shape:
                raise CalibError(
                    f"{path}[{name},{extver}]: shape {arr.shape} differs from SCI {sci.shape}"
                )
        if sci_dtype is not None:
            sci = sci.astype(sci_dtype, copy=False)
        imsets.append(Imset(sci=sci, err=err, dq=dq, sci_header=_strip(sh),
                            err_header=_strip(eh), dq_header=_strip(dh), extver=extver))
    return imsets


def _strip(header: fits.Header) -> fits.Header:
    """Copy of ``header`` without the keywords that describe the data layout."""
    out = fits.Header()
    for card in header.cards:
        if not _STRUCTURAL.match(card.keyword):
            out.append(card, end=True)
    return out


def write_frame(frame: Frame, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Write ``frame`` in the CALACS layout: primary, then SCI/ERR/DQ per imset.

    The file appears atomically (written beside, then renamed). Uniform ERR and DQ arrays
    are written as constant extensions (NPIX1/NPIX2/PIXVALUE), as hstio does. A ``.gz``
    name is written gzip-compressed.

    Parameters
    ----------
    frame : Frame
        The frame; its primary header gets NEXTEND and FILENAME updated in the file.
    path : str or os.PathLike
        Destination file.
    overwrite : bool, optional
        Replace an existing file (CALACS never does; default False).

    Raises
    ------
    owl.errors.CalibError
        When the file exists and ``overwrite`` is false, or an imset is inconsistent.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise CalibError(f"{p}: output exists (pass overwrite=True to replace it)")
    primary = _strip(frame.primary)
    primary["NEXTEND"] = (3 * len(frame.imsets), "number of standard extensions")
    primary["FILENAME"] = (_plain_name(p), "name of file")
    hdus: list[Any] = [fits.PrimaryHDU(header=primary)]
    for imset in sorted(frame.imsets, key=lambda s: s.extver):
        for name, data, header in (("SCI", imset.sci, imset.sci_header),
                                   ("ERR", imset.err, imset.err_header),
                                   ("DQ", imset.dq, imset.dq_header)):
            if data.shape != imset.sci.shape or data.ndim != 2:
                raise CalibError(
                    f"{p}[{name},{imset.extver}]: shape {data.shape} is not 2-D or differs "
                    f"from SCI {imset.sci.shape}"
                )
            hdus.append(_image_hdu(name, imset.extver, data, header, const=name != "SCI"))
    tmp = p.with_name(f".{uuid.uuid4().hex[:8]}.{p.name}")
    try:
        if p.name.endswith(".gz"):
            fits.HDUList(hdus).writeto(tmp, output_verify="exception")
        else:
            with open(tmp, "wb") as f:
                write_hdus(fits.HDUList(hdus), f)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


def _image_hdu(
    name: str, extver: int, data: npt.NDArray[Any], header: fits.Header, *, const: bool
) -> Any:
    """One image extension; a uniform array becomes a constant extension when ``const``."""
    hdr = _strip(header)
    hdr["EXTNAME"] = (name, "extension name")
    hdr["EXTVER"] = (extver, "extension version number")
    if const and data.size and _uniform(data):
        # astropy writes BITPIX=8 for a data-less HDU whatever we ask; readers (ours, hstio)
        # take the type from EXTNAME, so the value is not lost.
        hdu = fits.ImageHDU(header=hdr)
        value = data.flat[0].item()
        hdu.header["NPIX1"] = (data.shape[1], "length of constant array axis 1")
        hdu.header["NPIX2"] = (data.shape[0], "length of constant array axis 2")
        hdu.header["PIXVALUE"] = (value, "values of pixels in constant array")
        return hdu
    return fits.ImageHDU(data=data, header=hdr)


def _uniform(data: npt.NDArray[Any]) -> bool:
    """True when every element equals the first (a zero-stride view is uniform at once; the
    first row is tested alone first, so a varying array is rejected cheaply)."""
    if all(s == 0 for s in data.strides):
        return True
    v = data.flat[0]
    return bool(np.all(data[:1] == v)) and bool(np.all(data == v))


def _plain_name(path: Path) -> str:
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def output_name(input_path: str | os.PathLike[str], suffix: str) -> Path:
    """Name of a CALACS output beside ``input_path``: the rootname plus ``_suffix.fits``.

    A known CALACS suffix (``raw``, ``blv_tmp``, ``flt``, ...) of the input is replaced;
    otherwise the suffix is appended. ``.fits.gz`` inputs give plain ``.fits`` outputs.

    Parameters
    ----------
    input_path : str or os.PathLike
        For example ``j8xi01abq_raw.fits`` or ``case1_blv_tmp.fits.gz``.
    suffix : str
        For example ``"blv_tmp"`` or ``"flt"`` (no leading underscore, no extension).

    Returns
    -------
    pathlib.Path
        For example ``j8xi01abq_blv_tmp.fits`` in the input's directory.

    Raises
    ------
    owl.errors.CalibError
        When the input name does not end in ``.fits`` or ``.fits.gz``, or the suffix is empty.
    """
    p = Path(input_path)
    name = p.name
    for ext in (".fits.gz", ".fits"):
        if name.lower().endswith(ext):
            stem = name[: -len(ext)]
            break
    else:
        raise CalibError(f"{p}: not a FITS file name (expected .fits or .fits.gz)")
    clean = suffix.strip().lstrip("_")
    if not clean or "/" in clean:
        raise CalibError(f"output_name: bad suffix {suffix!r} for {p}")
    for known in KNOWN_SUFFIXES:
        if stem.lower().endswith("_" + known):
            stem = stem[: -len(known) - 1]
            break
    return p.with_name(f"{stem}_{clean}.fits")


def set_switch(header: fits.Header, name: str, value: str) -> None:
    """Set a calibration switch keyword such as ``BLEVCORR`` to PERFORM, OMIT or COMPLETE.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Usually the primary header.
    name : str
        The switch keyword; must end in ``CORR`` (DQICORR, PCTECORR, ...).
    value : str
        ``PERFORM``, ``OMIT``, ``COMPLETE`` or ``SKIPPED`` (case-insensitive).

    Raises
    ------
    owl.errors.CalibError
        For a name that is not a switch or a value outside the list above.
    """
    key = name.strip().upper()
    if not key.endswith("CORR") or len(key) > 8:
        raise CalibError(f"set_switch: {name!r} is not a calibration switch (xxxxCORR)")
    val = value.strip().upper()
    if val not in SWITCH_VALUES:
        raise CalibError(
            f"set_switch: {key} value {value!r} must be one of {', '.join(SWITCH_VALUES)}"
        )
    if key in header:
        header[key] = val
    else:
        header[key] = (val, "calibration switch")


def add_history(header: fits.Header, text: str) -> None:
    """Append ``text`` as HISTORY cards (one per line; astropy wraps long lines).

    Parameters
    ----------
    header : astropy.io.fits.Header
        Usually the primary header.
    text : str
        History text; may span several lines.
    """
    for line in text.splitlines() or [""]:
        header.add_history(line)


def stamp_version(header: fits.Header, *, now: datetime | None = None) -> None:
    """Record the software version like hstcal's CAL_VER, with the processing date.

    Sets ``CAL_VER = 'owl <version> (<dd-Mon-yyyy>)'`` and ``DATE`` (UTC time the file was
    processed).

    Parameters
    ----------
    header : astropy.io.fits.Header
        Usually the primary header.
    now : datetime.datetime, optional
        Processing time (default: the current UTC time).
    """
    when = now or datetime.now(UTC)
    header["CAL_VER"] = (
        f"owl {owl.__version__} ({when:%d-%b-%Y})", "owl calibration version (processing date)"
    )
    header["DATE"] = (when.strftime("%Y-%m-%dT%H:%M:%S"), "date this file was written (UTC)")
