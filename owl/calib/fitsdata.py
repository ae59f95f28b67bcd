"""Image data of plain (uncompressed) FITS files read and written without astropy's copies.

astropy reads an image into a big-endian array, scales pseudo-unsigned integers into a new
array, and :mod:`owl.calib.fitsio` then made a native-order copy and a dtype copy: three
passes over each array. Here an image is read straight into its final native array: one
``readinto`` per cache-sized chunk of rows, converted into place (byte order, and for
BITPIX=16 with BZERO=32768 the sign flip that gives the same uint16 values as astropy).
Writing converts to big-endian in cache-sized chunks instead of astropy's swap of the whole
array and swap back.

Headers stay astropy's: :func:`write_hdus` writes the cards astropy would write, so a file
written here equals, byte for byte, one written by ``HDUList.writeto``.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

BLOCK = 2880
#: Rows of one chunk for the big-endian conversion on write (about 1 MiB for WFC rows).
_CHUNK_BYTES = 1 << 20

_BITPIX_BIG: dict[int, str] = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def is_gzip(path: str) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_image(f: io.BufferedIOBase, header: fits.Header, offset: int) -> npt.NDArray[Any] | None:
    """The 2-D image at byte ``offset`` of ``f`` in native byte order, or None when the
    extension is not a plain 2-D image this reader handles (astropy reads it then).

    Handled: BITPIX 8/16/32/-32/-64 without scaling, and BITPIX=16 with BZERO=32768
    (unsigned 16-bit, returned as uint16 like astropy). A short read (truncated file) raises
    EOFError.
    """
    bitpix = int(header.get("BITPIX", 0))
    if int(header.get("NAXIS", 0)) != 2 or bitpix not in _BITPIX_BIG:
        return None
    bzero, bscale = header.get("BZERO", 0), header.get("BSCALE", 1)
    unsigned16 = bitpix == 16 and bzero == 32768 and bscale == 1
    if not unsigned16 and (bzero != 0 or bscale != 1):
        return None
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    big = np.dtype(_BITPIX_BIG[bitpix])
    data = np.empty(shape, dtype=np.dtype(np.uint16) if unsigned16 else big.newbyteorder("="))
    f.seek(offset)
    if big.byteorder != ">" or not np.little_endian:
        got = f.readinto(data.reshape(-1).view(np.uint8).data)
        if got != data.nbytes:
            raise EOFError(f"image data truncated: {got} of {data.nbytes} bytes")
        return data
    # Read in cache-sized chunks of rows and convert each into place: the big array is
    # written once (no in-place swap over it afterwards, no second pass of the sign flip).
    disk = np.dtype(">u2") if unsigned16 else big
    step = max(_CHUNK_BYTES // max(shape[1] * disk.itemsize, 1), 1)
    buf = np.empty((min(step, shape[0]), shape[1]), dtype=disk)
    raw = buf.reshape(-1).view(np.uint8)
    done = 0
    for r0 in range(0, shape[0], step):
        n = min(step, shape[0] - r0)
        want = n * shape[1] * disk.itemsize
        got = f.readinto(raw[:want].data)
        done += got
        if got != want:
            raise EOFError(f"image data truncated: {done} of {data.nbytes} bytes")
        rows = data[r0:r0 + n]
        np.copyto(rows, buf[:n])
        if unsigned16:
            rows ^= np.uint16(0x8000)
    return data


def _big(data: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], np.dtype[Any]]:
    """``data`` as the array astropy would write (uint16 as BZERO-shifted int16) and the
    big-endian dtype of its bytes on disk."""
    if data.dtype == np.uint16:
        return data, np.dtype(">u2")
    return data, data.dtype.newbyteorder(">")


def write_data(f: BinaryIO, data: npt.NDArray[Any]) -> None:
    """Write ``data`` big-endian in chunks of rows, then pad to a FITS block with zeros."""
    arr, disk = _big(data)
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(1, -1)
    row_bytes = max(flat.shape[1] * arr.dtype.itemsize, 1)
    step = max(_CHUNK_BYTES // row_bytes, 1)
    shift = arr.dtype == np.uint16
    # one chunk buffer, reused: no allocation (and first touch of fresh pages) per chunk
    buf = np.empty((min(step, flat.shape[0]), flat.shape[1]), dtype=disk)
    raw = buf.reshape(-1).view(np.uint8)
    for r0 in range(0, flat.shape[0], step):
        chunk = flat[r0:r0 + step]
        n = chunk.shape[0]
        np.copyto(buf[:n], chunk)
        if shift:
            buf[:n] ^= np.uint16(0x8000)
        f.write(raw[:n * flat.shape[1] * disk.itemsize].data)
    pad = -arr.nbytes % BLOCK
    if pad:
        f.write(b"\0" * pad)


def write_hdus(hdul: fits.HDUList, f: BinaryIO) -> None:
    """Write ``hdul`` as ``HDUList.writeto`` would (verified first, output_verify=exception),
    with the image data written by :func:`write_data`."""
    hdul.verify("exception")
    hdul.update_extend()
    for hdu in hdul:
        data = hdu.data if hdu.header.get("NAXIS", 0) else None
        if data is not None and _axes(hdu.header) != data.shape[::-1]:
            hdu.update_header()  # data replaced after the HDU was made
        f.write(hdu.header.tostring().encode("ascii"))
        if data is not None:
            write_data(f, np.asarray(data))


def _axes(header: fits.Header) -> tuple[int, ...]:
    return tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header["NAXIS"]) + 1))
